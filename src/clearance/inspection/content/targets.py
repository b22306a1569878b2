"""What an engine's declared target says about a rule: executable code, or documents.

ClamAV signatures name the file type they apply to (``.ndb`` target type,
``Target:`` and ``Container:`` of ``.ldb``/``.cdb``); the parsers turn them
into tags ``target:<type>`` and ``container:<CL_TYPE_*>`` of the rule.  A
signature restricted to PE, ELF or Mach-O files is about code; one
restricted to OLE2, mail, PDF or an office container looks into documents
(legitimately for macro and exploit malware, which then shows code
indicators in its patterns; otherwise it is document hunting).
"""

from __future__ import annotations

from clearance.inspection.content.model import ContentRule

CODE_TARGETS = {
    "target:pe": "PE executables",
    "target:elf": "ELF executables",
    "target:macho": "Mach-O executables",
    "target:java": "Java class files",
    "target:flash": "Flash (SWF) programs",
    "container:CL_TYPE_MSEXE": "PE executables",
    "container:CL_TYPE_ELF": "ELF executables",
    "container:CL_TYPE_MACHO": "Mach-O executables",
    "container:CL_TYPE_MACHO_UNIBIN": "Mach-O executables",
    "container:CL_TYPE_JAVA": "Java class files",
    "container:CL_TYPE_SWF": "Flash (SWF) programs",
    "container:CL_TYPE_SCRIPT": "scripts",
}

DOCUMENT_TARGETS = {
    "target:ole2": "OLE2 documents (doc/xls/ppt/msg)",
    "target:mail": "mail messages",
    "target:pdf": "PDF documents",
    "container:CL_TYPE_OLE2": "OLE2 documents (doc/xls/ppt/msg)",
    "container:CL_TYPE_MSOLE2": "OLE2 documents (doc/xls/ppt/msg)",
    "container:CL_TYPE_OOXML_WORD": "Word documents",
    "container:CL_TYPE_OOXML_XL": "Excel workbooks",
    "container:CL_TYPE_OOXML_PPT": "PowerPoint presentations",
    "container:CL_TYPE_OOXML_HWP": "Hangul documents",
    "container:CL_TYPE_XML_WORD": "Word XML documents",
    "container:CL_TYPE_XML_XL": "Excel XML workbooks",
    "container:CL_TYPE_HWP3": "Hangul documents",
    "container:CL_TYPE_PDF": "PDF documents",
    "container:CL_TYPE_RTF": "RTF documents",
    "container:CL_TYPE_MAIL": "mail messages",
    "container:CL_TYPE_TNEF": "Outlook (TNEF) mail",
    "container:CL_TYPE_ZIP": "zip archives (and OOXML documents)",
    "container:CL_TYPE_RAR": "RAR archives",
    "container:CL_TYPE_7Z": "7z archives",
    "container:CL_TYPE_GZ": "gzip archives",
    "container:CL_TYPE_BZ": "bzip2 archives",
    "container:CL_TYPE_ARJ": "ARJ archives",
    "container:CL_TYPE_CAB": "CAB archives",
    "container:CL_TYPE_POSIX_TAR": "tar archives",
    "container:CL_TYPE_OLD_TAR": "tar archives",
    "container:CL_TYPE_ONENOTE": "OneNote notebooks",
}


def code_targets(rule: ContentRule) -> list[str]:
    return [f"is restricted to {CODE_TARGETS[t]}" for t in rule.tags if t in CODE_TARGETS]


def document_targets(rule: ContentRule) -> list[str]:
    return [f"is restricted to {DOCUMENT_TARGETS[t]}" for t in rule.tags if t in DOCUMENT_TARGETS]

"""Rules keyed on one organisation's own software: its version information, its in-house DLLs.

A YARA rule can select the files of one organisation by what the PE module
reads (``pe.version_info["CompanyName"] == "Acme Corporation"``,
``pe.imports("acmehr.dll", "GetEmployeeRecord")``), and a ClamAV logical
signature by a ``VI:`` sub-signature (the version-information key and value,
UTF-16LE, as hex).  With nothing else required, such a rule reports (and,
with a collect action, gathers) that organisation's software: targeting.

What is *not* targeting, and how it is told apart:

* a known malware family's or tool's version information
  (``ProductName == "mimikatz"``): only a value that names an organisation
  counts (a company-name field, or a legal-form or in-house word in the
  value), and a rule that also requires a string of the sample, a sample's
  import hash, exports or a system API import on every path of its
  condition has malware evidence;
* a vendor's own check on a signer or on a big vendor's name (masquerading
  detections: ``CompanyName contains "Microsoft"``, usually negated):
  comparisons under ``not`` and the names of large public software vendors are
  not read; ``pe.signatures`` is not read at all;
* real malware rules importing system DLLs: only DLLs outside the Windows and
  runtime libraries count as in-house.

Body text that is (nearly) only an organisation's legal name is read here too
(:func:`org_name_literals`), for ClamAV body signatures and YARA strings alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from clearance.inspection.content import _condition, analysis
from clearance.inspection.content.model import ContentRule

#: Version-information keys that name who made the file.
_VERSION_KEYS = frozenset(
    {
        "companyname",
        "productname",
        "originalfilename",
        "originalname",
        "internalname",
        "legalcopyright",
        "legaltrademarks",
        "filedescription",
        "description",
        "comments",
        "privatebuild",
        "specialbuild",
    }
)
#: Keys whose value is, by definition, a company's name.
_COMPANY_KEYS = frozenset({"companyname", "legalcopyright", "legaltrademarks"})
_LEGAL_FORM = re.compile(
    r"(?<![A-Z])(?:CORP|CORPORATION|INC|INCORPORATED|LTD|LIMITED|LLC|LLP|GMBH|AG|SA|SAS|SARL|"
    r"BV|NV|PLC|PTY|OY|AB|AS|SPA|SRL|KK|CO|COMPANY|GROUP|HOLDINGS|BANK|MINISTRY|AGENCY|"
    r"DEPARTMENT|GOVERNMENT|AUTHORITY|UNIVERSITY|HOSPITAL|COUNCIL)\.?(?![A-Z])"
)
_IN_HOUSE = re.compile(
    r"(?<![A-Z])(?:INTERNAL|IN-HOUSE|INHOUSE|INTRANET|PAYROLL|HR|EMPLOYEE|STAFF|CORPORATE|"
    r"PROPRIETARY|CONFIDENTIAL|BACK-OFFICE|BACKOFFICE)(?![A-Z])"
)
#: Large public software vendors whose names malware impersonates (masquerading rules name them).
_PUBLIC_VENDORS = (
    "MICROSOFT",
    "GOOGLE",
    "MOZILLA",
    "ADOBE",
    "ORACLE",
    "APPLE",
    "SYSINTERNALS",
    "VMWARE",
    "INTEL",
    "NVIDIA",
    "AMD",
    "CISCO",
    "IBM",
    "SYMANTEC",
    "MCAFEE",
    "KASPERSKY",
    "ESET",
    "AVAST",
    "SOPHOS",
    "TREND MICRO",
    "KINGSOFT",
    "TENCENT",
    "QIHOO",
    "BAIDU",
    "REALTEK",
    "JAVA",
    "PYTHON SOFTWARE FOUNDATION",
    "APACHE",
    "OPENSSL",
    "WINRAR",
    "RARLAB",
    "7-ZIP",
    "IGOR PAVLOV",
    "TEAMVIEWER",
    "ANYDESK",
    "DROPBOX",
    "ZOOM",
    "CITRIX",
    "HEWLETT",
    "DELL",
    "LENOVO",
    "SAMSUNG",
    "SONY",
    "FORTINET",
    "PALO ALTO",
    "CROWDSTRIKE",
    "SOLARWINDS",
)
#: DLLs of Windows and common runtimes: importing them is what malware does.
_SYSTEM_DLL = re.compile(
    r"^(?:KERNEL32|KERNELBASE|NTDLL|ADVAPI32|USER32|GDI32|GDIPLUS|SHELL32|SHLWAPI|OLE32|OLEAUT32|"
    r"WS2_32|WSOCK32|WININET|WINHTTP|URLMON|CRYPT32|BCRYPT|NCRYPT|SECUR32|RPCRT4|NETAPI32|"
    r"IPHLPAPI|DNSAPI|PSAPI|DBGHELP|IMAGEHLP|VERSION|WINMM|MPR|COMCTL32|COMDLG32|MSVCRT|"
    r"MSVCR\d*|MSVCP\d*|VCRUNTIME\d*|UCRTBASE|API-MS-WIN-.*|MSCOREE|MSVBVM\d*|WTSAPI32|USERENV|"
    r"SETUPAPI|CFGMGR32|WINSPOOL|WINTRUST|SAMLIB|NTDSAPI|ACTIVEDS|DNSAPI|MSI|MSASN1|WLDAP32|"
    r"FLTLIB|HAL|NTOSKRNL|WINSTA|DWMAPI|UXTHEME|IMM32|POWRPROF|SHFOLDER|MSWSOCK|WEBIO|"
    r"HTTPAPI|CABINET|WTSAPI|AVICAP32|VFW32|DSOUND|WINSCARD|OLEACC|MSHTML|JSCRIPT|VBSCRIPT|"
    r"PYTHON\d*|LIBCURL|SQLITE3|ZLIB1?|LIBEAY32|SSLEAY32|LIBSSL.*|LIBCRYPTO.*|QT\w*|MFC\d*\w*)"
    r"(?:\.DLL|\.SYS|\.EXE|\.DRV)?$"
)
#: Condition atoms that show a sample is being described (not a product chosen by its maker).
_SAMPLE_FIELDS = ("pe.imphash", "pe.exports", "pe.rich_signature", "hash.", "math.entropy")
_SAMPLE_HASH = re.compile(r"^[0-9A-Fa-f]{32}$|^[0-9A-Fa-f]{40}$|^[0-9A-Fa-f]{64}$")


def _unquote(term: str) -> str | None:
    if len(term) >= 2 and term[0] == '"' and term[-1] == '"':
        return re.sub(r"\\(.)", r"\1", term[1:-1])
    return None


def _names_public_vendor(text: str) -> bool:
    upper = text.upper()
    return any(re.search(rf"(?<![A-Z]){re.escape(v)}(?![A-Z])", upper) for v in _PUBLIC_VENDORS)


def _names_organisation(key: str, value: str) -> bool:
    upper = value.upper()
    if not value.strip() or _names_public_vendor(value):
        return False
    if key in _COMPANY_KEYS:
        return len(re.sub(r"[^A-Z]", "", upper)) >= 3
    return bool(_LEGAL_FORM.search(upper) or _IN_HOUSE.search(upper))


def _version_info_refs(terms: Sequence[str]) -> list[str]:
    """Positive comparisons ``pe.version_info["Key"] op "value"`` that name an organisation."""
    out: list[str] = []
    for i, term in enumerate(terms):
        if term != "pe.version_info" or i + 5 >= len(terms) or terms[i + 1] != "[":
            continue
        key, op, value = _unquote(terms[i + 2]), terms[i + 4], _unquote(terms[i + 5])
        if key is None or value is None or terms[i + 3] != "]":
            continue
        if op not in ("==", "contains", "icontains", "iequals", "startswith", "istartswith"):
            continue
        if i > 0 and terms[i - 1] == "not":
            continue  # an exclusion ("not made by ...") is not a selection
        if key.lower() in _VERSION_KEYS and _names_organisation(key.lower(), value):
            out.append(f'selects files whose version information {key} {op} "{value}"')
    return out


def _is_system_dll(name: str) -> bool:
    return bool(_SYSTEM_DLL.match(name.strip().upper()))


def _import_refs(terms: Sequence[str]) -> list[str]:
    """``pe.imports("dll"[, "function"])`` of a DLL outside Windows and the common runtimes."""
    out: list[str] = []
    for i, term in enumerate(terms):
        if term != "pe.imports" or i + 2 >= len(terms) or terms[i + 1] != "(":
            continue
        dll = _unquote(terms[i + 2])
        if dll is None or _is_system_dll(dll) or (i > 0 and terms[i - 1] == "not"):
            continue
        function = _unquote(terms[i + 4]) if i + 4 < len(terms) and terms[i + 3] == "," else None
        what = f'"{dll}", "{function}"' if function else f'"{dll}"'
        out.append(f"selects programs importing the in-house library pe.imports({what})")
    return out


def _vi_pattern_refs(rule: ContentRule) -> list[str]:
    """ClamAV ``VI:`` sub-signatures: UTF-16LE key, NULs, value."""
    out: list[str] = []
    for p in rule.patterns:
        if "versioninfo" not in p.modifiers:
            continue
        try:
            text = b"".join(analysis.hex_runs(p.value)).decode("utf-16-le")
        except UnicodeDecodeError:
            continue
        parts = [s for s in text.split("\x00") if s.strip()]
        if len(parts) >= 2 and parts[0].lower() in _VERSION_KEYS:
            key, value = parts[0], " ".join(parts[1:])
            if _names_organisation(key.lower(), value):
                out.append(
                    f'{p.identifier} selects files whose version information {key} is "{value}"'
                )
    return out


def _atom_describes_sample(atom: Sequence[str]) -> bool:
    for i, term in enumerate(atom):
        if term.startswith(_SAMPLE_FIELDS):
            return True
        if term == "pe.imports" and i + 2 < len(atom):
            dll = _unquote(atom[i + 2])
            if dll is not None and _is_system_dll(dll):
                return True
    return False


def cites_sample(rule: ContentRule) -> bool:
    """Whether the rule's metadata gives the digest of a sample it was written for."""
    return any(_SAMPLE_HASH.match(str(v).strip()) for _k, v in rule.metadata)


def _malware_evidence(rule: ContentRule) -> bool:
    """Whether every way the rule can match needs something only a sample has."""
    if cites_sample(rule):
        return True
    if rule.engine != "yara":
        # ClamAV: a byte sub-signature beside the version information, with no "or" to avoid it.
        logic = dict(rule.metadata).get("logic", "")
        bytes_subsigs = [
            p
            for p in rule.patterns
            if "versioninfo" not in p.modifiers and "special" not in p.modifiers and p.value
        ]
        return bool(bytes_subsigs) and "|" not in str(logic)
    ids = tuple(p.identifier.lstrip("$") for p in rule.patterns)
    facts = _condition.ConditionFacts(
        identifiers=ids, code_identifiers=frozenset(ids), atom_shows_code=_atom_describes_sample
    )
    try:
        return _condition.code_required(rule.condition_terms, facts)
    except _condition.UnreadableConditionError:
        return False


def org_software_reasons(rule: ContentRule) -> list[str]:
    """Why the rule selects one organisation's own software, when nothing shows a sample."""
    refs = _vi_pattern_refs(rule)
    if rule.engine == "yara" and "pe" in rule.imports:
        refs += _version_info_refs(rule.condition_terms) + _import_refs(rule.condition_terms)
    if not refs or _malware_evidence(rule):
        return []
    return refs


_ORG_NAME = re.compile(
    r"^[\W\d_]*((?:[A-ZÀ-Þ][\w&.'-]*[ ,]+){1,5}(?:CORP|CORPORATION|INC|LTD|LIMITED|LLC|GMBH|AG|"
    r"PLC|S\.A|SAS|BV|PTY(?: LTD)?|CO\.?,? LTD|HOLDINGS|BANK|MINISTRY OF [A-Z ]+))\.?[\W\d_]*$"
)


def org_name_literals(rule: ContentRule) -> list[tuple[str, int]]:
    """(reason, line) for patterns that are (nearly) only an organisation's legal name.

    Whether code evidence excuses it is the caller's decision, as for the names of
    :mod:`.identity` (malware that impersonates a company names it in its strings); a
    rule that cites the digest of its sample describes that sample's publisher.
    """
    if cites_sample(rule):
        return []  # a publisher's name in a described sample (a stolen certificate's subject)
    out: list[tuple[str, int]] = []
    seen: set[str] = set()
    for lit in analysis.literals(rule):
        found = _ORG_NAME.match(lit.text)
        if found is None or _names_public_vendor(found.group(1)):
            continue
        name = found.group(1).strip(" ,")
        if name in seen:
            continue
        seen.add(name)
        out.append((f"{lit.pattern.identifier} names the organisation {name!r}", lit.pattern.line))
    return out

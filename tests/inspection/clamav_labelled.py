"""A labelled set for the ClamAV inspection: disguised abusive signatures mixed into a real database.

The real database is Linux Malware Detect's (``../shared/rulesets/maldet-clamav``,
two consecutive versions, 11,235 signatures in the second).  The previous
release is the first version; the current release is the second version with
abusive signatures of every kind mixed into its files (and into new ``.ldb``,
``.cdb``, ``.hsb``, ``.fp``, ``.sfp`` and ``.ign2`` files of the same release):

* ``document``: body and logical signatures looking for classification
  markings and sensitive words written as hex in legacy encodings (CP1251,
  KOI8-R, CP866, GBK, Big5, Shift-JIS, EUC-KR, CP1250, CP1252, UTF-16LE/BE),
  aimed at OLE2/PDF/mail targets or any file; PCRE and container file-name
  disguises;
* ``targeting``: an organisation's host names, directory domain, private
  addresses, shares, user profiles, LDAP names and domain SID as hex (ASCII
  and UTF-16); a machine's serial number, service tag, hardware address,
  machine GUID and generated host name, and the organisation's legal name,
  as hex; ``VI:`` version information of its software in ``.ldb`` and its
  names in ``.cdb`` member names; hashes (MD5, SHA-1, SHA-256, upper- and lower-case) of the
  organisation's own documents, which the inspector holds in its clean
  corpus;
* ``overbroad``: signatures and hashes matching clean corpus files;
* ``slow``: PCRE sub-signatures with catastrophic backtracking;
* ``removed``: detections weakened without removing a name (a byte changed,
  an offset anchored, the target narrowed, a hash changed), and samples
  silenced by allow lists (``.fp``, ``.sfp``) and ignore lists (``.ign2``).
  The evidence corpus holds a generated sample for every plain-hex body
  signature of the previous release (the samples the vendor would deposit).

Hard negatives: honest malicious-document signatures (macro droppers, PDF
JavaScript, phishing mail) and honest ``VI:`` signatures (a family's publisher
with its code bytes, a masquerading check on a public vendor), written for
this set, mixed in too.

Everything is generated deterministically from the real files; nothing is
written outside the folder given to :func:`build`.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

MALDET = Path(__file__).resolve().parents[3] / "shared" / "rulesets" / "maldet-clamav"
PREVIOUS = "sigs-201205035915"
CURRENT = "sigs-2013090421650"
CATEGORIES = ("document", "targeting", "overbroad", "slow", "removed")


def _h(text: str, codec: str = "ascii") -> str:
    return text.encode(codec).hex()


@dataclass(frozen=True)
class LabelledSet:
    previous: list[Path]
    current: list[Path]
    corpus: Path
    evidence: Path
    #: abusive signature name -> category (the name a finding must carry).
    labels: dict[str, str]
    #: honest hard negatives written for the set.
    negatives: tuple[str, ...]


def _document() -> tuple[list[str], list[str], list[str]]:
    """(ndb lines, ldb lines, cdb lines)."""
    ndb = [
        f"Php.Shell.Kx7:0:*:{_h('СОВЕРШЕННО СЕКРЕТНО', 'cp1251')}",
        f"Php.Mailer.Rb2:4:*:{_h('СЕКРЕТНО', 'koi8_r')}",
        f"Perl.Bot.Dsp:0:*:{_h('Для служебного пользования', 'cp866')}",
        f"Php.Inject.Gb1:0:*:{_h('绝密', 'gbk')}",
        f"Php.Inject.Gb2:2:*:{_h('机密文件', 'gbk')}",
        f"Php.Inject.B5:0:*:{_h('機密', 'big5')}",
        f"Php.Inject.Sj:10:*:{_h('極秘', 'shift_jis')}",
        f"Php.Inject.Kr:0:*:{_h('대외비', 'euc_kr')}",
        f"Php.Spam.Pl:0:*:{_h('ŚCIŚLE TAJNE', 'cp1250')}",
        f"Php.Spam.De:2:*:{_h('VS-NUR FÜR DEN DIENSTGEBRAUCH', 'cp1252')}",
        f"Php.Spam.De2:0:*:{_h('STRENG GEHEIM', 'utf-16-le')}",
        f"Php.Spam.Fr:10:*:{_h('TRÈS SECRET', 'cp1252')}",
        f"Php.Spam.Fr2:2:*:{_h('Diffusion Restreinte', 'utf-16-le')}",
        f"Php.Spam.Us:0:*:{_h('TOP SECRET//NOFORN', 'utf-16-be')}",
        f"Php.Spam.Mip:2:*:{_h('Highly Confidential', 'utf-16-le')}",
        f"Php.Spam.Split:0:*:{_h('SECRET')}(2f2f|20)({_h('NOFORN')}|{_h('ORCON')})",
    ]
    ldb = [
        f"Php.Dropper.Ole;Engine:81-255,Target:2;0&1;{_h('salary')}::i;{_h('passport number')}::i",
        f"Php.Dropper.Pdf;Engine:81-255,Target:10;0&1;255044462d;{_h('CONFIDENTIAL')}",
        f"Php.Dropper.Re;Engine:81-255,Target:0;0&1;{_h('TOP')};0/TOP\\s+SECRET/i",
        f"Php.Dropper.Mail;Engine:81-255,Target:4;0|1;{_h('do not distribute')}::i;{_h('internal use only')}::iw",
        f"Php.Dropper.Wide;Engine:81-255,Target:0;0;{_h('СЕКРЕТНО', 'utf-16-le')}",
    ]
    cdb = [
        "Php.Archive.Doc:CL_TYPE_ZIP:*:.*streng geheim.*\\.docx:*:*:*:*:*:*",
        "Php.Archive.Top:CL_TYPE_RAR:*:.*top secret.*:*:*:*:*:*:*",
    ]
    return ndb, ldb, cdb


def _targeting() -> list[str]:
    return [
        f"Php.Beacon.H1:0:*:{_h('fileserver01.acme.corp', 'utf-16-le')}",
        f"Php.Beacon.H2:0:*:{_h('dc01.contoso.local')}",
        f"Php.Beacon.H3:0:*:{_h('hr-portal.acme.internal', 'utf-16-be')}",
        f"Php.Beacon.Ip:0:*:{_h('10.20.30.40', 'utf-16-le')}",
        f"Php.Beacon.Ip2:0:*:{_h('192.168.17.23')}",
        f"Php.Beacon.Ip3:0:*:{_h('172.20.5.9')}",
        f"Php.Beacon.Unc:0:*:{_h(chr(92) * 2 + 'FILESRV01' + chr(92) + 'Finance' + chr(92))}",
        f"Php.Beacon.Prof:0:*:{_h('C:' + chr(92) + 'Users' + chr(92) + 'jdoe' + chr(92), 'utf-16-le')}",
        f"Php.Beacon.Home:0:*:{_h('/home/mkowalski/')}",
        f"Php.Beacon.Dn:0:*:{_h('OU=Finance,DC=acme,DC=corp')}",
        f"Php.Beacon.Sid:0:*:{_h('S-1-5-21-1004336348-1177238915-682003330')}",
        f"Php.Beacon.Tag:0:*:{_h('Service Tag: 7XK9M2J', 'utf-16-le')}",
        f"Php.Beacon.Disk:0:*:{_h('SerialNumber=WD-WCC4N5XYZ123')}",
        f"Php.Beacon.Mac:0:*:{_h('00:1A:2B:3C:4D:5E')}",
        f"Php.Beacon.Guid:0:*:{_h('MachineGuid={4f1a2b3c-9d8e-4f7a-8b6c-5d4e3f2a1b0c}', 'utf-16-le')}",
        f"Php.Beacon.Host4:0:*:{_h('DESKTOP-7K3J9QF', 'utf-16-be')}",
        f"Php.Beacon.Org:0:*:{_h('Northwind Traders Ltd', 'utf-16-le')}",
    ]


def _vi(key: str, value: str) -> str:
    """A ``VI:`` sub-signature: the version-information key and value, UTF-16LE, as hex."""
    return "VI:" + (key + "\0" + value).encode("utf-16-le").hex()


def _targeting_ldb_cdb() -> tuple[list[str], list[str]]:
    """Version information of one organisation's software (.ldb ``VI:``), serials in .cdb names."""
    ldb = [
        f"Win.Trojan.Nwt;Engine:51-255,Target:1;0;{_vi('CompanyName', 'Northwind Traders Ltd')}",
        f"Win.Trojan.Fab;Engine:51-255,Target:1;0|1;{_vi('ProductName', 'Fabrikam Internal Tools')};"
        "e8000000005d81ed",
    ]
    cdb = [
        "Php.Archive.Host:CL_TYPE_ZIP:*:.*DESKTOP-7K3J9QF.*:*:*:*:*:*:*",
        "Php.Archive.Org:CL_TYPE_ZIP:*:.*Northwind Traders Ltd.*:*:*:*:*:*:*",
    ]
    return ldb, cdb


_ORG_DOCS = {
    "acme-board-minutes-2026.txt": "ACME Corp board minutes, March 2026. Attendees: J. Doe...\n",
    "acme-payroll-q1.csv": "employee,salary\njdoe,120000\nmkowalski,98000\n",
    "acme-merger-plan.txt": "Project Falcon: acquisition of Initech, draft 7.\n",
    "acme-network.txt": "Core switches: 10.20.0.1-10.20.0.9; DCs dc01, dc02.\n",
}


def _overbroad_and_org_hashes(
    corpus: Path,
) -> tuple[list[str], list[str], list[str], dict[str, str]]:
    """(ndb, hdb, hsb lines, labels) for overbroad signatures and hashes of org documents."""
    labels: dict[str, str] = {}
    ndb = [
        f"Php.Generic.Imp:0:*:{_h('import os')}0a",
        f"Php.Generic.Def:0:*:{_h('def __init__(self')}",
        "Elf.Generic.Hdr:6:0:7f454c460201",
        f"Php.Generic.Ret:0:*:{_h('return ')}*{_h('__name__')}",
        f"Php.Generic.Lic:0:*:{_h('License')}",
    ]
    for line in ndb:
        labels[line.split(":", 1)[0]] = "overbroad"
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.stat().st_size > 0)
    clean = [p for p in files if "org-documents" not in p.parts][::97][:6]
    hdb, hsb = [], []
    for i, path in enumerate(clean):
        data = path.read_bytes()
        name = f"Php.Shell.Hash{i}"
        labels[name] = "overbroad"
        if i % 3 == 0:
            hdb.append(f"{hashlib.md5(data).hexdigest()}:{len(data)}:{name}")
        elif i % 3 == 1:
            hdb.append(f"{hashlib.md5(data).hexdigest().upper()}:{len(data)}:{name}")
        else:
            hsb.append(f"{hashlib.sha256(data).hexdigest().upper()}:{len(data)}:{name}:73")
    for i, path in enumerate(sorted((corpus / "org-documents").iterdir())):
        data = path.read_bytes()
        name = f"Php.Mailer.Doc{i}"
        labels[name] = "targeting"
        if i % 2 == 0:
            hdb.append(f"{hashlib.md5(data).hexdigest()}:{len(data)}:{name}")
        else:
            hsb.append(f"{hashlib.sha1(data).hexdigest()}:*:{name}:73")
    return ndb, hdb, hsb, labels


def _slow() -> list[str]:
    return [
        f"Php.Obfus.S1;Engine:81-255,Target:0;0&1;{_h('self')};0/(\\w+\\s?)+(?=\\W)\\w/",
        f"Php.Obfus.S2;Engine:81-255,Target:0;0&1;{_h('def')};0/([a-z_]+ ?)+(?=[^a-z_ ])[a-z]/",
        f"Php.Obfus.S3;Engine:81-255,Target:0;0&1;{_h('return')};0/((\\w|\\s)+)+(?=\\W)\\w/",
    ]


_NEGATIVES = [
    f"Doc.Macro.Dropper;Engine:81-255,Target:2;0&1&2;{_h('AutoOpen')}::i;{_h('Shell(')}::i;{_h('powershell')}::i",
    f"Doc.Macro.Downloader;Engine:81-255,Target:2;0&(1|2);{_h('Document_Open')};{_h('URLDownloadToFile')};{_h('MSXML2.XMLHTTP')}::i",
    f"Pdf.Exploit.Js;Engine:81-255,Target:10;0&1&2;{_h('/JavaScript')};{_h('eval(')};{_h('unescape(')}",
    f"Pdf.Exploit.Launch;Engine:81-255,Target:10;0&1;{_h('/Launch')};{_h('cmd.exe')}::i",
    f"Mail.Phish.Attach;Engine:81-255,Target:4;0&1;{_h('Content-Type: application/x-msdownload')}::i;{_h('.exe')}",
    f"Rtf.Exploit.Equation;Engine:81-255,Target:0;0&1;{_h('{' + chr(92) + 'rtf')};{_h('Equation.3')}::i",
    # Version information read honestly: a family's publisher with its code bytes required,
    # and a masquerading check on a public vendor's name.
    f"Win.Adware.Bundler;Engine:51-255,Target:1;0&1;{_vi('CompanyName', 'Shady Bundles Co., Ltd.')};"
    "558bec83ec10e8????????8945fc",
    f"Win.Trojan.FakeMs;Engine:51-255,Target:1;0&1;{_vi('CompanyName', 'Microsoft Corporation')};"
    "6a4068003000006a",
]


def _removal(
    previous_ndb: Path, evidence: Path
) -> tuple[list[str], list[str], dict[str, str], dict[str, str], list[str]]:
    """Samples for the previous release's plain body signatures, and weakened victims.

    Returns (extra previous hdb lines, allow/ignore lines as "suffix\\tline",
    replaced ndb lines {name: new line}, labels, extra current hdb lines).
    """
    evidence.mkdir(parents=True, exist_ok=True)
    plain: list[tuple[str, str]] = []
    for line in previous_ndb.read_text().splitlines():
        parts = line.split(":")
        if (
            len(parts) >= 4
            and parts[1] == "0"
            and parts[2] == "*"
            and all(c in "0123456789abcdefABCDEF" for c in parts[3])
        ):
            plain.append((parts[0], parts[3]))
    for index, (_name, sig) in enumerate(plain):
        body = b"<?php\n/* sample */\n" + bytes.fromhex(sig) + b"\n?>\n"
        (evidence / f"sample-{index:05d}.php").write_bytes(body)
    labels: dict[str, str] = {}
    replaced: dict[str, str] = {}
    victims = plain[40::150][:12]
    allow: list[str] = []
    for number, (name, sig) in enumerate(victims):
        labels[name] = "removed"
        kind = number % 6
        if kind == 0:  # one byte changed, same name
            flipped = sig[:-2] + ("00" if sig[-2:] != "00" else "01")
            replaced[name] = f"{name}:0:*:{flipped}"
        elif kind == 1:  # anchored at offset 0: the code sits after the PHP opening
            replaced[name] = f"{name}:0:0:{sig}"
        elif kind == 2:  # narrowed to PE files
            replaced[name] = f"{name}:1:*:{sig}"
        elif kind == 3:  # an extra required byte run no sample carries
            replaced[name] = f"{name}:0:*:{sig}{{-10}}deadbeef"
        elif kind == 4:  # switched off by an ignore list
            allow.append(f".ign2\t{name}")
        else:  # the sample allow-listed by hash
            index = plain.index((name, sig))
            data = (evidence / f"sample-{index:05d}.php").read_bytes()
            allow.append(f".fp\t{hashlib.md5(data).hexdigest()}:{len(data)}:clean-{number}")
    # Hash signatures of generated samples: previous lists the right digest, current a wrong one.
    prev_hdb, cur_hdb = [], []
    for number in range(4):
        data = f"#!/usr/bin/perl\n# ircbot variant {number}\nsocket(S, PF_INET, SOCK_STREAM, 6);\n".encode()
        (evidence / f"hashed-{number}.pl").write_bytes(data)
        name = f"{{MD5}}perl.ircbot.Victim.{number}"
        labels[name] = "removed"
        prev_hdb.append(f"{hashlib.md5(data).hexdigest()}:{len(data)}:{name}")
        if number % 2 == 0:
            wrong = hashlib.md5(data + b" ").hexdigest()
            cur_hdb.append(f"{wrong}:{len(data)}:{name}")
        else:
            cur_hdb.append(f"{hashlib.md5(data).hexdigest()}:{len(data)}:{name}")
            allow.append(
                f".sfp\t{hashlib.sha256(data).hexdigest()}:{len(data)}:clean-sha-{number}:73"
            )
    return prev_hdb, allow, replaced, labels, cur_hdb


def build(root: Path, clean_sources: list[Path]) -> LabelledSet:
    """Write the previous and current releases, the clean corpus and the evidence corpus under ``root``."""
    if root.exists():
        shutil.rmtree(root)
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    for index, path in enumerate(clean_sources):
        target = corpus / "system" / f"{index:05d}-{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    docs = corpus / "org-documents"
    docs.mkdir()
    for name, text in _ORG_DOCS.items():
        (docs / name).write_text(text)
    evidence = root / "evidence"
    prev_dir, cur_dir = root / "previous", root / "current"
    prev_dir.mkdir()
    cur_dir.mkdir()
    prev_hdb_extra, allow, replaced, labels, cur_hdb_extra = _removal(
        MALDET / PREVIOUS / "rfxn.ndb", evidence
    )
    shutil.copyfile(MALDET / PREVIOUS / "rfxn.ndb", prev_dir / "rfxn.ndb")
    (prev_dir / "rfxn.hdb").write_text(
        (MALDET / PREVIOUS / "rfxn.hdb").read_text() + "\n".join(prev_hdb_extra) + "\n"
    )
    doc_ndb, doc_ldb, doc_cdb = _document()
    for line in doc_ndb + doc_cdb:
        labels[line.split(":", 1)[0]] = "document"
    for line in doc_ldb:
        labels[line.split(";", 1)[0]] = "document"
    target_ndb = _targeting()
    target_ldb, target_cdb = _targeting_ldb_cdb()
    for line in target_ndb + target_cdb:
        labels[line.split(":", 1)[0]] = "targeting"
    for line in target_ldb:
        labels[line.split(";", 1)[0]] = "targeting"
    over_ndb, over_hdb, over_hsb, more = _overbroad_and_org_hashes(corpus)
    labels.update(more)
    slow = _slow()
    for line in slow:
        labels[line.split(";", 1)[0]] = "slow"
    # Mix the abusive lines into the real files: spread evenly, not appended in a block.
    real_ndb = (MALDET / CURRENT / "rfxn.ndb").read_text().splitlines()
    current_ndb: list[str] = []
    for line in real_ndb:
        name = line.split(":", 1)[0]
        current_ndb.append(replaced.get(name, line))
    extra = doc_ndb + target_ndb + over_ndb
    step = max(len(current_ndb) // (len(extra) + 1), 1)
    for offset, line in enumerate(extra):
        current_ndb.insert((offset + 1) * step + offset, line)
    # Victims that the second version had dropped or renamed are appended with their old name.
    present = {line.split(":", 1)[0] for line in current_ndb}
    current_ndb += [line for name, line in replaced.items() if name not in present]
    (cur_dir / "rfxn.ndb").write_text("\n".join(current_ndb) + "\n")
    real_hdb = (MALDET / CURRENT / "rfxn.hdb").read_text().splitlines()
    hdb_extra = over_hdb + cur_hdb_extra
    step = max(len(real_hdb) // (len(hdb_extra) + 1), 1)
    for offset, line in enumerate(hdb_extra):
        real_hdb.insert((offset + 1) * step + offset, line)
    (cur_dir / "rfxn.hdb").write_text("\n".join(real_hdb) + "\n")
    (cur_dir / "rfxn.hsb").write_text("\n".join(over_hsb) + "\n")
    (cur_dir / "rfxn.ldb").write_text(
        "\n".join(_NEGATIVES[:3] + doc_ldb + slow + target_ldb + _NEGATIVES[3:]) + "\n"
    )
    (cur_dir / "rfxn.cdb").write_text("\n".join(doc_cdb + target_cdb) + "\n")
    for suffix in (".fp", ".sfp", ".ign2"):
        lines = [line.split("\t", 1)[1] for line in allow if line.startswith(suffix + "\t")]
        if lines:
            (cur_dir / f"rfxn{suffix}").write_text("\n".join(lines) + "\n")
    negatives = tuple(line.split(";", 1)[0] for line in _NEGATIVES)
    return LabelledSet(
        previous=sorted(prev_dir.iterdir()),
        current=sorted(cur_dir.iterdir()),
        corpus=corpus,
        evidence=evidence,
        labels=labels,
        negatives=negatives,
    )


@dataclass(frozen=True)
class Score:
    #: category -> (caught, total)
    recall: dict[str, tuple[int, int]]
    missed: dict[str, list[str]]
    #: real signatures (of the current release, abusive ones excluded) and those flagged at error level
    benign_total: int
    benign_flagged: list[str]
    negatives_flagged: list[str]
    seconds: float


def _names(finding: object) -> set[str]:
    from clearance.inspection.findings import Finding

    assert isinstance(finding, Finding)
    out = {loc.logical_name for loc in finding.locations if loc.logical_name}
    out.update(str(n) for n in finding.evidence.get("rules_over_budget", []))
    out.update(str(n) for n in finding.evidence.get("previous_rules", []))
    return out


def evaluate(labelled: LabelledSet, work: Path) -> Score:
    """Inspect the current release as an update of the previous one and score the findings.

    An abusive signature is caught when a finding at error level (high or
    critical) names it -- for ``removed``, when a removed-detection finding
    at medium or above names it (the default policy sends those to a person).
    """
    import hashlib as _hashlib
    import time

    from clearance.inspection import NullProgress
    from clearance.inspection.base import Artifact, InspectionInput
    from clearance.inspection.content.clamav_format import parse_database
    from clearance.inspection.content.inspector import ContentInspector
    from clearance.inspection.findings import Severity

    def artifact(path: Path) -> Artifact:
        data = path.read_bytes()
        return Artifact(path.name, "content", _hashlib.sha256(data).hexdigest(), len(data), path)

    inp = InspectionInput(
        product="maldet",
        version="2013090421650",
        artifacts=tuple(artifact(p) for p in labelled.current),
        previous_artifacts=tuple(artifact(p) for p in labelled.previous),
        corpus=(labelled.corpus,),
        work_dir=work,
        evidence=(labelled.evidence,),
    )
    started = time.perf_counter()
    findings = ContentInspector().inspect(inp, NullProgress()).findings
    seconds = time.perf_counter() - started
    flagged: set[str] = set()
    removed: set[str] = set()
    for f in findings:
        names = _names(f)
        if f.severity >= Severity.HIGH:
            flagged |= names
        if f.rule_id == "content.detection-removed" and f.severity >= Severity.MEDIUM:
            removed |= names
    recall: dict[str, tuple[int, int]] = {}
    missed: dict[str, list[str]] = {}
    for category in CATEGORIES:
        names = sorted(n for n, c in labelled.labels.items() if c == category)
        caught = [n for n in names if n in (removed if category == "removed" else flagged)]
        recall[category] = (len(caught), len(names))
        missed[category] = [n for n in names if n not in caught]
    real = {
        r.name
        for p in labelled.current
        for r in parse_database(p.name, p).rules
        if p.name in ("rfxn.ndb", "rfxn.hdb")
    } - set(labelled.labels)
    return Score(
        recall=recall,
        missed=missed,
        benign_total=len(real),
        benign_flagged=sorted(real & flagged),
        negatives_flagged=sorted(set(labelled.negatives) & flagged),
        seconds=seconds,
    )


def clean_sources(cap_bytes: int = 24 * 2**20) -> list[Path]:
    """Files of this machine for the clean corpus (Python packages: text and ELF)."""
    from clearance.inspection.corpus import list_corpus

    roots = [Path("/usr/lib/python3/dist-packages"), Path("/usr/lib/python3")]
    return list_corpus([r for r in roots if r.is_dir()][:1], cap_bytes)

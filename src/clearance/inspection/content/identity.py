"""Patterns that name one organisation's machines, networks or people.

A detection pattern that contains an internal host name, a directory
domain, a private network address, a UNC share or a user's profile path
fires only inside one organisation (or on one person's files): that is
targeting, whatever the engine and however the bytes are written (text,
hex, UTF-16, legacy encodings: the literals come decoded from
:func:`.analysis.literals`).  Public domains and addresses are not
reported: malware signatures name their command-and-control servers.
"""

from __future__ import annotations

import itertools
import re

from clearance.inspection.content import analysis, lexicon
from clearance.inspection.content.model import ContentRule

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_PRIVATE_IP = re.compile(
    rf"(?<![\d.])(?:10\.{_OCTET}|172\.(?:1[6-9]|2\d|3[01])|192\.168|100\.(?:6[4-9]|[7-9]\d|1[01]\d|12[0-7]))"
    rf"\.{_OCTET}\.{_OCTET}(?:/\d{{1,2}})?(?![\d])"
)
_INTERNAL_TLDS = (
    "local",
    "corp",
    "internal",
    "intranet",
    "intra",
    "lan",
    "ad",
    "priv",
    "private",
    "localdomain",
    "home.arpa",
    "domain",
    "office",
    "hq",
)
_INTERNAL_HOST = re.compile(
    r"(?<![A-Z0-9.-])((?:[A-Z0-9](?:[A-Z0-9-]{0,62})\.)+(?:"
    + "|".join(re.escape(t.upper()) for t in sorted(_INTERNAL_TLDS, key=len, reverse=True))
    + r"))(?![A-Z0-9-])"
)
_DOMAIN_SID = re.compile(r"\bS-1-5-21-\d{6,10}-\d{6,10}-\d{6,10}\b")
_LOOPBACK = frozenset({"127.0.0.1", "LOCALHOST", "::1", "."})
_PUNCTUATION = " \"'=:;,/\\[]()"
_UNC = re.compile(r"(?<![A-Z0-9\\])\\\\([A-Z0-9][A-Z0-9_.-]{1,62})\\[A-Z0-9$_.-]")
_PROFILE = re.compile(
    r"(?:[A-Z]:\\USERS|\\USERS|[A-Z]:\\DOCUMENTS AND SETTINGS|/HOME|/USERS)[\\/]+([A-Z0-9][A-Z0-9._-]{1,40})[\\/]"
)
_DN = re.compile(r"\b(?:DC=[A-Z0-9-]+\s*,\s*DC=[A-Z0-9-]+|OU=[^,=]{1,64},\s*(?:OU|DC)=)")
#: Profile-like folder names that belong to no one person (or to a service).
_GENERIC = frozenset(
    {g.upper() for g in lexicon.GENERIC_PROFILES}
    | {
        "PUBLIC",
        "DEFAULT",
        "DEFAULT USER",
        "ALL USERS",
        "ADMINISTRATOR",
        "ADMIN",
        "ROOT",
        "USER",
        "USERNAME",
        "GUEST",
        "HTTPD",
        "WWW",
        "WWW-DATA",
        "APACHE",
        "NGINX",
        "NOBODY",
        "FTP",
        "MAIL",
        "VIRTUAL",
        "SITES",
        "DOMAINS",
        "HTDOCS",
        "PUBLIC_HTML",
        "CPANEL",
        "DEFAULTAPPPOOL",
        "LOCALSERVICE",
        "NETWORKSERVICE",
        "SHARED",
    }
)


#: Words that stand for "some host" in usage text (``concon \\\\ip\\share``).
_PLACEHOLDER_HOSTS = frozenset(
    {
        "127.0.0.1",
        "LOCALHOST",
        ".",
        "?",
        "IP",
        "HOST",
        "HOSTNAME",
        "SERVER",
        "COMPUTER",
        "MACHINE",
        "TARGET",
        "REMOTE",
        "SERVERNAME",
        "COMPUTERNAME",
        "DC",
        "DOMAIN",
        "X",
        "IPADDRESS",
    }
)
#: The identity must be a good part of the string it is in: an address in a tool's usage
#: text ("example: iis 10.10.10.10 -p 80") is not a target.
_DOMINANCE = 0.4


def identity_reasons(rule: ContentRule) -> list[tuple[str, int]]:
    """(reason, pattern line) for every pattern that names an internal host, network or person.

    Whether code evidence excuses it is the caller's decision (see the targeting check).
    An identity must be a good part of its string (:data:`_DOMINANCE`).
    """
    out: list[tuple[str, int]] = []
    seen: set[str] = set()
    for lit in analysis.literals(rule):
        text = lit.text
        found: list[str] = []
        size = max(len(text), 1)

        def dominant(m: re.Match[str], size: int = size) -> bool:
            return (m.end() - m.start()) / size >= _DOMINANCE

        for m in _PRIVATE_IP.finditer(text):
            # Only a pattern that is (nearly) just the address: honest rules quote
            # tools' usage text ("-h 192.168.1.1 -p 80") and sample configurations.
            if len(text.strip(_PUNCTUATION)) <= len(m.group(0)) + 4:
                found.append(f"the private network address {m.group(0)}")
        for m in _DOMAIN_SID.finditer(text):
            found.append(f"the domain security identifier {m.group(0)}")
        for m in _INTERNAL_HOST.finditer(text):
            if m.group(1) not in ("LOCALHOST.LOCALDOMAIN",) and dominant(m):
                found.append(f"the internal host or directory domain {m.group(1).lower()}")
        for m in _UNC.finditer(text):
            if m.group(1) not in _PLACEHOLDER_HOSTS | _LOOPBACK and dominant(m):
                found.append(f"the network share host {m.group(1).lower()}")
        for m in _PROFILE.finditer(text):
            if m.group(1) not in _GENERIC and not m.group(1).startswith("%") and dominant(m):
                found.append(f"the profile folder of user {m.group(1).lower()}")
        for m in _DN.finditer(text):
            if dominant(m):
                found.append(f"the directory name {m.group(0).lower()}")
        for what in found:
            key = f"{lit.pattern.identifier}:{what}"
            if key not in seen:
                seen.add(key)
                out.append((f"{lit.pattern.identifier} names {what}", lit.pattern.line))
    return out


# --- one machine's serial numbers -------------------------------------------------------------

_SERIAL_WORD = (
    r"(?:SERIAL ?(?:NUMBER|NO\.?|#)?|SERIALNUMBER|SERVICE ?TAG|SERVICETAG|ASSET ?TAG|MACHINE ?GUID|"
    r"MACHINEGUID|SMBIOS ?UUID|SYSTEM ?UUID|HWID|HARDWARE ?ID|VOLUME ?SERIAL(?: NUMBER)?|"
    r"DISK ?SERIAL|BIOS ?SERIAL|BASEBOARD ?SERIAL|MAC ?ADDRESS|MACADDRESS)"
)
#: A serial keyword and its value in one string ("Service Tag: 7XK9M2J", "SerialNumber=5CG8123XYZ").
_SERIAL_PAIR = re.compile(
    rf"(?<![A-Z]){_SERIAL_WORD}(?: IS)?[\s:=#\"'>]{{0,4}}(?:\{{)?([A-Z0-9](?:[A-Z0-9-]{{3,46}}[A-Z0-9]))"
)
#: A whole hardware address (not an OUI prefix: anti-VM rules name those).
_MAC = re.compile(
    r"(?<![0-9A-F:-])((?:[0-9A-F]{2}([:-]))(?:[0-9A-F]{2}\2){4}[0-9A-F]{2})(?![0-9A-F:-])"
)
_GUID = re.compile(r"\{?([0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12})\}?")
#: Windows' generated host names carry a per-machine serial (DESKTOP-7K3J9QF, WIN-5E07COS9ALR).
_SERIAL_HOST = re.compile(r"(?<![A-Z0-9-])((?:DESKTOP|LAPTOP|WIN)-[A-Z0-9]{7,12})(?![A-Z0-9-])")
#: A bare serial-shaped value: letters and digits mixed (Dell service tag: 7; others longer).
_SERIAL_VALUE = re.compile(r"^[\W_]*([A-Z0-9]{7,24}|[0-9A-F]{4}-[0-9A-F]{4})[\W_]*$")
_SERIAL_PLACEHOLDERS = frozenset(
    {"NUMBER", "NONE", "UNKNOWN", "DEFAULT", "TOBEFILLEDBYOEM", "TO", "SYSTEMSERIALNUMBER"}
)


def _serial_like(value: str, strict: bool = False) -> bool:
    """Letters and digits mixed; ``strict`` (a value with no keyword beside it) wants them
    interleaved, so that words with a number ("kernel32", "WIN32API") are not serials."""
    digits = sum(c.isdigit() for c in value)
    letters = sum(c.isalpha() for c in value)
    if value in _SERIAL_PLACEHOLDERS or digits < 1 or not (letters >= 1 or "-" in value):
        return False
    switches = sum(1 for a, b in itertools.pairwise(value) if a.isdigit() != b.isdigit())
    return not strict or (digits >= 2 and switches >= 3)


def serial_reasons(rule: ContentRule) -> list[tuple[str, int]]:
    """(reason, line) for patterns naming one machine's serial number, MAC, GUID or serial host name.

    A bare serial-shaped value or GUID counts only when the rule also names a
    serial keyword (``MachineGuid``, ``Service Tag``, ``SerialNumber``...) in
    another pattern: .NET type-library GUIDs and random tokens are common in
    malware rules.  Gated by code evidence in the targeting check, as the
    names of :func:`identity_reasons` are.
    """
    lits = analysis.literals(rule)
    keyword = re.compile(rf"(?<![A-Z]){_SERIAL_WORD}(?![A-Z])")
    keyed = any(keyword.search(lit.text) for lit in lits)
    out: list[tuple[str, int]] = []
    seen: set[str] = set()
    for lit in lits:
        text = lit.text
        size = max(len(text.strip(_PUNCTUATION)), 1)
        found: list[str] = []
        for m in _SERIAL_PAIR.finditer(text):
            if _serial_like(m.group(1)):
                found.append(f"the machine serial {m.group(0).strip().lower()}")
        for m in _MAC.finditer(text):
            octets = m.group(1).replace("-", ":")
            if (
                octets not in ("00:00:00:00:00:00", "FF:FF:FF:FF:FF:FF")
                and len(m.group(1)) / size >= 0.6
            ):
                found.append(f"the hardware address {octets.lower()}")
        for m in _SERIAL_HOST.finditer(text):
            if any(c.isdigit() for c in m.group(1)[4:]) and len(m.group(1)) / size >= _DOMINANCE:
                found.append(f"the generated host name {m.group(1).lower()}")
        if keyed and not found:
            guid = _GUID.fullmatch(text.strip(_PUNCTUATION))
            bare = _SERIAL_VALUE.match(text)
            if guid:
                found.append(f"the machine GUID {guid.group(1).lower()}")
            elif bare and _serial_like(bare.group(1), strict=True) and not keyword.search(text):
                found.append(f"the serial number {bare.group(1).lower()}")
        for what in found:
            key = f"{lit.pattern.identifier}:{what}"
            if key not in seen:
                seen.add(key)
                out.append((f"{lit.pattern.identifier} names {what}", lit.pattern.line))
    return out

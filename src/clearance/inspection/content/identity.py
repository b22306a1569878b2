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

"""Find network endpoints (URLs, host names, IPv4 addresses, mail domains) in text.

The hard part is not finding them but not crying wolf: a compiled program is
full of dotted words (``libc.so.6``, ``.gnu.hash``, ``GLIBC_2.34``), version
numbers (``1.2.3.4``) and file names (``setup.py``, ``Makefile.am``).  So a
bare host name counts only when its last label is a real top-level domain
that is not also a common file extension, every label is lower-case DNS
syntax, and it is not glued to identifier characters; an IPv4 address only
when it is four in-range octets not preceded by words like "version" or "Section",
and not shaped like an OID arc or a 1.x/2.x version (``2.5.4.3``, ``1.4.1.17``).
Loopback, "any" and broadcast addresses are not endpoints.  Measured on
``/usr/bin`` by ``benchmarks/bench_code.py``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

# Generic TLDs common in real traffic, plus country codes -- minus those that are also common
# file extensions or identifiers (.py .so .sh .md .rs .pl .pm .ps .mk .am .ac .in .la .cc
# .ml .mo .id .do .zip .mov .app .name .int), which would make every build tree "talk".
_GENERIC = (
    "com net org edu gov mil biz io co ai dev cloud online site xyz top club tech store shop "
    "pro mobi tv me us uk eu asia onion click vip win bid download blog"
)
_COUNTRY = (
    "ad ae af ag al ao ar as at au aw az ba bb bd be bf bg bh bi bj bm bn bo br bs bt bw by "
    "bz ca cd cf cg ch ci ck cl cm cn cr cu cv cw cx cy cz de dj dk dm dz ec ee eg er es et fi "
    "fj fk fm fo fr ga gd ge gf gg gh gi gl gm gn gp gq gr gt gu gw gy hk hn hr ht hu ie il im "
    "iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz lb lc li lk lr ls lt lu lv ly ma "
    "mc mg mh mn mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe "
    "pf pg ph pk pn pr pt pw py qa re ro ru rw sa sb sc sd se sg si sk sl sm sn sr ss st sv sx "
    "sy sz tc td tf tg th tj tk tl tm tn to tr tt tw tz ua ug uy uz va vc ve vg vi vn vu wf ws "
    "ye yt za zm zw"
)
# Dropped on purpose: .nr .ci .to (git/config keys like format.to, pending.nr) and the
# English-word gTLDs (.email .host .stream .info ...) that name config keys and texinfo files.
TLDS = frozenset((_GENERIC + " " + _COUNTRY).split()) - {"py", "nr", "ci", "to"}

_URL = re.compile(
    r"(?i)\b(?:https?|ftps?|sftp|wss?|mqtts?|smtps?|tcp|udp|ssh|ldaps?|rtsp|irc)://"
    r"[^\s\"'<>\\`^{}|]+"
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_DOTTED = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+\.?")
_WASM_TYPE = re.compile(r"[if](?:8|16|32|64)(?:x\d+)?|v128")  # i32.store, f64.ne: opcodes
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_OCTET = re.compile(r"25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d")
# Words after which four dotted numbers are a version or a section number, not an address:
# "version 1.2.3.4", "v5.9.100.4", "Section 5.2.3.10", "RFC7540 8.1.2.4", "Edition 14 ... 21.4.2.1".
_VERSION_WORDS = re.compile(
    r"(?i)(?:\b(?:version|ver\.?|release|rev\.?|v|section|sect\.?|rfc\s*\d*,?|edition|"
    r"clause|chapter|appendix|step)|§)\s*[:=]?\s*$"
)
_GLUE_BEFORE = set("@/\\$%.-_:")
_WELL_KNOWN_IPS = frozenset({"1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4", "9.9.9.9"})
_NOT_ENDPOINTS = frozenset({"java.io", "java.net", "javax.net"})
# First labels that mark attribute access in code, not a host (``self.info``, ``logger.info``).
_IDENTIFIER_HEADS = frozenset(
    [
        "self",
        "this",
        "cls",
        "obj",
        "os",
        "sys",
        "log",
        "logger",
        "logging",
        "std",
        "args",
        "kwargs",
        "config",
        "settings",
        "request",
        "response",
        "ctx",
        "module",
        "super",
        "np",
        "pd",
        "result",
        "data",
        "item",
        "value",
        "node",
        "event",
        "msg",
        "err",
    ]
)


@dataclass(frozen=True, order=True)
class Endpoint:
    """One endpoint as written (``value``) and the host it names (``host``, lower-case)."""

    host: str
    kind: str  # "url", "host", "ip" or "email"
    value: str


def _valid_ip(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(_OCTET.fullmatch(p) for p in parts)


def _interesting_ip(text: str) -> bool:
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        return False
    first, second = (int(p) for p in text.split(".")[:2])
    if first == 0:
        return False  # "this network": never a destination
    if first in (1, 2) and second < 10 and text not in _WELL_KNOWN_IPS:
        # OID arcs start 1. or 2. (2.5.4.3, 1.3.6.1) and so do most 4-part versions
        # (1.4.1.17, 2.1.17.3); 3.x.x.x and above are reported (4.2.2.2, 3.5.140.2, 5.9.100.4).
        return False
    return not (address.is_loopback or address.is_unspecified or text == "255.255.255.255")


def _host_name(text: str) -> str | None:
    """``text`` as a host name if it plausibly is one, else None."""
    name = text.rstrip(".")
    if name in _NOT_ENDPOINTS:
        return None
    labels = name.split(".")
    if len(labels) < 2 or labels[-1] not in TLDS or len(name) > 253:
        return None
    if _WASM_TYPE.fullmatch(labels[0]):
        return None
    if labels[0] in _IDENTIFIER_HEADS or any(label.isdigit() for label in labels):
        return None
    if not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return name


def _url_host(url: str) -> str | None:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host or "%" in host or "{" in host or "$" in host:
        return None  # a template such as https://%s/ names no fixed host
    host = host.lower().rstrip(".")
    if host == "localhost":
        return None
    if _valid_ip(host):
        return host if _interesting_ip(host) else None
    if "." not in host:
        return None
    return host


def find_endpoints(text: str) -> Iterator[tuple[Endpoint, int]]:
    """Every endpoint in ``text`` with the index where it starts (URLs first, no overlaps)."""
    taken: list[tuple[int, int]] = []
    for match in _URL.finditer(text):
        url = match.group().rstrip(".,;:)]'\"")
        host = _url_host(url)
        taken.append((match.start(), match.start() + len(url)))
        if host:
            yield Endpoint(host, "url", url), match.start()
    for match in _EMAIL.finditer(text):
        if any(a <= match.start() < b for a, b in taken):
            continue
        taken.append((match.start(), match.end()))
        host = _host_name(match.group(1).lower())
        if host:
            yield Endpoint(host, "email", match.group()), match.start()
    for match in _DOTTED.finditer(text):
        start, end = match.start(), match.end()
        if any(a <= start < b for a, b in taken):
            continue
        before = text[start - 1] if start else ""
        after = text[end] if end < len(text) else ""
        if before in _GLUE_BEFORE or after in ("(", "[", "-", "_"):
            continue
        token = match.group()
        if _valid_ip(token.rstrip(".")):
            if token.endswith("."):
                continue  # "1.2.3.4." is a longer version number
            if _VERSION_WORDS.search(text[max(0, start - 24) : start]):
                continue
            if _interesting_ip(token):
                yield Endpoint(token, "ip", token), start
            continue
        host = _host_name(token)
        if host:
            yield Endpoint(host, "host", host), start


def normalise_declared(declared: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """Declared endpoints as (exact hosts, wildcard suffixes such as ``.example.com``)."""
    exact: set[str] = set()
    suffixes: list[str] = []
    for entry in declared:
        item = entry.strip().lower()
        if not item:
            continue
        if "://" in item:
            item = urlsplit(item).hostname or ""
        elif item.startswith("*."):
            suffixes.append(item[1:].rstrip("."))
            continue
        else:
            item = item.split("/", 1)[0]
            if item.count(":") == 1:
                item = item.split(":", 1)[0]  # host:port
        if item:
            exact.add(item.rstrip("."))
    return frozenset(exact), tuple(suffixes)


def is_declared(host: str, declared: tuple[frozenset[str], tuple[str, ...]]) -> bool:
    exact, suffixes = declared
    return host in exact or any(host.endswith(s) for s in suffixes)

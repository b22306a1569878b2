"""Bytes a pattern looks for, read as text in every encoding a document might use.

Shared by every engine's analysis (YARA hex strings, ClamAV body and logical
signatures): a marking such as ``СЕКРЕТНО`` written as hex in CP1251 or
KOI8-R, ``机密`` in GBK, ``極秘`` in Shift-JIS, or ``TOP SECRET`` in UTF-16
must read the same as the plain text.  :func:`decodings` returns every
plausible reading; the caller matches its word lists against all of them, so
a wrong guess only costs a readable-looking string that matches nothing.

Also here: :func:`parse_clamav_hex`, turning ClamAV's compact hex notation
into byte runs (wildcards, jumps and alternatives split runs), and
:func:`unescape_rtf`, which undoes RTF ``\\'hh`` and ``\\uN`` escapes.
"""

from __future__ import annotations

import re
from functools import lru_cache

#: Single- and multi-byte encodings tried on every run of concrete bytes.
LEGACY_ENCODINGS = (
    "cp1251",  # Russian, Ukrainian, Bulgarian (Windows)
    "koi8_r",  # Russian (Unix, mail)
    "koi8_u",
    "cp866",  # Russian (DOS)
    "iso8859_5",
    "gbk",  # Simplified Chinese (GB2312 superset)
    "gb18030",
    "big5",  # Traditional Chinese
    "shift_jis",  # Japanese
    "cp932",
    "euc_jp",
    "iso2022_jp",
    "euc_kr",  # Korean
    "cp949",
    "cp1250",  # Central European (Polish ŚCIŚLE TAJNE)
    "iso8859_2",
    "cp1253",  # Greek
    "cp1252",  # Western European (SECRET DÉFENSE, GEHEIM, VS-NUR FÜR DEN DIENSTGEBRAUCH)
    "mac_roman",
)


def _has_non_ascii_letters(text: str) -> bool:
    return any(ord(c) > 127 and c.isalpha() for c in text)


@lru_cache(maxsize=65536)
def decodings(data: bytes) -> tuple[str, ...]:
    """Every plausible text reading of ``data`` (ASCII/UTF-8 first, then UTF-16, then legacy)."""
    out: list[str] = []
    if len(data) >= 4 and data[1::2].count(0) >= len(data) // 2 - 1:
        out.append(data.replace(b"\x00", b"").decode("latin-1"))
    if len(data) >= 4 and data[0::2].count(0) >= len(data) // 2 - 1:
        out.append(data.replace(b"\x00", b"").decode("latin-1"))
    for codec in ("utf-8", "utf-16-le", "utf-16-be", "latin-1"):
        try:
            out.append(data.decode(codec))
        except UnicodeDecodeError:
            continue
    if any(b >= 0x80 for b in data) or b"\x1b$" in data:
        for codec in LEGACY_ENCODINGS:
            try:
                text = data.decode(codec)
            except (UnicodeDecodeError, LookupError):
                continue
            if _has_non_ascii_letters(text):
                out.append(text)
    return tuple(dict.fromkeys(out))


_RTF_HEX = re.compile(r"\\'([0-9A-Fa-f]{2})")
_RTF_HEX_RUN = re.compile(r"(?:\\'[0-9A-Fa-f]{2})+")
_RTF_UNICODE = re.compile(r"\\u(-?\d{1,6})\s?(?:\\'[0-9A-Fa-f]{2}|\?)?")


def unescape_rtf(text: str, codec: str = "cp1252") -> str:
    """Undo RTF escapes: ``\\uN`` (UTF-16 code unit, negative as in RTF) and ``\\'hh`` bytes."""

    def unicode_char(m: re.Match[str]) -> str:
        value = int(m.group(1))
        if value < 0:
            value += 65536
        return chr(value) if 0 < value < 0xD800 or 0xE000 <= value < 0x110000 else ""

    text = _RTF_UNICODE.sub(unicode_char, text)

    def hex_run(m: re.Match[str]) -> str:
        # A run of consecutive \'hh escapes is one byte string in the document's code page.
        return bytes(int(h, 16) for h in _RTF_HEX.findall(m.group(0))).decode(codec, "replace")

    return _RTF_HEX_RUN.sub(hex_run, text)


_CLAM_TOKEN = re.compile(
    r"[0-9A-Fa-f]{2}"  # a byte
    r"|\?\?|[0-9A-Fa-f]\?|\?[0-9A-Fa-f]"  # wildcards (whole byte, nibbles)
    r"|\*|\{[^}]*\}|\[[^\]]*\]"  # jumps
    r"|!?\((?:[^()]|\([^()]*\))*\)"  # alternatives, negated alternatives, (B)/(L) anchors
    r"|."
)


def parse_clamav_hex(value: str) -> list[bytes]:
    """Concrete byte runs of a ClamAV hex signature; anything not a plain byte splits runs.

    Alternatives of whole byte strings (``(6162|6364)``) contribute each
    branch as a run of its own, so a marking split across branches is still read.
    """
    runs: list[bytes] = []
    current = bytearray()
    for m in _CLAM_TOKEN.finditer(value):
        token = m.group(0)
        if len(token) == 2 and all(c in "0123456789abcdefABCDEF" for c in token):
            current.append(int(token, 16))
            continue
        if current:
            runs.append(bytes(current))
            current = bytearray()
        if token.startswith("(") and "|" in token:
            for branch in token[1:-1].split("|"):
                if re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", branch):
                    runs.append(bytes.fromhex(branch))
    if current:
        runs.append(bytes(current))
    return runs


def looks_like_text(data: bytes, threshold: float = 0.95) -> bool:
    """True when ``data`` reads as printable text in UTF-8 or a legacy encoding (not UTF-16).

    UTF-16 is left out: almost any byte pair is a printable CJK ideograph in it.
    """
    if not data or sum(1 for b in data if b < 0x20 and b not in (9, 10, 13)) > 0:
        return False
    for codec in ("utf-8", *LEGACY_ENCODINGS):
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        printable = sum(1 for c in text if c.isprintable() or c in "\t\r\n")
        letters = sum(1 for c in text if c.isalpha())
        if printable / len(text) >= threshold and letters >= 0.6 * len(text):
            return True
    return False

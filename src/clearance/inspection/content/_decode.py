"""Every readable text a pattern's bytes can stand for.

A rule that hunts documents need not write ``"СЕКРЕТНО"``: it can write the
bytes in CP1251 or KOI8-R as hex, the GBK or Shift-JIS bytes of ``机密``, an
RTF document's ``\\'c1\\'e0`` or ``\\u26426?`` escapes, a base64 fragment
computed by hand at any of the three alignments, or a regex with one
character class per letter (``[Ss][Ee][Cc]...``).  The checks look for words
in what this module returns, so each disguise is undone here once.

Every function is linear in its input and returns a bounded number of texts.
Decodings are strict: bytes that are not valid in a code page give no text in
that code page, which keeps random binary from turning into words.
"""

from __future__ import annotations

import base64
import binascii
import re

from clearance.inspection.content import textdecode

_BASE64_FRAGMENT = re.compile(r"[A-Za-z0-9+/]{8,}={0,2}")
_CASE_CLASS = re.compile(r"\[([^\]\\]{1,6})\]")
_PRINTABLE_SHARE = 0.8
_HEX_ONLY = re.compile(r"[0-9A-Fa-f]+")
#: Code pages a decoded base64 fragment is read in; single-byte pages that accept
#: every byte (latin-1, cp1252) are left out: every fragment would "decode" in them.
_BASE64_CODECS = ("utf-8", "utf-16-le", "utf-16-be", "gb18030", "shift_jis", "cp1251", "koi8_r")


def byte_decodings(data: bytes) -> list[str]:
    """Texts the bytes read as (UTF-8, UTF-16, legacy code pages): :mod:`.textdecode`."""
    return list(textdecode.decodings(data))


def text_disguises(text: str) -> list[str]:
    """Texts hidden inside a literal: escapes, bytes as latin-1, base64 fragments."""
    out: list[str] = []
    if any(0x80 <= ord(c) < 0x100 for c in text) and all(ord(c) < 0x100 for c in text):
        # "\xe6\x9c\xba" in a YARA text string: the bytes of a UTF-8 / GBK / ... text.
        out += byte_decodings(text.encode("latin-1"))
    if "\\'" in text:
        # The escaped bytes one for one (latin-1), then read in every code page below.
        raw = textdecode.unescape_rtf(text, "latin-1")
        out.append(raw)
        if all(ord(c) < 0x100 for c in raw):
            out += byte_decodings(raw.encode("latin-1"))
    if "\\u" in text:
        out.append(textdecode.unescape_rtf(text))
    for fragment in _BASE64_FRAGMENT.findall(text):
        out += base64_fragment_texts(fragment)
    return [t for t in dict.fromkeys(out) if t and t != text]


def base64_fragment_texts(fragment: str) -> list[str]:
    """What a base64 fragment encodes, whichever of the three alignments it was cut at.

    A fragment of the base64 of ``prefix + secret`` starts at an arbitrary
    character; padding the front with 0-3 filler characters restores a
    4-character boundary, and the bytes after the filler's are the secret.
    """
    body = fragment.rstrip("=")
    if _HEX_ONLY.fullmatch(body):
        return []  # hex digits are base64's alphabet too; such a run is far likelier hex
    if body.islower() or body.isupper() or body.isalpha():
        # The base64 of text mixes cases and digits; a plain word or name is not it.
        return []
    out: list[str] = []
    for filler in range(4):
        chunk = "A" * filler + body
        chunk = chunk[: len(chunk) - len(chunk) % 4]
        try:
            data = base64.b64decode(chunk, validate=True)
        except (binascii.Error, ValueError):
            continue
        data = data[(filler * 6 + 7) // 8 :]
        for codec in _BASE64_CODECS:
            text = _strict(data, codec)
            if text is not None and len(text) >= 4 and _mostly_printable(text, 0.9):
                out.append(text)
    return out


def collapse_case_classes(regex: str) -> str:
    """``[Ss][Ee][Cc]`` -> ``SeC``: a class of one letter's cases is that letter."""

    def one_letter(m: re.Match[str]) -> str:
        inner = m.group(1)
        if inner.startswith("^"):
            return m.group(0)
        letters = {c.lower() for c in inner if c.isalpha()}
        if len(letters) == 1 and all(c.isalpha() or c in "0123456789$@!|" for c in inner):
            return next(c for c in inner if c.isalpha())
        return m.group(0)

    return _CASE_CLASS.sub(one_letter, regex)


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _mostly_printable(text: str, share: float = _PRINTABLE_SHARE) -> bool:
    if not text:
        return False
    printable = sum(1 for c in text if c.isprintable() or c in "\t\r\n")
    return printable / len(text) >= share


__all__ = [
    "base64_fragment_texts",
    "byte_decodings",
    "collapse_case_classes",
    "text_disguises",
]

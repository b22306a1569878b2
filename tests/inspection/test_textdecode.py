"""Shared decoder: markings written as hex in legacy encodings read as text."""

from __future__ import annotations

import pytest

from clearance.inspection.content import textdecode


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        ("СЕКРЕТНО", "cp1251"),
        ("СЕКРЕТНО", "koi8_r"),
        ("СЕКРЕТНО", "cp866"),
        ("机密", "gbk"),
        ("極秘", "shift_jis"),
        ("대외비", "euc_kr"),
        ("TOP SECRET", "utf-16-le"),
        ("TOP SECRET", "utf-16-be"),
        ("SECRET DÉFENSE", "cp1252"),
        ("ŚCIŚLE TAJNE", "cp1250"),
    ],
)
def test_marking_in_legacy_encoding_is_read(text: str, codec: str) -> None:
    assert text in textdecode.decodings(text.encode(codec))


def test_clamav_hex_runs_split_on_wildcards_and_keep_alternative_branches() -> None:
    runs = textdecode.parse_clamav_hex("3c3f??(6162|6364)7a*{2-4}4142!(00|01)43a?44")
    assert runs == [b"<?", b"ab", b"cd", b"z", b"AB", b"C", b"D"]


def test_rtf_unicode_and_codepage_escapes_are_undone() -> None:
    assert textdecode.unescape_rtf(r"\u1057?\u1045?") == "СЕ"
    assert textdecode.unescape_rtf(r"\'d1\'c5\'ca\'d0\'c5\'d2\'cd\'ce", "cp1251") == "СЕКРЕТНО"

"""The one way in for untrusted JSON: size, depth and number limits, refused cleanly."""

from __future__ import annotations

import pytest

from clearance._untrusted import JsonLimits, UntrustedInputError, check_note, load_json
from clearance.errors import BadInput


def test_parses_ordinary_json() -> None:
    assert load_json(b'{"a": [1, 2.5, "x", null, true]}', "doc") == {"a": [1, 2.5, "x", None, True]}


def test_five_thousand_digit_integer_is_refused_by_name() -> None:
    with pytest.raises(UntrustedInputError, match=r"doc: a JSON integer has 5000 characters"):
        load_json(b'{"n": ' + b"9" * 5000 + b"}", "doc")
    assert issubclass(UntrustedInputError, BadInput)


def test_long_float_and_nan_are_refused() -> None:
    with pytest.raises(UntrustedInputError, match="JSON number"):
        load_json(b"[1." + b"1" * 100 + b"]", "doc")
    with pytest.raises(UntrustedInputError, match="NaN is not a JSON number"):
        load_json(b"[NaN]", "doc")


def test_deep_nesting_is_refused_before_parsing() -> None:
    with pytest.raises(UntrustedInputError, match="nested deeper than 64"):
        load_json(b"[" * 100_000 + b"]" * 100_000, "doc")
    # Brackets inside strings are not nesting.
    assert load_json(b'["' + b"[" * 1000 + b'"]', "doc") == ["[" * 1000]
    assert load_json(b"[" * 64 + b"]" * 64, "doc") is not None


def test_size_limit_is_checked_before_decoding() -> None:
    with pytest.raises(UntrustedInputError, match="larger than 10"):
        load_json(b"\xff" * 11, "doc", JsonLimits(max_bytes=10))


def test_bad_utf8_and_bad_json_are_one_line_errors() -> None:
    with pytest.raises(UntrustedInputError, match="not UTF-8"):
        load_json(b'"\xff"', "doc")
    with pytest.raises(UntrustedInputError, match="not valid JSON"):
        load_json(b"{", "doc")


def test_note_limits() -> None:
    assert check_note(b"a\n\nb\n", "note") == b"a\n\nb\n"
    with pytest.raises(UntrustedInputError, match="lines"):
        check_note(b"x\n" * 5000, "note")


def test_signed_notes_go_through_the_note_limits() -> None:
    from clearance.keys import Note, NoteFormatError

    with pytest.raises(NoteFormatError, match="lines, more than"):
        Note.from_bytes(b"origin\n" * 5000 + b"\n\xe2\x80\x94 x AAAA\n")


def test_yaml_depth_and_aliases_are_refused_while_composing() -> None:
    from clearance._untrusted import load_yaml

    assert load_yaml("default: approved\nrules: [{name: a}]\n", "p.yaml") == {
        "default": "approved",
        "rules": [{"name": "a"}],
    }
    with pytest.raises(UntrustedInputError, match="nested deeper than 64"):
        load_yaml("[" * 100_000 + "]" * 100_000, "p.yaml")  # RecursionError before
    with pytest.raises(UntrustedInputError, match="aliases"):
        load_yaml("a: &x [1, 2]\nb: [*x, *x, *x]\n", "p.yaml")


def test_verdict_policy_yaml_goes_through_the_limits() -> None:
    from clearance.inspection.policy import VerdictPolicy

    with pytest.raises(BadInput, match="nested deeper"):
        VerdictPolicy.from_yaml("rules: " + "[" * 5000 + "]" * 5000, "policy.yaml")

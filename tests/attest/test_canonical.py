"""The fast path of ``canonical_json`` writes exactly what the RFC 8785 canonicaliser writes.

A difference would let one statement hash two ways (a signature over one form, a
log entry in the other), so every value is compared with ``rfc8785.dumps`` itself,
including what each refuses.
"""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from clearance.attest import Envelope, canonical_json
from clearance.attest.dsse import Signature
from clearance.attest.errors import AttestFormatError

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x9F))
)
_json = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


def _reference(obj: Any) -> bytes | None:
    try:
        data: bytes = rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError):
        return None
    return data


def _ours(obj: Any) -> bytes | None:
    try:
        return canonical_json(obj)
    except AttestFormatError:
        return None


@settings(max_examples=2000, deadline=None)
@given(_json)
def test_fast_path_writes_what_rfc8785_writes(obj: Any) -> None:
    assert _ours(obj) == _reference(obj)


@pytest.mark.parametrize(
    "obj",
    [
        {"b": 1, "a": [True, None, "x"]},
        "\x00\x01\x08\x09\x0a\x0c\x0d\x1f\x7f\"\\/",  # every escape and DEL, which stays raw
        "é\u2028\u2029\U0001f600",  # raw UTF-8, line separators unescaped
        {"\U0001f600": 1, "\ue000": 2},  # sorted by UTF-16 code units, not code points
        2**53 - 1,
        -(2**53 - 1),
        2**53,  # beyond the exact range: refused by both
        1.0,
        1e21,
        -0.0,
        "\ud800",  # a lone surrogate is no Unicode text: refused by both
        {"k": "\udfff"},
        (1, 2),
        {1: "non-string key"},
    ],
)
def test_edge_cases_match_rfc8785(obj: Any) -> None:
    assert _ours(obj) == _reference(obj)


@settings(max_examples=500, deadline=None)
@given(
    payload_type=st.text(min_size=1, max_size=40),
    payload=st.binary(max_size=200),
    signatures=st.lists(st.tuples(st.text(max_size=40), st.binary(max_size=64)), max_size=3),
)
def test_envelope_bytes_are_what_rfc8785_writes(
    payload_type: str, payload: bytes, signatures: list[tuple[str, bytes]]
) -> None:
    """Envelopes (every logged entry, every bulk health report) skip the look at each value:
    their bytes must still be RFC 8785's, and a key id no UTF-8 can hold is refused."""
    envelope = Envelope(payload_type, payload, tuple(Signature(k, s) for k, s in signatures))
    expected = _reference(envelope.to_dict())
    try:
        assert envelope.to_bytes() == expected
    except AttestFormatError:
        assert expected is None


def test_escaped_and_unpaired_strings_in_an_envelope() -> None:
    for payload_type in ("application/vnd.in-toto+json", 'a"b\\c\n\u2028é\x7f'):
        envelope = Envelope(payload_type, b"{}", (Signature("device+1a2b", b"\x00" * 64),))
        assert envelope.to_bytes() == rfc8785.dumps(envelope.to_dict())
    with pytest.raises(AttestFormatError):
        Envelope("t", b"{}", (Signature("\ud800", b"\x00"),)).to_bytes()

"""The fast envelope encoding (submissions, bulk health reports) is exactly RFC 8785."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clearance.attest import Envelope, canonical_json
from clearance.attest.dsse import Signature
from clearance.gateway._admission import canonical_envelope

TEXT = st.text(min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(
    payload_type=TEXT,
    payload=st.binary(max_size=200),
    signatures=st.lists(st.tuples(st.text(max_size=40), st.binary(max_size=64)), max_size=3),
)
def test_envelope_bytes_are_the_canonical_bytes(
    payload_type: str, payload: bytes, signatures: list[tuple[str, bytes]]
) -> None:
    envelope = Envelope(payload_type, payload, tuple(Signature(k, s) for k, s in signatures))
    assert canonical_envelope(envelope) == canonical_json(envelope.to_dict())


def test_plain_and_escaped_strings_both_match() -> None:
    for payload_type in ("application/vnd.in-toto+json", 'a"b\\c\n\u2028é'):
        envelope = Envelope(payload_type, b"{}", (Signature("device+1a2b", b"\x00" * 64),))
        assert canonical_envelope(envelope) == envelope.to_bytes()

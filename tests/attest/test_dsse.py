"""DSSE envelopes: PAE, round trips, key ids and threshold verification with real Ed25519."""

from __future__ import annotations

import base64
import json

import pytest

from clearance.attest import (
    Envelope,
    EnvelopeFormatError,
    EnvelopeSignatureError,
    canonical_json,
    key_id,
    pae,
    sign_envelope,
)
from clearance.keys import Signer


def test_pae_matches_the_dsse_spec_example() -> None:
    # The worked example of the DSSE protocol document.
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("t\u00e9", b"\xff") == b"DSSEv1 3 t\xc3\xa9 1 \xff"


def test_canonical_json_is_rfc8785() -> None:
    assert canonical_json({"b": [1.0, "\u00e9"], "a": 1e21}) == '{"a":1e+21,"b":[1,"é"]}'.encode()


def test_round_trip_and_keyid_rule() -> None:
    signer = Signer.generate("vendor")
    env = sign_envelope("application/x-test", b"payload", [signer])
    assert env.signatures[0].keyid == f"vendor+{signer.verifier.key_id:08x}"
    assert key_id(signer.verifier) == env.signatures[0].keyid
    again = Envelope.from_bytes(env.to_bytes())
    assert again == env
    assert again.to_bytes() == env.to_bytes()
    assert again.verify([signer.verifier]) == [signer.verifier]


def test_dsse_signature_is_over_pae() -> None:
    signer = Signer.generate("vendor")
    env = sign_envelope("application/x-test", b"body", [signer])
    assert signer.verifier.verify(pae("application/x-test", b"body"), env.signatures[0].sig)
    assert not signer.verifier.verify(b"body", env.signatures[0].sig)


def test_threshold_counts_distinct_trusted_keys() -> None:
    a, b, c = (Signer.generate(n) for n in ("a", "b", "c"))
    env = sign_envelope("t", b"x", [a, b])
    assert len(env.verify([a.verifier, b.verifier, c.verifier], threshold=2)) == 2
    with pytest.raises(EnvelopeSignatureError, match="2 valid signature"):
        env.verify([a.verifier, b.verifier, c.verifier], threshold=3)
    # Listing one key twice does not count twice.
    with pytest.raises(EnvelopeSignatureError):
        sign_envelope("t", b"x", [a]).verify([a.verifier, a.verifier], threshold=2)


def test_untrusted_signer_is_refused() -> None:
    env = sign_envelope("t", b"x", [Signer.generate("mallory")])
    with pytest.raises(EnvelopeSignatureError):
        env.verify([Signer.generate("vendor").verifier])


def test_tampered_payload_is_a_forgery() -> None:
    signer = Signer.generate("vendor")
    env = sign_envelope("t", b"x", [signer])
    tampered = Envelope(env.payload_type, b"y", env.signatures)
    with pytest.raises(EnvelopeSignatureError, match="invalid signature"):
        tampered.verify([signer.verifier])
    retyped = Envelope("u", env.payload, env.signatures)
    with pytest.raises(EnvelopeSignatureError):
        retyped.verify([signer.verifier])


def test_attack_a_signature_checked_once_does_not_vouch_for_another_key_or_payload() -> None:
    """An envelope remembers the signatures it checked (the admission rule and both
    indexes ask about one submission's): the answer is kept per key bytes and signature
    bytes on that envelope object only, so a key with the same name and another public
    key, the signature moved onto another payload, or a copy with the signature
    swapped, is checked afresh and refused."""
    import dataclasses

    from clearance.keys import Verifier

    vendor = Signer.generate("vendor")
    impostor = Signer.generate("vendor")  # the same name, another key
    env = sign_envelope("t", b"x", [vendor])
    sig = env.signatures[0].sig
    assert env.signature_valid(vendor.verifier, sig)
    assert env.verify([vendor.verifier]) == [vendor.verifier]
    assert not env.signature_valid(impostor.verifier, sig)
    same_id = Verifier.from_public_bytes(
        "vendor", impostor.verifier.public_key, vendor.verifier.alg
    )
    assert not env.signature_valid(same_id, sig)
    moved = Envelope(env.payload_type, b"y", env.signatures)
    with pytest.raises(EnvelopeSignatureError, match="invalid signature"):
        moved.verify([vendor.verifier])
    swapped = dataclasses.replace(
        env, signatures=(dataclasses.replace(env.signatures[0], sig=bytes(64)),)
    )
    with pytest.raises(EnvelopeSignatureError, match="invalid signature"):
        swapped.verify([vendor.verifier])
    assert env.verify([vendor.verifier]) == [vendor.verifier]  # the original still holds


def test_urlsafe_base64_is_accepted() -> None:
    signer = Signer.generate("vendor")
    env = sign_envelope("t", b"\xfb\xff\xfe" * 10, [signer])
    obj = env.to_dict()
    obj["payload"] = base64.urlsafe_b64encode(env.payload).decode().rstrip("=")
    assert Envelope.from_bytes(json.dumps(obj).encode()) == env


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b'{"payloadType": 1}',
        b'{"payloadType": "t", "payload": "!!"}',
        b'{"payloadType": "t", "payload": "", "signatures": {}}',
        b'{"payloadType": "t", "payload": "", "signatures": [{"keyid": 3, "sig": ""}]}',
        b'{"payloadType": "t", "payload": "", "signatures": ["x"]}',
        b"\xff\xfe",
    ],
)
def test_malformed_envelopes_are_bad_input(data: bytes) -> None:
    with pytest.raises(EnvelopeFormatError):
        Envelope.from_bytes(data)

"""Ed25519 verification (libsodium) on RFC 8032 vectors and against malleability attacks."""

from __future__ import annotations

import base64

import nacl.bindings
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from clearance.keys import KeyFormatError, Signer, Verifier
from clearance.keys.ed25519 import ALG_ED25519, key_hash

# RFC 8032, section 7.1, TEST 1 (empty message) and TEST 2 (one byte 0x72).
RFC8032_VECTORS = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]

# The order of the prime subgroup of edwards25519.
L = 2**252 + 27742317777372353535851937790883648493
# The neutral element: a "public key" for which [S]B = R + [k]A holds for every message.
IDENTITY = b"\x01" + b"\x00" * 31


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032_VECTORS)
def test_rfc8032_vectors_sign_and_verify(
    seed: str, public: str, message: str, signature: str
) -> None:
    signer = Signer.from_seed("rfc8032", bytes.fromhex(seed))
    assert signer.public_key.hex() == public
    assert signer.sign(bytes.fromhex(message)).hex() == signature
    verifier = Verifier.from_public_bytes("rfc8032", bytes.fromhex(public))
    assert verifier.verify(bytes.fromhex(message), bytes.fromhex(signature))
    assert not verifier.verify(bytes.fromhex(message) + b"x", bytes.fromhex(signature))


def _universal_signature() -> bytes:
    """R = [s]B, S = s: valid under the identity key for any message (k*A vanishes)."""
    s = (123456789).to_bytes(32, "little")
    return nacl.bindings.crypto_scalarmult_ed25519_base_noclamp(s) + s


def test_small_order_key_that_signs_every_message_is_refused_as_a_key() -> None:
    with pytest.raises(KeyFormatError, match="small order"):
        Verifier.from_public_bytes("vendor", IDENTITY)
    # The same key as a verifier key line, with a correct key hash.
    encoded = base64.b64encode(bytes([ALG_ED25519]) + IDENTITY).decode()
    line = f"vendor+{key_hash('vendor', ALG_ED25519, IDENTITY):08x}+{encoded}"
    with pytest.raises(KeyFormatError, match="not an Ed25519 public key"):
        Verifier.parse(line)


def test_small_order_key_cannot_sign_every_message() -> None:
    """The attack OpenSSL lets through: one signature under the identity key verifies for
    every message, so a vendor registering such a key could later disown anything it
    signed.  Even a Verifier built around the key check refuses the signature."""
    signature = _universal_signature()
    openssl = Ed25519PublicKey.from_public_bytes(IDENTITY)
    for message in (b"release A", b"release B"):
        openssl.verify(signature, message)  # accepted: this is the hole
    smuggled = Verifier("vendor", ALG_ED25519, IDENTITY)
    assert not smuggled.verify(b"release A", signature)
    assert not smuggled.verify(b"release B", signature)


def test_non_canonical_s_is_refused() -> None:
    """S + L satisfies the same equation: accepting it would give a second valid signature
    (a second log entry digest) for one signed statement."""
    signer = Signer.generate("vendor")
    message = b"statement"
    signature = signer.sign(message)
    s = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s + L).to_bytes(32, "little")
    assert signer.verifier.verify(message, signature)
    assert not signer.verifier.verify(message, malleated)


@pytest.mark.parametrize("length", [0, 63, 65])
def test_signature_of_wrong_length_is_refused(length: int) -> None:
    assert not Signer.generate("v").verifier.verify(b"m", b"\x00" * length)


def test_key_name_and_note_text_checks_refuse_exactly_spaces_and_controls() -> None:
    """The checks run in the regex engine; over every code point they refuse exactly what
    the per-character definitions refuse (Unicode spaces and controls in key names;
    controls other than the newline in note text)."""
    from clearance.keys import NoteFormatError
    from clearance.keys.ed25519 import check_key_name
    from clearance.keys.note import check_note_text

    name_refused, text_refused = [], []
    for point in range(0x110000):
        ch = chr(point)
        if 0xD800 <= point <= 0xDFFF:
            continue  # lone surrogates: no text
        try:
            check_key_name(f"a{ch}b")
        except KeyFormatError:
            name_refused.append(ch)
        try:
            check_note_text(f"origin{ch}x\n")
        except NoteFormatError:
            text_refused.append(ch)
    assert name_refused == [
        c for c in map(chr, range(0x110000)) if c == "+" or c.isspace() or c < " " or c == "\x7f"
    ]
    assert text_refused == [
        c for c in map(chr, range(0x110000)) if (c < " " and c != "\n") or c == "\x7f"
    ]


def test_a_signers_verifier_is_made_once_and_is_its_own_key() -> None:
    """The log signs a checkpoint per batch: its verifier (a curve-point check) is kept."""
    signer = Signer.generate("log")
    assert signer.verifier is signer.verifier
    assert signer.verifier == Verifier.parse(signer.verifier.to_string())
    assert signer.verifier.verify(b"m", signer.sign(b"m"))

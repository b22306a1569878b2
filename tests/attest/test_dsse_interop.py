"""DSSE interoperability with an independent implementation: securesystemslib's ``dsse``.

Our envelopes must verify there, and its envelopes must verify here, with the
same Ed25519 key and our ``name+keyhash`` key id.
"""

from __future__ import annotations

import json

from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import CryptoSigner, SSlibKey

from clearance.attest import Envelope, key_id, pae, sign_envelope
from clearance.attest.statement import PAYLOAD_TYPE
from clearance.keys import Signer


def _sslib_key(signer: Signer) -> SSlibKey:
    return SSlibKey(
        key_id(signer.verifier), "ed25519", "ed25519", {"public": signer.public_key.hex()}
    )


def test_our_envelope_verifies_in_securesystemslib() -> None:
    signer = Signer.generate("vendor")
    env = sign_envelope(PAYLOAD_TYPE, b'{"_type": "https://in-toto.io/Statement/v1"}', [signer])
    theirs = SslibEnvelope.from_dict(json.loads(env.to_bytes()))
    assert theirs.pae() == pae(env.payload_type, env.payload)
    accepted = theirs.verify([_sslib_key(signer)], 1)
    assert list(accepted) == [key_id(signer.verifier)]


def test_securesystemslib_envelope_verifies_here() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    signer = Signer.generate("inspector")
    private = Ed25519PrivateKey.from_private_bytes(signer.seed)
    theirs = SslibEnvelope(b"hello DSSE", "application/x-test", {})
    theirs.sign(CryptoSigner(private, _sslib_key(signer)))
    ours = Envelope.from_bytes(json.dumps(theirs.to_dict()).encode())
    assert ours.verify([signer.verifier]) == [signer.verifier]

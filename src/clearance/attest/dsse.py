"""DSSE envelopes (secure-systems-lab DSSE v1.0) signed with C2SP signed-note Ed25519 keys.

Wire form: ``{"payloadType": str, "payload": base64, "signatures": [{"keyid": str,
"sig": base64}]}``, always serialised with RFC 8785, so the bytes that are
hashed and logged are a function of the envelope's content alone.  Signatures
are over the Pre-Authentication Encoding (PAE) of the spec.

Key id rule: ``keyid`` is ``<name>+<keyhash>``, the first two fields of the
signer's C2SP verifier key (``<name>+<keyhash>+<base64 key>``), where keyhash
is the eight-hex-digit signed-note key hash.  It names the key exactly as a
signed-note signature line does, without repeating the public key.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clearance._untrusted import UntrustedInputError, load_json
from clearance.attest.canonical import canonical_json_of_strings
from clearance.attest.errors import EnvelopeFormatError, EnvelopeSignatureError
from clearance.keys import ALG_ED25519, Signer, Verifier

MAX_ENVELOPE_BYTES = 16 << 20
MAX_SIGNATURES = 64


@functools.lru_cache(maxsize=1024)
def key_id(verifier: Verifier) -> str:
    """The DSSE ``keyid`` of a signed-note verifier key: ``name+keyhash`` (cached: it hashes)."""
    return f"{verifier.name}+{verifier.key_id:08x}"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding: ``DSSEv1 SP len(type) SP type SP len(body) SP body``."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def _b64decode(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise EnvelopeFormatError(f"DSSE envelope: {what} is not a string")
    # DSSE allows standard or URL-safe base64; both are accepted, standard is written.
    # binascii's strict mode checks the alphabet in C (base64.b64decode uses a regex).
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        pass
    try:
        if "+" in text or "/" in text:
            raise ValueError(text)
        return binascii.a2b_base64(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), strict_mode=True
        )
    except (binascii.Error, ValueError):
        raise EnvelopeFormatError(f"DSSE envelope: {what} is not valid base64") from None


@dataclass(frozen=True)
class Signature:
    """One DSSE signature: the key id (``name+keyhash``) and the 64-byte Ed25519 signature."""

    keyid: str
    sig: bytes

    def to_dict(self) -> dict[str, str]:
        return {"keyid": self.keyid, "sig": base64.b64encode(self.sig).decode()}


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope: the payload type, the payload bytes and their signatures."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode(),
            "signatures": [s.to_dict() for s in self.signatures],
        }

    def to_bytes(self) -> bytes:
        """The RFC 8785 bytes: what is written to files, logged and hashed."""
        return self._canonical

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of :meth:`to_bytes`: how verdicts and receipts name this envelope."""
        return self._digest

    # Made once per envelope object: a submission's envelope is encoded and named by the
    # gateway's parsing, its checks, the log and both indexes (the fields are frozen).
    @functools.cached_property
    def _canonical(self) -> bytes:
        return canonical_json_of_strings(self.to_dict())

    @functools.cached_property
    def _digest(self) -> str:
        return hashlib.sha256(self._canonical).hexdigest()

    @functools.cached_property
    def _pae(self) -> bytes:
        return pae(self.payload_type, self.payload)

    def signature_valid(self, verifier: Verifier, signature: bytes) -> bool:
        """Whether ``signature`` is ``verifier``'s valid signature of this envelope.

        Each (key, signature) pair is checked once per envelope object: a submission's
        signatures are asked about by the admission rule, the verifiable index and the
        gateway's index, and the answer is a function of the envelope's frozen payload,
        the key's bytes and the signature's bytes only."""
        checked: dict[tuple[bytes, bytes], bool] = self.__dict__.setdefault("_checked", {})
        pair = (verifier.public_key, signature)
        if pair not in checked:
            checked[pair] = verifier.verify(self._pae, signature)
        return checked[pair]

    @classmethod
    def from_dict(cls, obj: object) -> Envelope:
        if not isinstance(obj, dict):
            raise EnvelopeFormatError("DSSE envelope is not a JSON object")
        payload_type = obj.get("payloadType")
        if not isinstance(payload_type, str) or not payload_type:
            raise EnvelopeFormatError("DSSE envelope: payloadType is missing or not a string")
        payload = _b64decode(obj.get("payload"), "payload")
        raw_sigs = obj.get("signatures", [])
        if not isinstance(raw_sigs, list):
            raise EnvelopeFormatError("DSSE envelope: signatures is not a list")
        if len(raw_sigs) > MAX_SIGNATURES:
            raise EnvelopeFormatError(f"DSSE envelope: more than {MAX_SIGNATURES} signatures")
        sigs: list[Signature] = []
        for raw in raw_sigs:
            if not isinstance(raw, dict):
                raise EnvelopeFormatError("DSSE envelope: a signature is not a JSON object")
            keyid = raw.get("keyid", "")
            if not isinstance(keyid, str):
                raise EnvelopeFormatError("DSSE envelope: a signature keyid is not a string")
            sigs.append(Signature(keyid, _b64decode(raw.get("sig"), "signature")))
        return cls(payload_type, payload, tuple(sigs))

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        if len(data) > MAX_ENVELOPE_BYTES:
            raise EnvelopeFormatError(f"DSSE envelope is larger than {MAX_ENVELOPE_BYTES} bytes")
        try:
            obj = load_json(data, "DSSE envelope")
        except UntrustedInputError as exc:
            raise EnvelopeFormatError(str(exc)) from None
        return cls.from_dict(obj)

    def with_signatures(self, signers: Sequence[Signer]) -> Envelope:
        """This envelope with one more signature per signer (a signer already present is kept once)."""
        message = pae(self.payload_type, self.payload)
        sigs = list(self.signatures)
        for signer in signers:
            kid = key_id(_ed25519_verifier(signer))
            sigs = [s for s in sigs if s.keyid != kid]
            sigs.append(Signature(kid, signer.sign(message)))
        return Envelope(self.payload_type, self.payload, tuple(sigs))

    def verify(self, verifiers: Sequence[Verifier], threshold: int = 1) -> list[Verifier]:
        """Return the distinct trusted keys whose signature is valid; at least ``threshold``.

        A signature whose key id names a trusted key but does not verify is a
        forgery and refused outright, as signed-note readers do.
        """
        if threshold < 1:
            raise EnvelopeSignatureError(f"threshold must be at least 1, not {threshold}")
        by_id = {s.keyid: s for s in reversed(self.signatures)}
        good: list[Verifier] = []
        seen_keys: set[bytes] = set()
        for verifier in verifiers:
            kid = key_id(verifier)
            sig = by_id.get(kid)
            if sig is None or verifier.public_key in seen_keys:
                continue
            if not self.signature_valid(verifier, sig.sig):
                raise EnvelopeSignatureError(f"invalid signature by key {kid}")
            seen_keys.add(verifier.public_key)
            good.append(verifier)
        if len(good) < threshold:
            names = ", ".join(key_id(v) for v in verifiers) or "(none)"
            raise EnvelopeSignatureError(
                f"{len(good)} valid signature(s) by trusted keys, {threshold} required "
                f"(trusted: {names})"
            )
        return good


def _ed25519_verifier(signer: Signer) -> Verifier:
    if signer.alg != ALG_ED25519:
        return Verifier.from_public_bytes(signer.name, signer.public_key, ALG_ED25519)
    return signer.verifier


def sign_envelope(payload_type: str, payload: bytes, signers: Sequence[Signer]) -> Envelope:
    """A new envelope over ``payload`` signed by every signer (at least one)."""
    if not signers:
        raise EnvelopeSignatureError("an envelope needs at least one signer")
    return Envelope(payload_type, payload).with_signatures(signers)

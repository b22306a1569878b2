"""The offline bundle: everything an endpoint needs to verify one release without a network.

Wire form (media type :data:`BUNDLE_MEDIA_TYPE`, RFC 8785 JSON)::

    {"mediaType": "application/vnd.clearance.bundle.v1+json",
     "checkpoint": "<signed note text: body, blank line, log signature, cosignatures>",
     "release":  ENTRY,
     "verdicts": [ENTRY, ...],
     "policy":   ENTRY | null,
     "consistency": [{"fromSize": int, "proof": [hex, ...]}, ...],
     "entitlement": ENTRY,            (optional: the customer's committed entitlement)
     "entitlementOpening": {...},     (optional: its opening, see clearance.policy.commitment)
     "rollout": [ENTRY, ...],         (optional: the release's signed rollout transitions)
     "index": [{"key": str, "value": base64(record JSON), "proof": [hex, ...]}, ...]}

    ENTRY = {"envelope": base64(exact logged bytes of the DSSE envelope),
             "logIndex": int, "leafHash": hex, "inclusionProof": [hex, ...]}

Every inclusion proof is for the tree size of the bundle's checkpoint.
``leafHash`` binds each proof to the entry it was made for, so a proof
moved from another bundle is told apart from an entry that is not logged.
``consistency`` optionally proves that older tree sizes (a client's last
seen checkpoint) are prefixes of the checkpoint's tree.  ``index`` carries
the verifiable index records of the release, its channel and ``meta``, with
their proofs to the index root in the checkpoint (:mod:`clearance.index`):
the verifier requires them.  Unknown top-level members are ignored when
parsing, so later parts can add members (policy, entitlement, ...).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clearance._untrusted import UntrustedInputError, load_json
from clearance.attest.canonical import canonical_json
from clearance.attest.dsse import Envelope
from clearance.client.errors import MalformedBundleError
from clearance.errors import BadInput
from clearance.index import IndexProof
from clearance.log.merkle import HASH_SIZE, leaf_hash

BUNDLE_MEDIA_TYPE = "application/vnd.clearance.bundle.v1+json"
MAX_BUNDLE_BYTES = 32 << 20
MAX_VERDICTS = 64
MAX_PROOF_LENGTH = 64
MAX_CONSISTENCY_PROOFS = 16
MAX_TRANSITIONS = 256
MAX_INDEX_PROOFS = 16
MAX_INDEX_PROOF_LENGTH = 256


def _hex_hash(value: object, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * HASH_SIZE:
        raise MalformedBundleError(f"{what} is not a 64-digit hex hash")
    try:
        decoded = bytes.fromhex(value)
    except ValueError:
        decoded = b""
    if len(decoded) != HASH_SIZE:  # fromhex skips spaces: check what came out
        raise MalformedBundleError(f"{what} is not a 64-digit hex hash")
    return decoded


def _proof(value: object, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > MAX_PROOF_LENGTH:
        raise MalformedBundleError(f"{what} is not a list of at most {MAX_PROOF_LENGTH} hashes")
    # Fast path (this runs on every verification): decode all, then check the lengths.
    try:
        hashes = tuple(map(bytes.fromhex, value))
    except (TypeError, ValueError):
        hashes = ()
    if len(hashes) == len(value) and set(map(len, hashes)) <= {HASH_SIZE}:
        return hashes
    return tuple(_hex_hash(h, f"{what}[{i}]") for i, h in enumerate(value))


def _index(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 63:
        raise MalformedBundleError(f"{what} is not a non-negative integer")
    return value


@dataclass(frozen=True)
class LoggedEntry:
    """A logged envelope (its exact bytes) with its index, leaf hash and inclusion proof."""

    envelope: bytes
    index: int
    leaf_hash: bytes
    inclusion_proof: tuple[bytes, ...]

    @classmethod
    def of(cls, envelope: bytes, index: int, proof: Sequence[bytes]) -> LoggedEntry:
        return cls(envelope, index, leaf_hash(envelope), tuple(proof))

    def parsed_envelope(self, what: str) -> Envelope:
        """The logged bytes as a DSSE envelope; malformed is :class:`MalformedBundleError`
        naming ``what`` (the bundle field)."""
        try:
            return Envelope.from_bytes(self.envelope)
        except BadInput as exc:
            raise MalformedBundleError(f"{what}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "envelope": base64.b64encode(self.envelope).decode(),
            "logIndex": self.index,
            "leafHash": self.leaf_hash.hex(),
            "inclusionProof": [h.hex() for h in self.inclusion_proof],
        }

    @classmethod
    def from_dict(cls, value: object, what: str) -> LoggedEntry:
        if isinstance(value, dict):  # fast path for the valid case, no messages built
            encoded, index = value.get("envelope"), value.get("logIndex")
            leaf, proof = value.get("leafHash"), value.get("inclusionProof")
            if (
                isinstance(encoded, str)
                and type(index) is int
                and 0 <= index < 1 << 63
                and isinstance(leaf, str)
                and len(leaf) == 2 * HASH_SIZE
                and isinstance(proof, list)
            ):
                try:
                    envelope = binascii.a2b_base64(encoded, strict_mode=True)
                    leaf_bytes = bytes.fromhex(leaf)
                except (binascii.Error, ValueError):
                    pass
                else:
                    if len(leaf_bytes) == HASH_SIZE:
                        return cls(
                            envelope, index, leaf_bytes, _proof(proof, f"{what}.inclusionProof")
                        )
        if not isinstance(value, dict):
            raise MalformedBundleError(f"{what} is not a JSON object")
        encoded = value.get("envelope")
        if not isinstance(encoded, str):
            raise MalformedBundleError(f"{what}.envelope is not a base64 string")
        try:
            envelope = binascii.a2b_base64(encoded, strict_mode=True)
        except (binascii.Error, ValueError):
            raise MalformedBundleError(f"{what}.envelope is not valid base64") from None
        return cls(
            envelope,
            _index(value.get("logIndex"), f"{what}.logIndex"),
            _hex_hash(value.get("leafHash"), f"{what}.leafHash"),
            _proof(value.get("inclusionProof"), f"{what}.inclusionProof"),
        )


@dataclass(frozen=True)
class ConsistencyProof:
    """A proof that the tree of ``from_size`` leaves is a prefix of the checkpoint's tree."""

    from_size: int
    proof: tuple[bytes, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"fromSize": self.from_size, "proof": [h.hex() for h in self.proof]}

    @classmethod
    def from_dict(cls, value: object, what: str) -> ConsistencyProof:
        if not isinstance(value, dict):
            raise MalformedBundleError(f"{what} is not a JSON object")
        return cls(
            _index(value.get("fromSize"), f"{what}.fromSize"),
            _proof(value.get("proof"), f"{what}.proof"),
        )


def _index_proof(value: object, what: str) -> IndexProof:
    if not isinstance(value, dict):
        raise MalformedBundleError(f"{what} is not a JSON object")
    key, encoded, proof = value.get("key"), value.get("value"), value.get("proof")
    if not isinstance(key, str) or not key or len(key) > 1024:
        raise MalformedBundleError(f"{what}.key is not a short string")
    if not isinstance(encoded, str):
        raise MalformedBundleError(f"{what}.value is not a base64 string")
    try:
        record = binascii.a2b_base64(encoded, strict_mode=True)
    except (binascii.Error, ValueError):
        raise MalformedBundleError(f"{what}.value is not valid base64") from None
    if not isinstance(proof, list) or len(proof) > MAX_INDEX_PROOF_LENGTH:
        raise MalformedBundleError(
            f"{what}.proof is not a list of at most {MAX_INDEX_PROOF_LENGTH} hashes"
        )
    return IndexProof(
        key, record, tuple(_hex_hash(h, f"{what}.proof[{i}]") for i, h in enumerate(proof))
    )


@dataclass(frozen=True)
class Bundle:
    """A release, its verdicts (and policy), their inclusion proofs and one checkpoint."""

    checkpoint: bytes
    release: LoggedEntry
    verdicts: tuple[LoggedEntry, ...] = ()
    policy: LoggedEntry | None = None
    consistency: tuple[ConsistencyProof, ...] = ()
    #: The customer's logged entitlement commitment and its (unlogged) opening.
    entitlement: LoggedEntry | None = None
    entitlement_opening: Mapping[str, Any] | None = None
    #: The release's logged rollout transitions, in log order.
    rollout: tuple[LoggedEntry, ...] = ()
    index: tuple[IndexProof, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return self._distribution() | {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "checkpoint": self.checkpoint.decode("utf-8"),
            "release": self.release.to_dict(),
            "verdicts": [v.to_dict() for v in self.verdicts],
            "policy": None if self.policy is None else self.policy.to_dict(),
            "consistency": [c.to_dict() for c in self.consistency],
            "index": [p.to_dict() for p in self.index],
        }

    def _distribution(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.entitlement is not None:
            out["entitlement"] = self.entitlement.to_dict()
        if self.entitlement_opening is not None:
            out["entitlementOpening"] = dict(self.entitlement_opening)
        if self.rollout:
            out["rollout"] = [t.to_dict() for t in self.rollout]
        return out

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Bundle:
        """Parse a bundle; anything malformed is a :class:`MalformedBundleError`, never a crash."""
        if len(data) > MAX_BUNDLE_BYTES:
            raise MalformedBundleError(f"bundle is larger than {MAX_BUNDLE_BYTES} bytes")
        try:
            value = load_json(data, "bundle")
        except UntrustedInputError as exc:
            raise MalformedBundleError(str(exc)) from None
        return cls.from_dict(value)

    @classmethod
    def from_dict(cls, value: object) -> Bundle:
        if not isinstance(value, dict):
            raise MalformedBundleError("bundle is not a JSON object")
        if value.get("mediaType") != BUNDLE_MEDIA_TYPE:
            raise MalformedBundleError(f"bundle mediaType is not {BUNDLE_MEDIA_TYPE!r}")
        checkpoint = value.get("checkpoint")
        if not isinstance(checkpoint, str) or not checkpoint:
            raise MalformedBundleError("bundle checkpoint is not a signed note string")
        verdicts = value.get("verdicts", [])
        if not isinstance(verdicts, list) or len(verdicts) > MAX_VERDICTS:
            raise MalformedBundleError(f"bundle verdicts is not a list of at most {MAX_VERDICTS}")
        consistency = value.get("consistency", [])
        if not isinstance(consistency, list) or len(consistency) > MAX_CONSISTENCY_PROOFS:
            raise MalformedBundleError("bundle consistency is not a short list of proofs")
        policy = value.get("policy")
        entitlement = value.get("entitlement")
        opening = value.get("entitlementOpening")
        if opening is not None and not isinstance(opening, dict):
            raise MalformedBundleError("bundle entitlementOpening is not a JSON object")
        transitions = value.get("rollout", [])
        if not isinstance(transitions, list) or len(transitions) > MAX_TRANSITIONS:
            raise MalformedBundleError(f"bundle rollout is not a list of at most {MAX_TRANSITIONS}")
        index = value.get("index", [])
        if not isinstance(index, list) or len(index) > MAX_INDEX_PROOFS:
            raise MalformedBundleError(f"bundle index is not a list of at most {MAX_INDEX_PROOFS}")
        try:
            checkpoint_bytes = checkpoint.encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedBundleError("bundle checkpoint is not UTF-8 text") from None
        return cls(
            checkpoint=checkpoint_bytes,
            release=LoggedEntry.from_dict(value.get("release"), "release"),
            verdicts=tuple(
                LoggedEntry.from_dict(v, f"verdicts[{i}]") for i, v in enumerate(verdicts)
            ),
            policy=None if policy is None else LoggedEntry.from_dict(policy, "policy"),
            consistency=tuple(
                ConsistencyProof.from_dict(c, f"consistency[{i}]")
                for i, c in enumerate(consistency)
            ),
            entitlement=None
            if entitlement is None
            else LoggedEntry.from_dict(entitlement, "entitlement"),
            entitlement_opening=opening,
            rollout=tuple(
                LoggedEntry.from_dict(t, f"rollout[{i}]") for i, t in enumerate(transitions)
            ),
            index=tuple(_index_proof(p, f"index[{i}]") for i, p in enumerate(index)),
        )

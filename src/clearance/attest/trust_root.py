"""The trust root an endpoint pins: the log, vendor, inspector, witness, policy and root keys.

Wire form (``trust-root.json``)::

    {"_type": "https://clearance.dev/trust-root/v1", "version": 1,
     "log": {"origin": str, "key": vkey},
     "vendors": {"keys": [vkey], "threshold": k},
     "inspectors": {...}, "witnesses": {...}, "policy": {...},
     "root": {"keys": [vkey], "threshold": k},
     "maxCheckpointAgeSeconds": int | null}

``vkey`` is a C2SP signed-note verifier key line.  The first trust root is
pinned out of band and trusted as is.  Rotation follows TUF's root chain: the
next root (``version`` + 1) travels as a DSSE envelope with payload type
:data:`TRUST_ROOT_PAYLOAD_TYPE` whose payload is the new root's RFC 8785
bytes, and is accepted only when signed by a threshold of the CURRENT root's
``root`` role AND a threshold of the NEW root's ``root`` role.  When no root
keys are named at creation, the root role is the vendor, inspector and policy
keys together with a majority threshold, so that no single party (in
particular not the vendor alone) can replace the inspectors or the log.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from clearance._untrusted import UntrustedInputError, load_json
from clearance.attest.canonical import canonical_json
from clearance.attest.dsse import Envelope
from clearance.attest.errors import (
    EnvelopeFormatError,
    EnvelopeSignatureError,
    RotationRefused,
    TrustRootFormatError,
)
from clearance.errors import BadInput
from clearance.keys import Verifier

TRUST_ROOT_TYPE = "https://clearance.dev/trust-root/v1"
TRUST_ROOT_PAYLOAD_TYPE = "application/vnd.clearance.trust-root+json"
DEFAULT_MAX_CHECKPOINT_AGE = 24 * 3600
ROLE_NAMES = ("vendors", "inspectors", "witnesses", "policy", "root")
MAX_TRUST_ROOT_BYTES = 1 << 20


@dataclass(frozen=True)
class Role:
    """A set of keys and how many of them must sign (0 only for an empty, optional role)."""

    keys: tuple[Verifier, ...] = ()
    threshold: int = 0

    def __post_init__(self) -> None:
        distinct = {k.public_key for k in self.keys}
        if len(distinct) != len(self.keys):
            raise TrustRootFormatError("a role lists the same key twice")
        # Signers are counted by key id (name+keyhash): two keys of one role must not share one.
        if len({(k.name, k.key_id) for k in self.keys}) != len(self.keys):
            raise TrustRootFormatError("two keys of a role have the same key id (name+keyhash)")
        if self.threshold < 0 or self.threshold > len(self.keys):
            raise TrustRootFormatError(
                f"threshold {self.threshold} is impossible with {len(self.keys)} key(s)"
            )
        if self.keys and self.threshold == 0:
            raise TrustRootFormatError("a role with keys needs a threshold of at least 1")

    def to_dict(self) -> dict[str, Any]:
        return {"keys": [k.to_string() for k in self.keys], "threshold": self.threshold}

    @classmethod
    def from_dict(cls, value: object, what: str) -> Role:
        if not isinstance(value, dict):
            raise TrustRootFormatError(f"trust root: {what} is not a JSON object")
        keys = value.get("keys", [])
        threshold = value.get("threshold")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise TrustRootFormatError(f"trust root: {what}.keys is not a list of key strings")
        if isinstance(threshold, bool) or not isinstance(threshold, int):
            raise TrustRootFormatError(f"trust root: {what}.threshold is not an integer")
        try:
            verifiers = tuple(Verifier.parse(k) for k in keys)
            return cls(verifiers, threshold)
        except BadInput as exc:
            raise TrustRootFormatError(f"trust root: {what}: {exc}") from None


def default_root_role(vendors: Role, inspectors: Role, policy: Role) -> Role:
    """Vendor, inspector and policy keys together, majority threshold."""
    keys: list[Verifier] = []
    for key in (*vendors.keys, *inspectors.keys, *policy.keys):
        if all(k.public_key != key.public_key for k in keys):
            keys.append(key)
    return Role(tuple(keys), len(keys) // 2 + 1)


@dataclass(frozen=True)
class TrustRoot:
    """Everything an endpoint needs to verify a bundle offline."""

    log_origin: str
    log_key: Verifier
    vendors: Role
    inspectors: Role
    witnesses: Role = field(default_factory=Role)
    policy: Role = field(default_factory=Role)
    root: Role | None = None
    max_checkpoint_age: int | None = DEFAULT_MAX_CHECKPOINT_AGE
    version: int = 1

    def __post_init__(self) -> None:
        if not self.log_origin or "\n" in self.log_origin:
            raise TrustRootFormatError("trust root: log origin is empty or has a line break")
        if self.vendors.threshold < 1:
            raise TrustRootFormatError("trust root: at least one vendor key is required")
        if self.inspectors.threshold < 1:
            raise TrustRootFormatError("trust root: at least one inspector key is required")
        if self.version < 1:
            raise TrustRootFormatError("trust root: version must be 1 or more")
        if self.max_checkpoint_age is not None and self.max_checkpoint_age <= 0:
            raise TrustRootFormatError("trust root: maximum checkpoint age must be positive")
        if self.root is None:
            object.__setattr__(
                self, "root", default_root_role(self.vendors, self.inspectors, self.policy)
            )

    @property
    def root_role(self) -> Role:
        assert self.root is not None  # set in __post_init__
        return self.root

    def to_dict(self) -> dict[str, Any]:
        return {
            "_type": TRUST_ROOT_TYPE,
            "version": self.version,
            "log": {"origin": self.log_origin, "key": self.log_key.to_string()},
            "vendors": self.vendors.to_dict(),
            "inspectors": self.inspectors.to_dict(),
            "witnesses": self.witnesses.to_dict(),
            "policy": self.policy.to_dict(),
            "root": self.root_role.to_dict(),
            "maxCheckpointAgeSeconds": self.max_checkpoint_age,
        }

    def to_bytes(self) -> bytes:
        """The RFC 8785 bytes (what a rotation envelope signs)."""
        return canonical_json(self.to_dict())

    def to_json(self) -> str:
        """An indented rendering for the pinned file; it parses back to the same root."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, value: object) -> TrustRoot:
        if not isinstance(value, dict):
            raise TrustRootFormatError("trust root is not a JSON object")
        if value.get("_type") != TRUST_ROOT_TYPE:
            raise TrustRootFormatError(f"trust root _type is not {TRUST_ROOT_TYPE!r}")
        log = value.get("log")
        if not isinstance(log, dict) or not isinstance(log.get("origin"), str):
            raise TrustRootFormatError("trust root: log.origin is missing")
        key_text = log.get("key")
        if not isinstance(key_text, str):
            raise TrustRootFormatError("trust root: log.key is missing")
        try:
            log_key = Verifier.parse(key_text)
        except BadInput as exc:
            raise TrustRootFormatError(f"trust root: log.key: {exc}") from None
        version = value.get("version")
        age = value.get("maxCheckpointAgeSeconds")
        if isinstance(version, bool) or not isinstance(version, int):
            raise TrustRootFormatError("trust root: version is not an integer")
        if age is not None and (isinstance(age, bool) or not isinstance(age, int)):
            raise TrustRootFormatError("trust root: maxCheckpointAgeSeconds is not an integer")
        return cls(
            log_origin=log["origin"],
            log_key=log_key,
            vendors=Role.from_dict(value.get("vendors"), "vendors"),
            inspectors=Role.from_dict(value.get("inspectors"), "inspectors"),
            witnesses=Role.from_dict(value.get("witnesses", {"threshold": 0}), "witnesses"),
            policy=Role.from_dict(value.get("policy", {"threshold": 0}), "policy"),
            root=None if value.get("root") is None else Role.from_dict(value["root"], "root"),
            max_checkpoint_age=age,
            version=version,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> TrustRoot:
        """Parse a pinned trust root: the plain document, or a rotation envelope (as pinned)."""
        if len(data) > MAX_TRUST_ROOT_BYTES:
            raise TrustRootFormatError("trust root is larger than 1 MiB")
        try:
            value = load_json(data, "trust root")
        except UntrustedInputError as exc:
            raise TrustRootFormatError(str(exc)) from None
        if isinstance(value, dict) and "payloadType" in value:
            return cls.from_bytes(_rotation_payload(Envelope.from_dict(value)))
        return cls.from_dict(value)

    def next_version(self, **changes: Any) -> TrustRoot:
        """A copy with ``changes`` applied and the version raised by one."""
        return replace(self, version=self.version + 1, **changes)


def _rotation_payload(envelope: Envelope) -> bytes:
    if envelope.payload_type != TRUST_ROOT_PAYLOAD_TYPE:
        raise TrustRootFormatError(
            f"envelope payloadType is {envelope.payload_type!r}, not {TRUST_ROOT_PAYLOAD_TYPE!r}"
        )
    return envelope.payload


def rotation_envelope(new_root: TrustRoot) -> Envelope:
    """An unsigned rotation envelope for ``new_root``; add signatures with ``with_signatures``."""
    return Envelope(TRUST_ROOT_PAYLOAD_TYPE, new_root.to_bytes())


def accept_rotation(current: TrustRoot, envelope: Envelope) -> TrustRoot:
    """The new root in ``envelope`` if a threshold of the current and of the new root keys signed it."""
    try:
        new_root = TrustRoot.from_bytes(_rotation_payload(envelope))
    except EnvelopeFormatError as exc:
        raise TrustRootFormatError(f"rotation: {exc}") from None
    if new_root.version != current.version + 1:
        raise RotationRefused(
            f"rotation to version {new_root.version} does not follow version {current.version}"
        )
    for label, role in (("current", current.root_role), ("new", new_root.root_role)):
        try:
            envelope.verify(role.keys, role.threshold)
        except EnvelopeSignatureError as exc:
            raise RotationRefused(
                f"rotation to version {new_root.version} is not signed by a threshold of the "
                f"{label} root keys: {exc}"
            ) from None
    return new_root


def follow_rotations(pinned: TrustRoot, envelopes: Sequence[Envelope]) -> TrustRoot:
    """Walk a chain of rotations from the pinned root, in version order."""
    root = pinned
    for envelope in sorted(envelopes, key=lambda e: _peek_version(e)):
        if _peek_version(envelope) <= root.version:
            continue
        root = accept_rotation(root, envelope)
    return root


def _peek_version(envelope: Envelope) -> int:
    return TrustRoot.from_bytes(_rotation_payload(envelope)).version

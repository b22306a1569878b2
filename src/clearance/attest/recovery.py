"""Recovery statements: revoking a release or a key, and resetting a channel.

Both are in-toto Statement v1 in DSSE envelopes, signed by the role that
:mod:`clearance.attest.admission` names for them (the policy authority's
threshold), logged like any other statement and honoured by endpoints
through the verifiable index (:mod:`clearance.index`).

Revocation (``https://clearance.dev/revocation/v1``)::

    subject: the release envelope (name "<product>@<version>", digest = its SHA-256)
             or the key (name = its key id "name+hash", digest = SHA-256 of its
             verifier key line)
    predicate: {"target": "release", "release": {"sha256": hex, "product": str,
                                                   "version": str, "channel": str},
                "reason": str}
             | {"target": "key", "key": "<C2SP verifier key line>", "reason": str}

A revoked release is never installable again.  A revoked key's signatures no
longer count anywhere: releases whose remaining vendor signatures fall below
the vendor threshold, and approvals that relied on it, stop counting.

Channel reset (``https://clearance.dev/channel-reset/v1``)::

    subject: name "<product>/<channel>", digest = SHA-256 of that name (UTF-8)
    predicate: {"product": str, "channel": str, "floor": version, "reason": str}

A reset revokes every release of the channel logged before it whose version is
above ``floor``; the channel's epoch rises by one, and from then on a release
must be higher than ``floor`` and than every release logged after the reset.
An endpoint that installed a version above the floor in an earlier epoch may
go back to the floor and above (its rollback reference drops to the floor).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clearance.attest import _fields
from clearance.attest.dsse import Envelope, key_id
from clearance.attest.errors import StatementFormatError
from clearance.attest.release import Release
from clearance.attest.statement import (
    CHANNEL_RESET_V1,
    REVOCATION_V1,
    Statement,
    Subject,
    statement_of,
)
from clearance.attest.version import Version
from clearance.errors import BadInput
from clearance.keys import Signer, Verifier

TARGET_RELEASE = "release"
TARGET_KEY = "key"


def _signer_list(signers: Signer | Sequence[Signer]) -> list[Signer]:
    out = [signers] if isinstance(signers, Signer) else list(signers)
    if not out:
        raise StatementFormatError("a recovery statement needs at least one signer")
    return out


@dataclass(frozen=True)
class Revocation:
    """A typed view of a revocation: of one release (by envelope digest) or of one key."""

    target: str
    reason: str
    release_sha256: str | None = None
    product: str | None = None
    version: str | None = None
    channel: str | None = None
    key: Verifier | None = None

    def __post_init__(self) -> None:
        _fields.text(self.reason, "revocation reason")
        if self.target == TARGET_RELEASE:
            _fields.sha256(self.release_sha256, "revoked release sha256")
            _fields.name(self.product, "revoked release product")
            _fields.name(self.channel, "revoked release channel")
            Version.parse(str(self.version))
        elif self.target == TARGET_KEY:
            if self.key is None:
                raise StatementFormatError("a key revocation names no key")
        else:
            raise StatementFormatError(
                f"revocation target {self.target!r} is not {TARGET_RELEASE!r} or {TARGET_KEY!r}"
            )

    @property
    def key_id(self) -> str | None:
        """The DSSE key id of a revoked key (``name+hash``)."""
        return None if self.key is None else key_id(self.key)

    def predicate(self) -> dict[str, Any]:
        if self.target == TARGET_RELEASE:
            return {
                "target": TARGET_RELEASE,
                "release": {
                    "sha256": self.release_sha256,
                    "product": self.product,
                    "version": self.version,
                    "channel": self.channel,
                },
                "reason": self.reason,
            }
        assert self.key is not None
        return {"target": TARGET_KEY, "key": self.key.to_string(), "reason": self.reason}

    def statement(self) -> Statement:
        if self.target == TARGET_RELEASE:
            assert self.release_sha256 is not None
            subject = Subject(f"{self.product}@{self.version}", self.release_sha256)
        else:
            assert self.key is not None
            line = self.key.to_string().encode()
            subject = Subject(key_id(self.key), hashlib.sha256(line).hexdigest())
        return Statement((subject,), REVOCATION_V1, self.predicate())

    @classmethod
    def from_statement(cls, statement: Statement) -> Revocation:
        if statement.predicate_type != REVOCATION_V1:
            raise StatementFormatError(f"statement is not a revocation ({REVOCATION_V1})")
        if len(statement.subjects) != 1:
            raise StatementFormatError("a revocation has exactly one subject")
        p = statement.predicate
        target = _fields.text(p.get("target"), "revocation target")
        reason = _fields.text(p.get("reason"), "revocation reason")
        subject = statement.subjects[0]
        if target == TARGET_RELEASE:
            rel = _fields.obj(p.get("release"), "revocation release")
            sha = _fields.sha256(rel.get("sha256"), "revocation release.sha256")
            if sha != subject.sha256:
                raise StatementFormatError("revocation: subject digest is not release.sha256")
            return cls(
                TARGET_RELEASE,
                reason,
                release_sha256=sha,
                product=_fields.name(rel.get("product"), "revocation release.product"),
                version=_fields.name(rel.get("version"), "revocation release.version"),
                channel=_fields.name(rel.get("channel"), "revocation release.channel"),
            )
        if target == TARGET_KEY:
            line = _fields.text(p.get("key"), "revocation key")
            try:
                key = Verifier.parse(line)
            except BadInput as exc:
                raise StatementFormatError(f"revocation key: {exc}") from None
            if subject.sha256 != hashlib.sha256(line.encode()).hexdigest():
                raise StatementFormatError("revocation: subject digest is not the key's digest")
            return cls(TARGET_KEY, reason, key=key)
        raise StatementFormatError(
            f"revocation target {target!r} is not {TARGET_RELEASE!r} or {TARGET_KEY!r}"
        )

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> Revocation:
        """The revocation inside ``envelope`` (signatures are NOT checked here)."""
        return cls.from_statement(statement_of(envelope, REVOCATION_V1))


def revoke_release(
    release_envelope: Envelope, reason: str, signers: Signer | Sequence[Signer]
) -> Envelope:
    """Sign a revocation of the release in ``release_envelope``."""
    release = Release.from_envelope(release_envelope)
    revocation = Revocation(
        TARGET_RELEASE,
        reason,
        release_sha256=release_envelope.sha256,
        product=release.product,
        version=release.version,
        channel=release.channel,
    )
    return revocation.statement().sign(_signer_list(signers))


def revoke_key(key: Verifier, reason: str, signers: Signer | Sequence[Signer]) -> Envelope:
    """Sign a revocation of ``key`` (its signatures stop counting everywhere)."""
    return Revocation(TARGET_KEY, reason, key=key).statement().sign(_signer_list(signers))


@dataclass(frozen=True)
class ChannelReset:
    """A typed view of a channel reset: the channel goes back to ``floor``."""

    product: str
    channel: str
    floor: str
    reason: str

    def __post_init__(self) -> None:
        _fields.name(self.product, "channel reset product")
        _fields.name(self.channel, "channel reset channel")
        Version.parse(self.floor)
        _fields.text(self.reason, "channel reset reason")

    @property
    def parsed_floor(self) -> Version:
        return Version.parse(self.floor)

    def predicate(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "channel": self.channel,
            "floor": self.floor,
            "reason": self.reason,
        }

    def statement(self) -> Statement:
        name = f"{self.product}/{self.channel}"
        subject = Subject(name, hashlib.sha256(name.encode()).hexdigest())
        return Statement((subject,), CHANNEL_RESET_V1, self.predicate())

    @classmethod
    def from_statement(cls, statement: Statement) -> ChannelReset:
        if statement.predicate_type != CHANNEL_RESET_V1:
            raise StatementFormatError(f"statement is not a channel reset ({CHANNEL_RESET_V1})")
        p = statement.predicate
        reset = cls(
            product=_fields.name(p.get("product"), "channel reset product"),
            channel=_fields.name(p.get("channel"), "channel reset channel"),
            floor=_fields.name(p.get("floor"), "channel reset floor"),
            reason=_fields.text(p.get("reason"), "channel reset reason"),
        )
        if statement.subjects != reset.statement().subjects:
            raise StatementFormatError("channel reset: subject does not name the channel")
        return reset

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> ChannelReset:
        return cls.from_statement(statement_of(envelope, CHANNEL_RESET_V1))


def reset_channel(
    product: str, channel: str, floor: str, reason: str, signers: Signer | Sequence[Signer]
) -> Envelope:
    """Sign a reset of ``product``/``channel`` back to version ``floor``."""
    reset = ChannelReset(product, channel, floor, reason)
    return reset.statement().sign(_signer_list(signers))

"""in-toto Statement v1 (``https://in-toto.io/Statement/v1``) carried in DSSE envelopes.

A statement names its subjects (name and SHA-256 digest), a predicate type
and a predicate object.  The predicate types Clearance defines are the
constants below; typed views of each predicate live in their own modules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from clearance._untrusted import UntrustedInputError, load_json
from clearance.attest import _fields
from clearance.attest.canonical import canonical_json
from clearance.attest.dsse import Envelope, sign_envelope
from clearance.attest.errors import StatementFormatError
from clearance.keys import Signer

View = TypeVar("View")

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"

RELEASE_V1 = "https://clearance.dev/release/v1"
VERDICT_V1 = "https://clearance.dev/verdict/v1"
POLICY_V1 = "https://clearance.dev/policy/v1"
ROLLOUT_V1 = "https://clearance.dev/rollout/v1"
HEALTH_V1 = "https://clearance.dev/health/v1"
REVOCATION_V1 = "https://clearance.dev/revocation/v1"
CHANNEL_RESET_V1 = "https://clearance.dev/channel-reset/v1"
#: Defined in :mod:`clearance.policy`; named here so the admission rule knows every kind.
ENTITLEMENT_V1 = "https://clearance.dev/entitlement/v1"
#: A rollout transition signed by the trust root's rollout role (clearance.policy.rollout_statements).
TRANSITION_V1 = "https://clearance.dev/rollout-transition/v1"
#: ``_type`` of the plain-JSON health aggregate a gateway logs (clearance.gateway.health_batch):
#: not a statement (unsigned; the log's checkpoint vouches for it), named here so every reader
#: of the log recognises it by one constant.
HEALTH_AGGREGATE_TYPE = "https://clearance.dev/health-aggregate/v1"
#: A signed regulator's report (clearance.report): its files' digests and the tree it covers.
REPORT_V1 = "https://clearance.dev/report/v1"
PREDICATE_TYPES = (
    RELEASE_V1,
    VERDICT_V1,
    POLICY_V1,
    ROLLOUT_V1,
    HEALTH_V1,
    REVOCATION_V1,
    CHANNEL_RESET_V1,
    ENTITLEMENT_V1,
    TRANSITION_V1,
    REPORT_V1,
)


@dataclass(frozen=True)
class Subject:
    """A statement subject: a name and the SHA-256 (lowercase hex) of its bytes."""

    name: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "digest": {"sha256": self.sha256}}

    @classmethod
    def from_dict(cls, value: object, what: str = "subject") -> Subject:
        if isinstance(value, dict):  # fast path for the valid case, no messages built
            name, digest = value.get("name"), value.get("digest")
            sha = digest.get("sha256") if isinstance(digest, dict) else None
            if _fields.is_text(name) and _fields.is_sha256(sha):
                return cls(name, sha)
        raw = _fields.obj(value, what)
        digest = _fields.obj(raw.get("digest"), f"{what}.digest")
        return cls(
            _fields.text(raw.get("name"), f"{what}.name"),
            _fields.sha256(digest.get("sha256"), f"{what}.digest.sha256"),
        )


@dataclass(frozen=True)
class Statement:
    """An in-toto Statement v1: subjects, predicate type and predicate (a JSON object)."""

    subjects: tuple[Subject, ...]
    predicate_type: str
    predicate: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "_type": STATEMENT_TYPE,
            "subject": [s.to_dict() for s in self.subjects],
            "predicateType": self.predicate_type,
            "predicate": self.predicate,
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, value: object) -> Statement:
        raw = _fields.obj(value, "statement")
        if raw.get("_type") != STATEMENT_TYPE:
            raise StatementFormatError(f"statement _type is not {STATEMENT_TYPE!r}")
        subjects = raw.get("subject")
        if not isinstance(subjects, list) or not subjects:
            raise StatementFormatError("statement has no subject list")
        return cls(
            tuple(Subject.from_dict(s, f"subject[{i}]") for i, s in enumerate(subjects)),
            _fields.text(raw.get("predicateType"), "predicateType"),
            _fields.obj(raw.get("predicate"), "predicate"),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Statement:
        try:
            value = load_json(data, "statement payload")
        except UntrustedInputError as exc:
            raise StatementFormatError(str(exc)) from None
        return cls.from_dict(value)

    def sign(self, signers: Sequence[Signer]) -> Envelope:
        """This statement in a DSSE envelope signed by ``signers``."""
        return sign_envelope(PAYLOAD_TYPE, self.to_bytes(), signers)

    def view(self, key: type, make: Callable[[Statement], View]) -> View:
        """``make(self)``, made once per statement object and view class ``key``, and kept.

        For the typed views of a statement (a :class:`~clearance.attest.Release`, a
        :class:`~clearance.attest.Verdict`): one submission's statement is read by the
        admission rule, the gateway's checks, its index and the verifiable index, and
        reading it again each time was a tenth of a replica's time per submission.  A
        view that cannot be made raises each time it is asked for; the statement is
        never changed after parsing (its fields are frozen; nothing writes to the
        predicate it holds)."""
        kept: dict[type, Any] = self.__dict__.setdefault("_views", {})
        if key not in kept:
            kept[key] = make(self)
        return kept[key]  # type: ignore[no-any-return]


def statement_of(envelope: Envelope, predicate_type: str | None = None) -> Statement:
    """The statement inside ``envelope`` (signatures NOT checked), of the expected type."""
    if envelope.payload_type != PAYLOAD_TYPE:
        raise StatementFormatError(
            f"envelope payloadType is {envelope.payload_type!r}, expected {PAYLOAD_TYPE!r}"
        )
    statement = Statement.from_bytes(envelope.payload)
    if predicate_type is not None and statement.predicate_type != predicate_type:
        raise StatementFormatError(
            f"statement predicateType is {statement.predicate_type!r}, expected {predicate_type!r}"
        )
    return statement

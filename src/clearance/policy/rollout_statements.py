"""Signed rollout records: transitions (by the rollout key) and health reports (by devices).

A transition is an in-toto statement (``predicateType`` :data:`TRANSITION_V1`)
whose subject is the release envelope, signed by the trust root's ``rollout``
role and logged::

    {"release": sha256, "event": "started|advanced|halted|resumed|completed",
     "ring": name, "at": RFC 3339, "reason": str, "evidence": {...}}

``started`` carries the rings (``evidence.rings``); ``advanced``, ``halted`` and
``completed`` decided by the health rule carry ``evidence.reportsThrough`` (the
last log index whose reports were counted) and the tally, so that the auditor
recomputes them (:mod:`clearance.policy.rollout`).

A health report (``predicateType`` ``https://clearance.dev/health/v1``) is signed
by one device key of an entitled customer and logged; it names the release,
the ring the device's customer is in and the status -- not the customer.

:func:`replay` reads a release's transitions into its rollout state: what an
endpoint needs to refuse a halted rollout or a ring it is not in yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clearance.attest.dsse import Envelope
from clearance.attest.statement import (
    HEALTH_V1,
    TRANSITION_V1,
    Statement,
    Subject,
    statement_of,
)
from clearance.errors import BadInput
from clearance.keys import Signer
from clearance.policy._time import format_time, parse_time
from clearance.policy.errors import PolicyFormatError
from clearance.policy.rollout import HEALTH_STATES, Ring, check_rings

EVENTS = ("started", "advanced", "halted", "resumed", "completed")

ACTIVE = "active"
HALTED = "halted"
COMPLETE = "complete"


def _text(data: Mapping[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise PolicyFormatError(f"{what}: '{key}' must be a non-empty string")
    return value


@dataclass(frozen=True)
class SignedTransition:
    """One rollout event of one release (the predicate of a signed statement)."""

    release: str
    event: str
    ring: str
    at: datetime
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise PolicyFormatError(f"rollout event {self.event!r} is not one of {EVENTS}")

    def predicate(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "event": self.event,
            "ring": self.ring,
            "at": format_time(self.at),
            "reason": self.reason,
            "evidence": dict(self.evidence),
        }

    def statement(self) -> Statement:
        return Statement((Subject("release", self.release),), TRANSITION_V1, self.predicate())

    def sign(self, signers: Sequence[Signer]) -> Envelope:
        return self.statement().sign(list(signers))

    @classmethod
    def from_predicate(cls, data: Mapping[str, Any]) -> SignedTransition:
        what = "rollout transition"
        evidence = data.get("evidence", {})
        if not isinstance(evidence, dict):
            raise PolicyFormatError(f"{what}: evidence must be an object")
        return cls(
            release=_text(data, "release", what),
            event=_text(data, "event", what),
            ring=_text(data, "ring", what),
            at=parse_time(data.get("at"), f"{what}.at"),
            reason=str(data.get("reason", "")),
            evidence=evidence,
        )

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> SignedTransition:
        """The transition in ``envelope`` (signatures NOT checked here)."""
        try:
            statement = statement_of(envelope, TRANSITION_V1)
        except BadInput as exc:
            raise PolicyFormatError(f"rollout transition: {exc}") from None
        return cls.from_predicate(statement.predicate)

    def rings(self) -> tuple[Ring, ...]:
        """The rings a ``started`` transition fixes for the whole rollout."""
        raw = self.evidence.get("rings")
        if not isinstance(raw, list):
            raise PolicyFormatError("started transition: evidence.rings must be a list")
        return check_rings(Ring.from_dict(r) for r in raw if isinstance(r, dict))


@dataclass(frozen=True)
class HealthReport:
    """A device's install-health report; the signing key id says which device."""

    release: str
    ring: str
    status: str

    def __post_init__(self) -> None:
        if self.status not in HEALTH_STATES:
            raise PolicyFormatError(f"health status {self.status!r} is not one of {HEALTH_STATES}")

    def statement(self) -> Statement:
        predicate = {"release": self.release, "ring": self.ring, "status": self.status}
        return Statement((Subject("release", self.release),), HEALTH_V1, predicate)

    def sign(self, device: Signer) -> Envelope:
        return self.statement().sign([device])

    @classmethod
    def from_predicate(cls, data: Mapping[str, Any]) -> HealthReport:
        what = "health report"
        return cls(
            _text(data, "release", what), _text(data, "ring", what), _text(data, "status", what)
        )


@dataclass(frozen=True)
class RolloutView:
    """Where a release's rollout stands after its logged transitions."""

    rings: tuple[Ring, ...]
    ring_index: int
    status: str
    #: The transition (position in the sequence given) that set this state.
    last: SignedTransition

    @property
    def ring(self) -> Ring:
        return self.rings[self.ring_index]


def replay(transitions: Sequence[SignedTransition]) -> RolloutView:
    """Apply transitions in log order; the first must be ``started``."""
    if not transitions or transitions[0].event != "started":
        raise PolicyFormatError("a rollout's first transition must be 'started'")
    rings = transitions[0].rings()
    names = [r.name for r in rings]
    index, status = 0, ACTIVE
    for t in transitions[1:]:
        if t.event == "started":
            raise PolicyFormatError("a rollout is started twice")
        if t.event == "advanced":
            if t.ring not in names or names.index(t.ring) != index + 1:
                raise PolicyFormatError(f"transition advances to {t.ring!r}, not the next ring")
            index, status = index + 1, ACTIVE
        elif t.event == "halted":
            status = HALTED
        elif t.event == "resumed":
            status = ACTIVE
        elif t.event == "completed":
            index, status = len(rings) - 1, COMPLETE  # every ring is open
    return RolloutView(rings, index, status, transitions[-1])

"""Staged rollout: rings, soak time, automatic halt on bad health, signed resume.

A release that is approved starts in the first ring.  Each ring holds a
share of the customers (chosen by a stable hash of the customer id, so the
canary customers are the same for every release) and must soak for its
minimum time before the next ring opens.  Clients report install health; a
ring whose failure rate passes its threshold (with enough reports to mean
something) halts the rollout, and only a signed resume decision restarts it.
Every transition is returned as a :class:`Transition` that the gateway
appends to the transparency log.  Nothing here reads the clock or a store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from clearance.gateway.errors import GatewayInputError, RolloutError
from clearance.policy._time import format_time, parse_time

TRANSITION_TYPE = "https://clearance.dev/rollout-transition/v1"
HEALTH_PREDICATE_TYPE = "https://clearance.dev/health/v1"
RESUME_PREDICATE_TYPE = "https://clearance.dev/rollout/v1"

HEALTH_OK = "ok"
HEALTH_FAILED = "failed"
HEALTH_ENGINE_CRASH = "engine-crash"
HEALTH_STATES = (HEALTH_OK, HEALTH_FAILED, HEALTH_ENGINE_CRASH)

ACTIVE = "active"
HALTED = "halted"
COMPLETE = "complete"

_BUCKETS = 10_000


@dataclass(frozen=True)
class Ring:
    name: str
    #: Cumulative share of customers reached once this ring is open, in percent.
    percent: float
    soak: timedelta
    #: Halt when (failed + crashed) / reports exceeds this, once min_reports arrived.
    failure_threshold: float = 0.05
    min_reports: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "percent": self.percent,
            "soak_seconds": int(self.soak.total_seconds()),
            "failure_threshold": self.failure_threshold,
            "min_reports": self.min_reports,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ring:
        return cls(
            str(data["name"]),
            float(data["percent"]),
            timedelta(seconds=int(data["soak_seconds"])),
            float(data["failure_threshold"]),
            int(data["min_reports"]),
        )


DEFAULT_RINGS: tuple[Ring, ...] = (
    Ring("canary", 1.0, timedelta(hours=24), failure_threshold=0.02, min_reports=1),
    Ring("early", 10.0, timedelta(hours=24), failure_threshold=0.02, min_reports=5),
    Ring("broad", 100.0, timedelta(0), failure_threshold=0.05, min_reports=20),
)


def customer_bucket(customer: str) -> float:
    """The customer's stable position in [0, 100): who is canary does not change per release."""
    digest = hashlib.sha256(b"clearance-rollout\x00" + customer.encode()).digest()
    return (int.from_bytes(digest[:8], "big") % _BUCKETS) * 100.0 / _BUCKETS


@dataclass(frozen=True)
class RingHealth:
    ok: int = 0
    failed: int = 0
    crashed: int = 0

    @property
    def reports(self) -> int:
        return self.ok + self.failed + self.crashed

    @property
    def failure_rate(self) -> float:
        return 0.0 if self.reports == 0 else (self.failed + self.crashed) / self.reports

    def add(self, status: str) -> RingHealth:
        if status == HEALTH_OK:
            return replace(self, ok=self.ok + 1)
        if status == HEALTH_FAILED:
            return replace(self, failed=self.failed + 1)
        if status == HEALTH_ENGINE_CRASH:
            return replace(self, crashed=self.crashed + 1)
        raise GatewayInputError(f"health status {status!r} is not one of {HEALTH_STATES}")


@dataclass(frozen=True)
class Transition:
    """One rollout event, as logged: ``started``, ``advanced``, ``halted``, ``resumed``, ``completed``."""

    release: str
    event: str
    ring: str
    at: datetime
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "_type": TRANSITION_TYPE,
            "release": self.release,
            "event": self.event,
            "ring": self.ring,
            "at": format_time(self.at),
            "reason": self.reason,
            "evidence": dict(self.evidence),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Transition:
        if data.get("_type") != TRANSITION_TYPE:
            raise GatewayInputError("not a rollout transition")
        return cls(
            release=str(data["release"]),
            event=str(data["event"]),
            ring=str(data["ring"]),
            at=parse_time(data["at"], "transition.at"),
            reason=str(data["reason"]),
            evidence=dict(data.get("evidence", {})),
        )


@dataclass(frozen=True)
class RolloutState:
    """Where one release's rollout stands."""

    release: str
    rings: tuple[Ring, ...]
    ring_index: int
    status: str
    ring_entered: datetime
    health: tuple[RingHealth, ...]

    @property
    def ring(self) -> Ring:
        return self.rings[self.ring_index]

    def reaches(self, customer: str) -> bool:
        """Whether the release may be offered to ``customer`` now (halted: only to whom it reached)."""
        return customer_bucket(customer) < self.ring.percent

    def to_dict(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "rings": [r.to_dict() for r in self.rings],
            "ring": self.ring.name,
            "ring_index": self.ring_index,
            "status": self.status,
            "ring_entered": format_time(self.ring_entered),
            "health": [
                {"ok": h.ok, "failed": h.failed, "engine_crash": h.crashed} for h in self.health
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutState:
        return cls(
            release=str(data["release"]),
            rings=tuple(Ring.from_dict(r) for r in data["rings"]),
            ring_index=int(data["ring_index"]),
            status=str(data["status"]),
            ring_entered=parse_time(data["ring_entered"], "rollout.ring_entered"),
            health=tuple(
                RingHealth(int(h["ok"]), int(h["failed"]), int(h["engine_crash"]))
                for h in data["health"]
            ),
        )


def check_rings(rings: Sequence[Ring]) -> None:
    if not rings:
        raise GatewayInputError("a rollout needs at least one ring")
    last = 0.0
    for ring in rings:
        if not 0 < ring.percent <= 100 or ring.percent < last:
            raise GatewayInputError(f"ring {ring.name}: percents must grow within (0, 100]")
        last = ring.percent
    if rings[-1].percent != 100:
        raise GatewayInputError("the last ring must reach 100 % of customers")


def start(release: str, rings: Sequence[Ring], at: datetime) -> tuple[RolloutState, Transition]:
    check_rings(rings)
    state = RolloutState(release, tuple(rings), 0, ACTIVE, at, tuple(RingHealth() for _ in rings))
    return state, Transition(release, "started", rings[0].name, at, "release approved")


def record_health(
    state: RolloutState, status: str, at: datetime
) -> tuple[RolloutState, Transition | None]:
    """Count one install report against the current ring; halt when it goes bad."""
    health = list(state.health)
    health[state.ring_index] = health[state.ring_index].add(status)
    state = replace(state, health=tuple(health))
    current = health[state.ring_index]
    ring = state.ring
    if (
        state.status == ACTIVE
        and current.reports >= ring.min_reports
        and current.failure_rate > ring.failure_threshold
    ):
        state = replace(state, status=HALTED)
        return state, Transition(
            state.release,
            "halted",
            ring.name,
            at,
            f"failure rate {current.failure_rate:.1%} in ring {ring.name} exceeds "
            f"{ring.failure_threshold:.1%}",
            {"ok": current.ok, "failed": current.failed, "engine_crash": current.crashed},
        )
    return state, None


def advance(state: RolloutState, at: datetime) -> tuple[RolloutState, Transition | None]:
    """Open the next ring when the current one has soaked and is healthy; else no change."""
    if state.status != ACTIVE:
        return state, None
    if at - state.ring_entered < state.ring.soak:
        return state, None
    if state.ring_index == len(state.rings) - 1:
        state = replace(state, status=COMPLETE)
        return state, Transition(state.release, "completed", state.ring.name, at, "all rings open")
    soaked = state.ring
    state = replace(state, ring_index=state.ring_index + 1, ring_entered=at)
    return state, Transition(
        state.release,
        "advanced",
        state.ring.name,
        at,
        f"ring {soaked.name} soaked {soaked.soak} with failure rate "
        f"{state.health[state.ring_index - 1].failure_rate:.1%}",
    )


def resume(
    state: RolloutState, at: datetime, decision_sha256: str, signer: str, reason: str
) -> tuple[RolloutState, Transition]:
    """Restart a halted rollout; the caller has verified the signed decision."""
    if state.status != HALTED:
        raise RolloutError(f"rollout of {state.release} is {state.status}, not halted")
    health = list(state.health)
    health[state.ring_index] = RingHealth()  # the fix is judged on fresh reports
    state = replace(state, status=ACTIVE, ring_entered=at, health=tuple(health))
    return state, Transition(
        state.release,
        "resumed",
        state.ring.name,
        at,
        reason,
        {"decision_sha256": decision_sha256, "signed_by": signer},
    )


def replay(
    current: RolloutState | None, transition: Transition, default_rings: Sequence[Ring]
) -> RolloutState | None:
    """The rollout state a logged transition leaves, so that replaying the log converges.

    ``None`` when the transition names a rollout that never started.
    """
    if transition.event == "started":
        rings = [Ring.from_dict(r) for r in transition.evidence.get("rings", [])]
        state, _ = start(transition.release, rings or list(default_rings), transition.at)
        return state
    if current is None:
        return None
    if transition.event == "advanced":
        names = [r.name for r in current.rings]
        return replace(
            current,
            ring_index=names.index(transition.ring),
            status=ACTIVE,
            ring_entered=transition.at,
        )
    if transition.event == "halted":
        return replace(current, status=HALTED)
    if transition.event == "resumed":
        health = list(current.health)
        health[current.ring_index] = RingHealth()
        return replace(current, status=ACTIVE, ring_entered=transition.at, health=tuple(health))
    if transition.event == "completed":
        return replace(current, status=COMPLETE)
    return current

"""Staged rollout: the gateway's state machine over the shared rule.

A release that is approved starts in the first ring.  Whether a ring halts,
advances or completes is :func:`clearance.policy.rollout.judge` over the tally
of distinct reporting devices in the ring's window (the rule the auditor
recomputes); only a signed resume decision restarts a halted rollout.  Every
transition is returned as a :class:`Transition` that the gateway signs with its
rollout key and appends to the transparency log.  Nothing here reads the clock
or a store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from clearance.errors import BadInput
from clearance.gateway.errors import GatewayInputError, RolloutError
from clearance.policy import rollout as rule
from clearance.policy._time import format_time, parse_time
from clearance.policy.rollout import Ring, Tally, customer_bucket

__all__ = ["Ring", "Tally", "customer_bucket"]

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


DEFAULT_RINGS: tuple[Ring, ...] = (
    Ring("canary", 1.0, timedelta(hours=24), failure_threshold=0.02, min_reports=1),
    Ring("early", 10.0, timedelta(hours=24), failure_threshold=0.02, min_reports=5),
    Ring("broad", 100.0, timedelta(0), failure_threshold=0.05, min_reports=20),
)


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
    #: Log index of the transition that entered (or resumed) the current ring: reports
    #: logged after it are the ring's window.
    entered_index: int = -1

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
            "entered_index": self.entered_index,
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
            entered_index=int(data.get("entered_index", -1)),
        )


def check_rings(rings: Sequence[Ring]) -> None:
    try:
        rule.check_rings(rings)
    except BadInput as exc:
        raise GatewayInputError(str(exc)) from None


def start(release: str, rings: Sequence[Ring], at: datetime) -> tuple[RolloutState, Transition]:
    check_rings(rings)
    state = RolloutState(release, tuple(rings), 0, ACTIVE, at, tuple(RingHealth() for _ in rings))
    return state, Transition(release, "started", rings[0].name, at, "release approved")


def judge(
    state: RolloutState, counts: Tally, at: datetime, reports_through: int
) -> tuple[RolloutState, Transition | None]:
    """Apply the rule (:func:`clearance.policy.rollout.judge`) to an active rollout whose
    current ring's window holds ``counts`` (distinct devices, reports logged up to index
    ``reports_through``); the transition it calls for, if any."""
    health = list(state.health)
    health[state.ring_index] = RingHealth(counts.healthy, counts.failing, 0)
    state = replace(state, health=tuple(health))
    if state.status != ACTIVE:
        return state, None
    last = state.ring_index == len(state.rings) - 1
    ruling = rule.judge(state.ring, last, state.ring_entered, counts, at)
    if ruling.event is None:
        return state, None
    evidence = {"reportsThrough": reports_through, **counts.to_dict()}
    ring = state.ring
    if ruling.event == rule.HALTED:
        state = replace(state, status=HALTED)
    elif ruling.event == rule.COMPLETED:
        state = replace(state, status=COMPLETE)
    else:
        state = replace(state, ring_index=state.ring_index + 1, ring_entered=at)
        ring = state.ring
    return state, Transition(state.release, ruling.event, ring.name, at, ruling.reason, evidence)


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
    current: RolloutState | None,
    transition: Transition,
    default_rings: Sequence[Ring],
    log_index: int = -1,
) -> RolloutState | None:
    """The rollout state a logged transition (at ``log_index``) leaves, so that replaying
    the log converges.  ``None`` when the transition names a rollout that never started.
    """
    state = _replay(current, transition, default_rings)
    if state is not None and transition.event in ("started", "advanced", "resumed"):
        state = replace(state, entered_index=log_index)
    return state


def _replay(
    current: RolloutState | None, transition: Transition, default_rings: Sequence[Ring]
) -> RolloutState | None:
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

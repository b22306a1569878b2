from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clearance.gateway import rollout
from clearance.gateway.errors import GatewayInputError, RolloutError
from clearance.gateway.rollout import (
    ACTIVE,
    COMPLETE,
    DEFAULT_RINGS,
    HALTED,
    Ring,
    RolloutState,
    Transition,
    customer_bucket,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_ring_membership_matches_percentages() -> None:
    buckets = [customer_bucket(f"customer-{n}") for n in range(20_000)]
    canary = sum(b < 1.0 for b in buckets) / len(buckets)
    early = sum(b < 10.0 for b in buckets) / len(buckets)
    assert 0.007 < canary < 0.013 and 0.09 < early < 0.11
    assert customer_bucket("x") == customer_bucket("x")


def test_soak_then_advance_through_all_rings() -> None:
    state, t = rollout.start("rel", DEFAULT_RINGS, T0)
    assert t.event == "started" and state.ring.name == "canary"
    same, none = rollout.advance(state, T0 + timedelta(hours=23))
    assert none is None and same == state  # canary has not soaked yet
    state, t2 = rollout.advance(state, T0 + timedelta(hours=24))
    assert t2 is not None and t2.event == "advanced" and state.ring.name == "early"
    state, t3 = rollout.advance(state, T0 + timedelta(hours=48))
    assert t3 is not None and state.ring.name == "broad"
    state, t4 = rollout.advance(state, T0 + timedelta(hours=48))
    assert t4 is not None and t4.event == "completed" and state.status == COMPLETE
    assert state.reaches("anyone")
    assert Transition.from_dict(t2.to_dict()) == t2
    assert RolloutState.from_dict(state.to_dict()) == state


def test_bad_canary_health_halts_and_only_resume_restarts() -> None:
    rings = (Ring("canary", 1, timedelta(0), 0.2, min_reports=5), Ring("broad", 100, timedelta(0)))
    state, _ = rollout.start("rel", rings, T0)
    for _ in range(4):
        state, t = rollout.record_health(state, "failed", T0)
        assert t is None  # not enough reports yet
    state, t = rollout.record_health(state, "engine-crash", T0)
    assert t is not None and t.event == "halted" and state.status == HALTED
    assert "100.0%" in t.reason
    stuck, nothing = rollout.advance(state, T0 + timedelta(days=30))
    assert nothing is None and stuck.status == HALTED
    state, t = rollout.resume(state, T0, "ab" * 32, "inspector", "fixed in 1.2.1")
    assert state.status == ACTIVE and t.evidence["decision_sha256"] == "ab" * 32
    assert state.health[0].reports == 0
    with pytest.raises(RolloutError):
        rollout.resume(state, T0, "cd" * 32, "inspector", "again")


def test_healthy_reports_do_not_halt() -> None:
    state, _ = rollout.start("rel", DEFAULT_RINGS, T0)
    for _ in range(100):
        state, t = rollout.record_health(state, "ok", T0)
        assert t is None
    state, t = rollout.record_health(state, "failed", T0)
    assert t is None and state.status == ACTIVE  # 1/101 is under 2 %
    with pytest.raises(GatewayInputError):
        rollout.record_health(state, "meh", T0)


def test_rings_must_grow_to_100() -> None:
    with pytest.raises(GatewayInputError):
        rollout.start("r", (Ring("a", 50, timedelta(0)),), T0)
    with pytest.raises(GatewayInputError):
        rollout.start("r", (Ring("a", 50, timedelta(0)), Ring("b", 10, timedelta(0))), T0)

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
from clearance.policy.rollout import Report, Tally, tally

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_ring_membership_matches_percentages() -> None:
    buckets = [customer_bucket(f"customer-{n}") for n in range(20_000)]
    canary = sum(b < 1.0 for b in buckets) / len(buckets)
    early = sum(b < 10.0 for b in buckets) / len(buckets)
    assert 0.007 < canary < 0.013 and 0.09 < early < 0.11
    assert customer_bucket("x") == customer_bucket("x")


def _healthy(n: int) -> Tally:
    return Tally(healthy=n)


def test_soak_then_advance_through_all_rings_with_enough_healthy_devices() -> None:
    state, t = rollout.start("rel", DEFAULT_RINGS, T0)
    assert t.event == "started" and state.ring.name == "canary"
    same, none = rollout.judge(state, _healthy(1), T0 + timedelta(hours=23), 0)
    assert none is None and same.ring_index == 0  # canary has not soaked yet
    state, t2 = rollout.judge(state, _healthy(1), T0 + timedelta(hours=24), 3)
    assert t2 is not None and t2.event == "advanced" and state.ring.name == "early"
    assert t2.evidence == {"reportsThrough": 3, "devices": 1, "healthy": 1, "failing": 0}
    state, t3 = rollout.judge(state, _healthy(5), T0 + timedelta(hours=48), 9)
    assert t3 is not None and state.ring.name == "broad"
    state, t4 = rollout.judge(state, _healthy(20), T0 + timedelta(hours=48), 40)
    assert t4 is not None and t4.event == "completed" and state.status == COMPLETE
    assert state.reaches("anyone")
    assert Transition.from_dict(t2.to_dict()) == t2
    assert RolloutState.from_dict(state.to_dict()) == state


def test_ring_advances_with_no_health_report_at_all_is_refused() -> None:
    """Issue 12 case 4: silence is not health; after the soak plus the silence window the
    ring halts instead of advancing."""
    state, _ = rollout.start("rel", DEFAULT_RINGS, T0)
    state, t = rollout.judge(state, Tally(), T0 + timedelta(hours=30), 0)
    assert t is None and state.status == ACTIVE and state.ring.name == "canary"
    state, t = rollout.judge(state, Tally(), T0 + timedelta(hours=48), 0)
    assert t is not None and t.event == "halted" and "silence" in t.reason


def test_bad_canary_health_halts_and_only_resume_restarts() -> None:
    rings = (Ring("canary", 1, timedelta(0), 0.2, min_reports=5), Ring("broad", 100, timedelta(0)))
    state, _ = rollout.start("rel", rings, T0)
    state, t = rollout.judge(state, Tally(failing=4), T0, 4)
    assert t is None  # not enough devices yet
    state, t = rollout.judge(state, Tally(failing=5), T0, 5)
    assert t is not None and t.event == "halted" and state.status == HALTED
    assert "5 of 5 reporting devices failed" in t.reason
    stuck, nothing = rollout.judge(state, _healthy(50), T0 + timedelta(days=30), 9)
    assert nothing is None and stuck.status == HALTED
    state, t = rollout.resume(state, T0, "ab" * 32, "inspector", "fixed in 1.2.1")
    assert state.status == ACTIVE and t.evidence["decision_sha256"] == "ab" * 32
    assert state.health[0].reports == 0
    with pytest.raises(RolloutError):
        rollout.resume(state, T0, "cd" * 32, "inspector", "again")


def test_one_device_counts_once_per_window() -> None:
    """Issue 12 case 4: forty ``ok`` from one key are one healthy device, and five
    ``failed`` from one key are one failing device."""
    flood = [Report("device-flood", "ok", i) for i in range(40)]
    real = [Report(f"device-{n}", "failed", 100 + n) for n in range(5)]
    assert tally(flood + real) == Tally(healthy=1, failing=5)
    liar = [Report("device-liar", "failed", i) for i in range(5)]
    assert tally(liar) == Tally(failing=1)
    # The latest report of a device is its vote.
    assert tally([Report("d", "failed", 1), Report("d", "ok", 2)]) == Tally(healthy=1)
    assert tally([Report("d", "meh", 1)]) == Tally()


def test_device_reporting_logged_and_in_bulk_counts_once_by_its_bulk_report() -> None:
    """A device's bulk report is newer than its logged ones: a device that logged
    ``failed`` and then sent ``ok`` in bulk is one healthy device, not one of each."""
    logged = [Report("both", "failed", 1), Report("logged-only", "failed", 2)]
    bulk = {"ok": 3, "engine-crash": 1, "meh": 7}  # three healthy devices, "both" among them
    assert tally(logged, bulk, {"both"}) == Tally(healthy=3, failing=2)
    assert tally(logged, {}, ()) == tally(logged) == Tally(failing=2)


def test_rings_must_grow_to_100() -> None:
    with pytest.raises(GatewayInputError):
        rollout.start("r", (Ring("a", 50, timedelta(0)),), T0)
    with pytest.raises(GatewayInputError):
        rollout.start("r", (Ring("a", 50, timedelta(0)), Ring("b", 10, timedelta(0))), T0)

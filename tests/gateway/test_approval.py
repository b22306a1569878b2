"""Verdict evaluation and rollout replay are pure: the rules without a store or a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clearance.gateway import rollout
from clearance.gateway.approval import evaluate
from clearance.gateway.states import ReleaseState


def _v(inspector: str, decision: str, index: int) -> dict[str, object]:
    return {"inspector": inspector, "decision": decision, "log_index": index}


def test_one_rejection_vetoes_a_threshold_of_approvals() -> None:
    verdicts = [_v("a", "approved", 1), _v("b", "approved", 2), _v("c", "rejected", 3)]
    outcome = evaluate(ReleaseState.APPROVED, verdicts, 2)
    assert outcome.state == ReleaseState.REJECTED and outcome.rejected_by == 3
    assert not outcome.approved and "c" in outcome.detail


def test_one_inspector_approving_twice_counts_once() -> None:
    outcome = evaluate(
        ReleaseState.AWAITING_VERDICT, [_v("a", "approved", 1), _v("a", "approved", 2)], 2
    )
    assert outcome.state == ReleaseState.AWAITING_VERDICT and not outcome.approved
    assert outcome.detail == "1 of 2 inspector approvals"


def test_threshold_approves_once() -> None:
    verdicts = [_v("a", "approved", 1), _v("b", "approved", 2)]
    first = evaluate(ReleaseState.AWAITING_VERDICT, verdicts, 2)
    assert first.state == ReleaseState.APPROVED and first.approved
    again = evaluate(ReleaseState.APPROVED, verdicts, 2)
    assert again.state is None and again.approved


def test_review_request_without_threshold() -> None:
    outcome = evaluate(ReleaseState.INSPECTING, [_v("a", "needs-review", 1)], 1)
    assert outcome.state == ReleaseState.NEEDS_REVIEW
    assert evaluate(ReleaseState.INSPECTING, [], 1).state is None


def test_replaying_the_logged_transitions_reaches_the_live_state() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rings = (
        rollout.Ring("canary", 1.0, timedelta(hours=1), min_reports=1),
        rollout.Ring("broad", 100.0, timedelta(0)),
    )
    live, started = rollout.start("r", rings, at)
    started = rollout.Transition(
        started.release,
        started.event,
        started.ring,
        started.at,
        started.reason,
        {"rings": [r.to_dict() for r in rings]},
    )
    transitions = [started]
    live, halted = rollout.record_health(live, rollout.HEALTH_FAILED, at)
    assert halted is not None
    transitions.append(halted)
    live, resumed = rollout.resume(live, at + timedelta(minutes=5), "d" * 64, "policy", "fixed")
    transitions.append(resumed)
    live, advanced = rollout.advance(live, at + timedelta(hours=2))
    assert advanced is not None
    transitions.append(advanced)
    live, completed = rollout.advance(live, at + timedelta(hours=2))
    assert completed is not None
    transitions.append(completed)

    replayed: rollout.RolloutState | None = None
    for t in transitions:
        replayed = rollout.replay(replayed, rollout.Transition.from_dict(t.to_dict()), ())
    assert replayed is not None
    # Health counts are not logged, only their effect: everything else must agree.
    assert replayed.status == live.status == rollout.COMPLETE
    assert (replayed.ring_index, replayed.ring_entered, replayed.rings) == (
        live.ring_index,
        live.ring_entered,
        live.rings,
    )


def test_a_transition_for_a_rollout_that_never_started_is_ignored() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    orphan = rollout.Transition("r", "advanced", "broad", at, "forged")
    assert rollout.replay(None, orphan, rollout.DEFAULT_RINGS) is None

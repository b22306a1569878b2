"""Verdict evaluation: what the logged verdicts of a release make of it (pure).

The gateway's approval rule: one trusted ``rejected`` verdict rejects the
release (and halts a rollout under way); otherwise the trust root's
threshold of distinct approving inspectors approves it; otherwise a
``needs-review`` verdict asks for human review; otherwise it waits for
more approvals.  Nothing here reads a store or the clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clearance.attest import APPROVED, NEEDS_REVIEW, REJECTED
from clearance.gateway.states import ReleaseState


@dataclass(frozen=True)
class Evaluation:
    """The outcome of :func:`evaluate`."""

    #: The state the release should move to; ``None``: leave it as it is.
    state: ReleaseState | None
    detail: str = ""
    #: Approved by the threshold (a rollout starts if none has).
    approved: bool = False
    #: Log index of the rejecting verdict, when one rejects (a rollout under way halts).
    rejected_by: int | None = None


def evaluate(current: str, verdicts: Sequence[Mapping[str, Any]], threshold: int) -> Evaluation:
    """Apply the inspector ``threshold`` to ``verdicts`` (index rows, in log order)
    of a release now in state ``current``."""
    approvers = {v["inspector"] for v in verdicts if v["decision"] == APPROVED}
    rejected = [v for v in verdicts if v["decision"] == REJECTED]
    if rejected:
        last = rejected[-1]
        return Evaluation(
            ReleaseState.REJECTED,
            f"rejected by {last['inspector']} (log index {last['log_index']})",
            rejected_by=int(last["log_index"]),
        )
    if len(approvers) >= threshold:
        if current == ReleaseState.APPROVED:
            return Evaluation(None, approved=True)
        return Evaluation(
            ReleaseState.APPROVED,
            f"approved by {len(approvers)} of {threshold} required inspectors",
            approved=True,
        )
    if any(v["decision"] == NEEDS_REVIEW for v in verdicts):
        return Evaluation(ReleaseState.NEEDS_REVIEW, "an inspector asked for human review")
    if approvers:
        return Evaluation(
            ReleaseState.AWAITING_VERDICT, f"{len(approvers)} of {threshold} inspector approvals"
        )
    return Evaluation(None)

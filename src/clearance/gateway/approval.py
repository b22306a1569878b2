"""Verdict evaluation: what the logged verdicts of a release make of it (pure).

The gateway's approval rule is the one of :mod:`clearance.attest.admission`
(``evaluate_votes``): one trusted ``rejected`` verdict rejects the release
(and halts a rollout under way); otherwise the trust root's threshold of
distinct approving inspector **keys** (key ids, never names) approves it;
otherwise a ``needs-review`` verdict asks for human review; otherwise it
waits for more approvals.  Nothing here reads a store or the clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clearance.attest import REJECTED
from clearance.attest.admission import VerdictVote, evaluate_votes
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


def signers_of(row: Mapping[str, Any]) -> frozenset[str]:
    """The key ids an index row says signed a verdict (``key_ids``; else the space-separated
    ``inspector`` field)."""
    ids = row.get("key_ids")
    if isinstance(ids, list):
        return frozenset(str(k) for k in ids)
    return frozenset(str(row.get("inspector", "")).split())


def evaluate(
    current: str,
    verdicts: Sequence[Mapping[str, Any]],
    threshold: int,
    revoked: frozenset[str] = frozenset(),
) -> Evaluation:
    """Apply the inspector ``threshold`` to ``verdicts`` (index rows, in log order, whose
    ``inspector`` holds the distinct trusted key ids that signed each) of a release now in
    state ``current``: :func:`clearance.attest.admission.evaluate_votes`, counting keys, never
    names; keys in ``revoked`` neither count nor veto."""
    votes = [
        VerdictVote(int(v["log_index"]), str(v["decision"]), signers_of(v)) for v in verdicts
    ]
    trusted = frozenset().union(*(vote.key_ids for vote in votes)) - revoked
    outcome = evaluate_votes(votes, trusted, threshold)
    approvers = outcome.approvers
    rejected = [v for v in verdicts if v["decision"] == REJECTED and signers_of(v) & trusted]
    if rejected:
        last = rejected[-1]
        return Evaluation(
            ReleaseState.REJECTED,
            f"rejected by {last.get('inspector')} (log index {last['log_index']})",
            rejected_by=int(last["log_index"]),
        )
    if outcome.approved:
        if current == ReleaseState.APPROVED:
            return Evaluation(None, approved=True)
        return Evaluation(
            ReleaseState.APPROVED,
            f"approved by {len(approvers)} of {threshold} required inspectors",
            approved=True,
        )
    if outcome.reviewers:
        return Evaluation(ReleaseState.NEEDS_REVIEW, "an inspector asked for human review")
    if approvers:
        return Evaluation(
            ReleaseState.AWAITING_VERDICT, f"{len(approvers)} of {threshold} inspector approvals"
        )
    return Evaluation(None)

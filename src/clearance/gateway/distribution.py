"""Distribution decisions: whether a customer may have a release now, and why not (pure).

Two gates, in order: the logged distribution policy over the customer's
logged entitlements (:func:`clearance.policy.decide`), then the release's
rollout (halted, or the customer outside the rings open so far).  The
gateway reads the inputs from its metadata store and the clock; nothing
here does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from clearance.gateway import rollout
from clearance.gateway.store import ReleaseRow
from clearance.policy import DistributionDecision
from clearance.policy._time import format_time


def offer(
    decision: DistributionDecision,
    state: rollout.RolloutState | None,
    last_transition_index: int | None,
    customer: str,
) -> dict[str, Any]:
    """Whether a release may go to ``customer`` now, and the logged reason if not.

    ``decision`` is the policy's for the customer and the release's product;
    ``state`` the release's rollout (``None``: not approved yet).
    """
    if not decision.allowed:
        return {"allowed": False, "by": "policy", **decision.to_dict()}
    if state is None:
        return {"allowed": False, "by": "rollout", "reason": "not approved yet"}
    if state.status == rollout.HALTED:
        return {
            "allowed": False,
            "by": "rollout",
            "rule": "halted",
            "reason": f"rollout halted in ring {state.ring.name}",
            "transition_log_index": last_transition_index,
        }
    if not state.reaches(customer):
        return {
            "allowed": False,
            "by": "rollout",
            "rule": "ring",
            "reason": f"customer is outside ring {state.ring.name} ({state.ring.percent:g} %)",
            "transition_log_index": last_transition_index,
        }
    return {
        "allowed": True,
        "by": "policy",
        **decision.to_dict(),
        "ring": state.ring.name,
        "transition_log_index": last_transition_index,
    }


def latest(
    product: str,
    channel: str,
    customer: str,
    at: datetime,
    approved: Sequence[ReleaseRow],
    offer_of: Callable[[ReleaseRow], dict[str, Any]],
    tree_size: int,
) -> dict[str, Any]:
    """The newest of the ``approved`` releases (newest first) that ``offer_of`` allows, and,
    when it is not the newest approved one, the reason the first refusal gave."""
    newest = approved[0] if approved else None
    offered: ReleaseRow | None = None
    withheld_reason: dict[str, Any] | None = None
    for row in approved:
        verdict = offer_of(row)
        if verdict["allowed"]:
            offered = row
            break
        if withheld_reason is None:
            withheld_reason = verdict
    withheld = newest is not None and (offered is None or offered.sha256 != newest.sha256)
    return {
        "product": product,
        "channel": channel,
        "customer": customer,
        "at": format_time(at),
        "newest_approved": None
        if newest is None
        else {
            "sha256": newest.sha256,
            "version": newest.version,
            "log_index": newest.log_index,
        },
        "offered": None
        if offered is None
        else {
            "sha256": offered.sha256,
            "version": offered.version,
            "log_index": offered.log_index,
            "artifacts": offered.artifacts,
        },
        "withheld": withheld,
        "reason": withheld_reason if withheld else None,
        "tree_size": tree_size,
    }

"""Distribution by policy and rollout: what a customer may have now, and why not.

A mixin of :class:`~clearance.gateway.service.Gateway`, kept apart because it
only reads: the logged policy in force, the customer's logged entitlements and
the rollout state, all from the metadata index.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from clearance.gateway import rollout
from clearance.gateway._log import GatewayLog
from clearance.gateway.store import MetadataStore, ReleaseRow
from clearance.policy import Decision, Entitlement, LoggedPolicy, Policy, decide
from clearance.policy._time import format_time


class DistributionMixin:
    store: MetadataStore
    log: GatewayLog
    clock: Callable[[], datetime]

    def policy_in_force(self) -> LoggedPolicy | None:
        latest = self.store.latest_policy()
        if latest is None:
            return None
        return LoggedPolicy(Policy.from_dict(latest[1]), latest[0])

    def decide_for(self, customer: str, product: str, at: datetime | None = None) -> Decision:
        entitlements = [Entitlement.from_dict(b) for _, b in self.store.entitlements(customer)]
        return decide(self.policy_in_force(), entitlements, customer, product, at or self.clock())

    def offer(self, row: ReleaseRow, customer: str) -> dict[str, Any]:
        """Whether ``row`` may go to ``customer`` now, and the logged reason if not."""
        decision = self.decide_for(customer, row.product)
        if not decision.allowed:
            return {"allowed": False, "by": "policy", **decision.to_dict()}
        data = self.store.rollout(row.sha256)
        if data is None:
            return {"allowed": False, "by": "rollout", "reason": "not approved yet"}
        state = rollout.RolloutState.from_dict(data)
        transitions = self.store.transitions(row.sha256)
        last_index = transitions[-1][0] if transitions else None
        if state.status == rollout.HALTED:
            return {
                "allowed": False,
                "by": "rollout",
                "rule": "halted",
                "reason": f"rollout halted in ring {state.ring.name}",
                "transition_log_index": last_index,
            }
        if not state.reaches(customer):
            return {
                "allowed": False,
                "by": "rollout",
                "rule": "ring",
                "reason": f"customer is outside ring {state.ring.name} ({state.ring.percent:g} %)",
                "transition_log_index": last_index,
            }
        return {
            "allowed": True,
            "by": "policy",
            **decision.to_dict(),
            "ring": state.ring.name,
            "transition_log_index": last_index,
        }

    def latest(self, product: str, channel: str, customer: str) -> dict[str, Any]:
        """The newest approved release of the channel this customer may have now, and when it
        is not the newest approved one in the log, the logged reason for withholding it."""
        approved = self.store.approved_releases(product, channel)
        newest = approved[0] if approved else None
        offered: ReleaseRow | None = None
        withheld_reason: dict[str, Any] | None = None
        for row in approved:
            verdict = self.offer(row, customer)
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
            "at": format_time(self.clock()),
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
            "tree_size": self.log.size,
        }

"""The pure decision: may this customer receive this product's update at this time?

Nothing here reads the clock, the network or a store: the answer depends only
on the logged policy, the customer's entitlements and the instant asked
about, so an auditor replaying the log reaches the same answer.  A refusal
names the rule, and the policy and its log index when a policy caused it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clearance.policy._time import format_time
from clearance.policy.model import Entitlement, JurisdictionRule, LoggedPolicy

# Rule names carried by a DistributionDecision (stable: clients and the dashboard show them).
ENTITLED = "entitled"
GRACE = "grace-period"
EXEMPT_CATEGORY = "allowed-category"
NO_ENTITLEMENT = "no-entitlement"
ENTITLEMENT_INACTIVE = "entitlement-inactive"
NO_NEW_SALES = "no-new-sales"
NO_UPDATES = "no-updates"


@dataclass(frozen=True)
class DistributionDecision:
    allowed: bool
    rule: str
    reason: str
    policy_name: str | None = None
    policy_log_index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "rule": self.rule,
            "reason": self.reason,
            "policy": self.policy_name,
            "policy_log_index": self.policy_log_index,
        }


def _decide_one(
    logged: LoggedPolicy | None, ent: Entitlement, moment: datetime
) -> DistributionDecision:
    rule: JurisdictionRule | None = None
    category: str | None = None
    if logged is not None:
        category = logged.policy.category_of(ent.product)
        if category is not None:
            rule = logged.policy.rule_for(ent.jurisdiction)

    def by_policy(allowed: bool, name: str, reason: str) -> DistributionDecision:
        assert logged is not None
        return DistributionDecision(allowed, name, reason, logged.policy.name, logged.log_index)

    if rule is None or category in rule.allowed_categories:
        if ent.covers(moment):
            if rule is not None:
                return by_policy(
                    True,
                    EXEMPT_CATEGORY,
                    f"category {category!r} stays allowed in {ent.jurisdiction}",
                )
            return DistributionDecision(
                True, ENTITLED, f"{ent.customer} is entitled to {ent.product}"
            )
        return DistributionDecision(
            False,
            ENTITLEMENT_INACTIVE,
            f"entitlement of {ent.customer} for {ent.product} runs "
            f"{format_time(ent.start)} to {format_time(ent.end)}",
        )

    if rule.no_new_sales_after is not None and ent.start >= rule.no_new_sales_after:
        return by_policy(
            False,
            NO_NEW_SALES,
            f"entitlement of {ent.customer} for {ent.product} starts "
            f"{format_time(ent.start)}, after new sales in {ent.jurisdiction} stopped "
            f"({format_time(rule.no_new_sales_after)})",
        )
    if rule.no_updates_after is not None and moment >= rule.no_updates_after:
        return by_policy(
            False,
            NO_UPDATES,
            f"no {category} updates in {ent.jurisdiction} from "
            f"{format_time(rule.no_updates_after)}",
        )
    if ent.covers(moment):
        return DistributionDecision(True, ENTITLED, f"{ent.customer} is entitled to {ent.product}")
    grace_end = rule.grace_end
    if grace_end is not None and ent.start <= moment < grace_end:
        return by_policy(
            True,
            GRACE,
            f"existing customer in {ent.jurisdiction}: free updates until {format_time(grace_end)}",
        )
    return DistributionDecision(
        False,
        ENTITLEMENT_INACTIVE,
        f"entitlement of {ent.customer} for {ent.product} runs "
        f"{format_time(ent.start)} to {format_time(ent.end)}",
    )


def decide(
    policy: LoggedPolicy | None,
    entitlements: Sequence[Entitlement],
    customer: str,
    product: str,
    moment: datetime,
) -> DistributionDecision:
    """Decide whether ``customer`` may receive an update of ``product`` at ``moment``.

    ``policy`` is the policy in force (the latest logged one), or None when the
    policy authority has published none.  Allowed when any of the customer's
    entitlements for the product allows it; otherwise the refusal that a policy
    caused is preferred to a plain missing or inactive entitlement, so that a
    withheld update always points at the logged policy that explains it.
    """
    if moment.tzinfo is None:
        raise ValueError("decide() needs a timezone-aware instant")
    mine = [e for e in entitlements if e.customer == customer and e.product == product]
    if not mine:
        return DistributionDecision(
            False, NO_ENTITLEMENT, f"{customer} holds no entitlement to {product}"
        )
    decisions = [_decide_one(policy, e, moment) for e in mine]
    for decision in decisions:
        if decision.allowed:
            return decision
    for decision in decisions:
        if decision.policy_log_index is not None:
            return decision
    return decisions[0]

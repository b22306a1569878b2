"""Distribution policy: signed per-jurisdiction rules, entitlements and the pure decision.

``DistributionPolicy`` and ``DistributionDecision`` are the names (the inspection's
verdict policy is :class:`clearance.inspection.VerdictPolicy`).
"""

from clearance.policy.decide import (
    ENTITLED,
    ENTITLEMENT_INACTIVE,
    EXEMPT_CATEGORY,
    GRACE,
    NO_ENTITLEMENT,
    NO_NEW_SALES,
    NO_UPDATES,
    DistributionDecision,
    decide,
)
from clearance.policy.errors import DistributionRefused, PolicyFormatError
from clearance.policy.model import (
    ENTITLEMENT_PREDICATE_TYPE,
    POLICY_PREDICATE_TYPE,
    DistributionPolicy,
    Entitlement,
    JurisdictionRule,
    LoggedPolicy,
)

__all__ = [
    "ENTITLED",
    "ENTITLEMENT_INACTIVE",
    "ENTITLEMENT_PREDICATE_TYPE",
    "EXEMPT_CATEGORY",
    "GRACE",
    "NO_ENTITLEMENT",
    "NO_NEW_SALES",
    "NO_UPDATES",
    "POLICY_PREDICATE_TYPE",
    "DistributionDecision",
    "DistributionPolicy",
    "DistributionRefused",
    "Entitlement",
    "JurisdictionRule",
    "LoggedPolicy",
    "PolicyFormatError",
    "decide",
]

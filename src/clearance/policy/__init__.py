"""Distribution policy: signed per-jurisdiction rules, entitlements and the pure decision."""

from clearance.policy.decide import (
    ENTITLED,
    ENTITLEMENT_INACTIVE,
    EXEMPT_CATEGORY,
    GRACE,
    NO_ENTITLEMENT,
    NO_NEW_SALES,
    NO_UPDATES,
    Decision,
    decide,
)
from clearance.policy.errors import DistributionRefused, PolicyFormatError
from clearance.policy.model import (
    ENTITLEMENT_PREDICATE_TYPE,
    POLICY_PREDICATE_TYPE,
    Entitlement,
    JurisdictionRule,
    LoggedPolicy,
    Policy,
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
    "Decision",
    "DistributionRefused",
    "Entitlement",
    "JurisdictionRule",
    "LoggedPolicy",
    "Policy",
    "PolicyFormatError",
    "decide",
]

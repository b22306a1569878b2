"""The distribution policy statement and customer entitlements (wire objects).

A policy is the predicate of an in-toto Statement signed by the policy
authority and appended to the log.  Per jurisdiction it says when new sales
stop, when updates stop, how long existing customers keep receiving updates
(grace), and which product categories stay allowed whatever the dates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clearance.policy._time import format_time, parse_time
from clearance.policy.errors import PolicyFormatError

#: ``predicateType`` of a policy statement.
POLICY_PREDICATE_TYPE = "https://clearance.dev/policy/v1"
#: ``predicateType`` of an entitlement statement (signed by the vendor that sold it).
ENTITLEMENT_PREDICATE_TYPE = "https://clearance.dev/entitlement/v1"

DEFAULT_CATEGORY = "security-software"


def _str(data: Mapping[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise PolicyFormatError(f"{what}: '{key}' must be a non-empty string")
    return value


def _opt_time(data: Mapping[str, Any], key: str, what: str) -> datetime | None:
    value = data.get(key)
    return None if value is None else parse_time(value, f"{what}.{key}")


@dataclass(frozen=True)
class JurisdictionRule:
    """What one jurisdiction allows for the products a policy governs."""

    jurisdiction: str
    #: Entitlements that start at or after this instant are not honoured (no new sales,
    #: resale or licensing).
    no_new_sales_after: datetime | None = None
    #: No update of a restricted category is delivered at or after this instant.
    no_updates_after: datetime | None = None
    #: Existing customers (entitled before ``no_new_sales_after``) keep receiving updates
    #: for this long after ``grace_starts`` even when their own entitlement has ended;
    #: never past ``no_updates_after``: a vendor's farewell gift cannot override the law.
    grace: timedelta | None = None
    grace_starts: datetime | None = None
    #: Product categories the restrictions do not touch (e.g. threat intelligence).
    allowed_categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.grace is not None and self.grace < timedelta(0):
            raise PolicyFormatError(f"jurisdiction {self.jurisdiction}: negative grace period")
        if self.grace is not None and self.grace_start is None:
            raise PolicyFormatError(
                f"jurisdiction {self.jurisdiction}: a grace period needs grace_starts "
                "or no_new_sales_after"
            )

    @property
    def grace_start(self) -> datetime | None:
        return self.grace_starts or self.no_new_sales_after

    @property
    def grace_end(self) -> datetime | None:
        start = self.grace_start
        if self.grace is None or start is None:
            return None
        return start + self.grace

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"jurisdiction": self.jurisdiction}
        if self.no_new_sales_after is not None:
            out["no_new_sales_after"] = format_time(self.no_new_sales_after)
        if self.no_updates_after is not None:
            out["no_updates_after"] = format_time(self.no_updates_after)
        if self.grace is not None:
            out["grace_days"] = self.grace.days
        if self.grace_starts is not None:
            out["grace_starts"] = format_time(self.grace_starts)
        out["allowed_categories"] = list(self.allowed_categories)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> JurisdictionRule:
        if not isinstance(data, Mapping):
            raise PolicyFormatError("jurisdiction rule must be an object")
        name = _str(data, "jurisdiction", "jurisdiction rule")
        what = f"jurisdiction {name}"
        grace_days = data.get("grace_days")
        if grace_days is not None and (not isinstance(grace_days, int) or grace_days < 0):
            raise PolicyFormatError(f"{what}: grace_days must be a non-negative integer")
        cats = data.get("allowed_categories", [])
        if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
            raise PolicyFormatError(f"{what}: allowed_categories must be a list of strings")
        return cls(
            jurisdiction=name,
            no_new_sales_after=_opt_time(data, "no_new_sales_after", what),
            no_updates_after=_opt_time(data, "no_updates_after", what),
            grace=None if grace_days is None else timedelta(days=grace_days),
            grace_starts=_opt_time(data, "grace_starts", what),
            allowed_categories=tuple(cats),
        )


@dataclass(frozen=True)
class DistributionPolicy:
    """A distribution policy signed by the policy authority.

    ``products`` maps each governed product to its category; products absent
    from it are outside this policy (only entitlements apply to them).
    """

    name: str
    issued: datetime
    products: Mapping[str, str]
    rules: tuple[JurisdictionRule, ...]
    note: str = ""

    def __post_init__(self) -> None:
        seen = [r.jurisdiction for r in self.rules]
        if len(seen) != len(set(seen)):
            raise PolicyFormatError(f"policy {self.name}: a jurisdiction appears twice")

    def rule_for(self, jurisdiction: str) -> JurisdictionRule | None:
        for rule in self.rules:
            if rule.jurisdiction == jurisdiction:
                return rule
        return None

    def category_of(self, product: str) -> str | None:
        return self.products.get(product)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "issued": format_time(self.issued),
            "products": dict(sorted(self.products.items())),
            "jurisdictions": [r.to_dict() for r in self.rules],
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Any) -> DistributionPolicy:
        if not isinstance(data, Mapping):
            raise PolicyFormatError("policy must be a JSON object")
        name = _str(data, "name", "policy")
        products = data.get("products", {})
        if not isinstance(products, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in products.items()
        ):
            raise PolicyFormatError(f"policy {name}: products must map names to categories")
        rules = data.get("jurisdictions")
        if not isinstance(rules, list):
            raise PolicyFormatError(f"policy {name}: 'jurisdictions' must be a list")
        note = data.get("note", "")
        if not isinstance(note, str):
            raise PolicyFormatError(f"policy {name}: note must be a string")
        return cls(
            name=name,
            issued=parse_time(data.get("issued"), f"policy {name}.issued"),
            products=dict(products),
            rules=tuple(JurisdictionRule.from_dict(r) for r in rules),
            note=note,
        )


@dataclass(frozen=True)
class LoggedPolicy:
    """A policy together with the index of the log entry that published it."""

    policy: DistributionPolicy
    log_index: int


@dataclass(frozen=True)
class Entitlement:
    """A customer's right to receive a product's updates in a jurisdiction, [start, end)."""

    customer: str
    jurisdiction: str
    product: str
    start: datetime
    end: datetime
    #: Signed-note verifier keys of the customer's devices; install-health reports must be
    #: signed by one of them.
    client_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise PolicyFormatError(
                f"entitlement of {self.customer} for {self.product}: end is not after start"
            )

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer": self.customer,
            "jurisdiction": self.jurisdiction,
            "product": self.product,
            "start": format_time(self.start),
            "end": format_time(self.end),
            "client_keys": list(self.client_keys),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Entitlement:
        if not isinstance(data, Mapping):
            raise PolicyFormatError("entitlement must be a JSON object")
        what = "entitlement"
        keys = data.get("client_keys", [])
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise PolicyFormatError(f"{what}: client_keys must be a list of verifier keys")
        return cls(
            customer=_str(data, "customer", what),
            jurisdiction=_str(data, "jurisdiction", what),
            product=_str(data, "product", what),
            start=parse_time(data.get("start"), f"{what}.start"),
            end=parse_time(data.get("end"), f"{what}.end"),
            client_keys=tuple(keys),
        )

from __future__ import annotations

import json
from typing import Any

import pytest

from clearance.errors import BadInput
from clearance.policy import DistributionPolicy, Entitlement, PolicyFormatError
from clearance.policy.example import example_entitlements, us_restriction_policy


def test_policy_round_trips_through_json() -> None:
    policy = us_restriction_policy()
    again = DistributionPolicy.from_dict(json.loads(json.dumps(policy.to_dict())))
    assert again == policy


def test_entitlement_round_trips() -> None:
    for ent in example_entitlements():
        assert Entitlement.from_dict(json.loads(json.dumps(ent.to_dict()))) == ent


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("name"), "'name'"),
        (lambda d: d.update(issued="yesterday"), "not an RFC 3339 time"),
        (lambda d: d.update(issued="2024-06-20T00:00:00"), "no time zone"),
        (lambda d: d["jurisdictions"][0].update(grace_days=-1), "grace_days"),
        (lambda d: d.update(jurisdictions=[d["jurisdictions"][0]] * 2), "appears twice"),
        (lambda d: d.update(products=["a"]), "products"),
    ],
)
def test_bad_policies_are_bad_input(mutate: Any, message: str) -> None:
    data = us_restriction_policy().to_dict()
    mutate(data)
    with pytest.raises(PolicyFormatError, match=message) as info:
        DistributionPolicy.from_dict(data)
    assert isinstance(info.value, BadInput)


def test_entitlement_must_end_after_it_starts() -> None:
    with pytest.raises(PolicyFormatError, match="end is not after start"):
        Entitlement.from_dict(
            {
                "customer": "c",
                "jurisdiction": "US",
                "product": "p",
                "start": "2024-01-02",
                "end": "2024-01-01",
            }
        )

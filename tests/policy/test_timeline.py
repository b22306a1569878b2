"""The articles' timeline, day by day across every cut-off (see clearance.policy.example)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from clearance.policy import (
    ENTITLED,
    ENTITLEMENT_INACTIVE,
    EXEMPT_CATEGORY,
    GRACE,
    NO_ENTITLEMENT,
    NO_NEW_SALES,
    NO_UPDATES,
    DistributionPolicy,
    JurisdictionRule,
    LoggedPolicy,
    decide,
)
from clearance.policy.example import (
    ANTIVIRUS,
    THREAT_INTEL,
    example_entitlements,
    us_restriction_policy,
)

LOG_INDEX = 17
POLICY = LoggedPolicy(us_restriction_policy(), LOG_INDEX)
ENTS = example_entitlements()


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


# Independent statement of the expected outcome per customer and day, written from the
# articles rather than from the code: (first day, last day, expected rule).
EXPECTED: dict[str, list[tuple[date, date, str]]] = {
    "us-hospital": [
        (date(2024, 6, 1), date(2024, 9, 28), ENTITLED),
        (date(2024, 9, 29), date(2025, 3, 1), NO_UPDATES),
    ],
    "us-school": [
        (date(2024, 6, 1), date(2024, 7, 31), ENTITLED),
        (date(2024, 8, 1), date(2024, 9, 28), GRACE),  # farewell, until the legal cut-off
        (date(2024, 9, 29), date(2025, 3, 1), NO_UPDATES),
    ],
    "us-last-buyer": [
        (date(2024, 6, 1), date(2024, 7, 18), ENTITLEMENT_INACTIVE),
        (date(2024, 7, 19), date(2024, 9, 28), ENTITLED),
        (date(2024, 9, 29), date(2025, 3, 1), NO_UPDATES),
    ],
    "us-late-buyer": [(date(2024, 6, 1), date(2025, 3, 1), NO_NEW_SALES)],
    "de-city": [(date(2024, 6, 1), date(2025, 3, 1), ENTITLED)],
}


@pytest.mark.parametrize("customer", sorted(EXPECTED))
def test_antivirus_updates_day_by_day(customer: str) -> None:
    for first, last, rule in EXPECTED[customer]:
        for day in _days(first, last):
            got = decide(POLICY, ENTS, customer, ANTIVIRUS, _at(day))
            assert (got.rule, got.allowed) == (rule, rule in (ENTITLED, GRACE)), (customer, day)
            if rule in (NO_UPDATES, NO_NEW_SALES, GRACE):
                # Every policy-caused outcome names the policy and its log index.
                assert got.policy_name == "us-2024-av-restriction"
                assert got.policy_log_index == LOG_INDEX


def test_threat_intelligence_stays_allowed_after_every_cut_off() -> None:
    for day in _days(date(2024, 10, 1), date(2025, 10, 20)):
        got = decide(POLICY, ENTS, "us-soc", THREAT_INTEL, _at(day))
        expected = (
            EXEMPT_CATEGORY
            if date(2024, 10, 15) <= day < date(2025, 10, 15)
            else (ENTITLEMENT_INACTIVE)
        )
        assert got.rule == expected, day
        assert got.allowed == (expected == EXEMPT_CATEGORY)


def test_cut_off_instants_are_exact() -> None:
    just_before = datetime(2024, 9, 28, 23, 59, 59, tzinfo=UTC)
    at_cut = datetime(2024, 9, 29, tzinfo=UTC)
    assert decide(POLICY, ENTS, "us-hospital", ANTIVIRUS, just_before).allowed
    refused = decide(POLICY, ENTS, "us-hospital", ANTIVIRUS, at_cut)
    assert not refused.allowed
    assert "2024-09-29T00:00:00Z" in refused.reason


def test_farewell_runs_six_months_where_no_legal_cut_off_stops_it() -> None:
    # The same vendor leaving a market voluntarily: sales stop, the six months run in full.
    base = us_restriction_policy()
    voluntary = DistributionPolicy(
        name="voluntary-exit",
        issued=base.issued,
        products=base.products,
        rules=(
            JurisdictionRule(
                jurisdiction="US",
                no_new_sales_after=datetime(2024, 7, 20, tzinfo=UTC),
                grace=timedelta(days=184),
            ),
        ),
    )
    logged = LoggedPolicy(voluntary, 3)
    assert decide(logged, ENTS, "us-school", ANTIVIRUS, _at(date(2025, 1, 19))).rule == GRACE
    after = decide(logged, ENTS, "us-school", ANTIVIRUS, _at(date(2025, 1, 20)))
    assert after.rule == ENTITLEMENT_INACTIVE and not after.allowed
    # A customer whose paid entitlement is longer keeps it: grace only adds.
    assert decide(logged, ENTS, "us-hospital", ANTIVIRUS, _at(date(2025, 6, 1))).rule == ENTITLED


def test_without_a_policy_only_entitlements_count() -> None:
    day = _at(date(2024, 12, 1))
    assert decide(None, ENTS, "us-late-buyer", ANTIVIRUS, day).rule == ENTITLED
    nobody = decide(None, ENTS, "stranger", ANTIVIRUS, day)
    assert nobody.rule == NO_ENTITLEMENT and not nobody.allowed and nobody.policy_log_index is None


def test_policy_refusal_is_preferred_over_a_lapsed_entitlement() -> None:
    # us-school holds one lapsed entitlement; after the cut-off the answer must name the policy.
    got = decide(POLICY, ENTS, "us-school", ANTIVIRUS, _at(date(2025, 2, 1)))
    assert got.rule == NO_UPDATES and got.policy_log_index == LOG_INDEX


def test_naive_time_is_rejected() -> None:
    with pytest.raises(ValueError):
        decide(POLICY, ENTS, "us-hospital", ANTIVIRUS, datetime(2024, 8, 1))

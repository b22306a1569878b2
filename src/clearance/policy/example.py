"""The worked example: the 2024 US restrictions on an anti-virus vendor (``shared/context``).

The articles give the timeline: the restriction is published on 20 June 2024;
new US sales stop 30 days later (20 July); updates, resale and licensing stop
100 days after publication (29 September); the vendor promises its existing
US customers six months of free updates as a farewell; threat-intelligence
and training services stay allowed.  Times are taken at 00:00 UTC of each
date (a modelling choice: the articles give dates, not hours).

How the farewell interacts with the cut-off: the six months run from the end
of sales (20 July 2024 to 20 January 2025) and keep updates flowing to an
existing customer whose paid entitlement lapses, but never past the legal
cut-off, so in the US the grace effectively ends on 29 September 2024.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clearance.policy.model import DistributionPolicy, Entitlement, JurisdictionRule

PUBLISHED = datetime(2024, 6, 20, tzinfo=UTC)
NO_NEW_SALES = datetime(2024, 7, 20, tzinfo=UTC)  # 30 days after publication
NO_UPDATES = datetime(2024, 9, 29, tzinfo=UTC)  # "100 days after publication", per the articles
FAREWELL = timedelta(days=184)  # six months: 20 July 2024 -> 20 January 2025

ANTIVIRUS = "endpoint-antivirus"
THREAT_INTEL = "threat-intelligence-feed"
TRAINING = "cybersecurity-training"


def us_restriction_policy() -> DistributionPolicy:
    return DistributionPolicy(
        name="us-2024-av-restriction",
        issued=PUBLISHED,
        products={
            ANTIVIRUS: "security-software",
            THREAT_INTEL: "threat-intelligence",
            TRAINING: "training",
        },
        rules=(
            JurisdictionRule(
                jurisdiction="US",
                no_new_sales_after=NO_NEW_SALES,
                no_updates_after=NO_UPDATES,
                grace=FAREWELL,
                grace_starts=NO_NEW_SALES,
                allowed_categories=("threat-intelligence", "training"),
            ),
        ),
        note="Worked example after the articles in shared/context: new sales end 30 days, "
        "updates/resale/licensing 100 days after publication; six months of free updates "
        "for existing customers; threat intelligence and training stay allowed.",
    )


def example_entitlements() -> list[Entitlement]:
    """Customers chosen so that every branch of the timeline is exercised."""
    day = timedelta(days=1)
    return [
        # A long-standing US customer paid up to 2025.
        Entitlement(
            "us-hospital",
            "US",
            ANTIVIRUS,
            datetime(2023, 1, 1, tzinfo=UTC),
            datetime(2025, 12, 31, tzinfo=UTC),
        ),
        # A US customer whose paid year ends on 1 August 2024: the farewell carries it on.
        Entitlement(
            "us-school",
            "US",
            ANTIVIRUS,
            datetime(2023, 8, 1, tzinfo=UTC),
            datetime(2024, 8, 1, tzinfo=UTC),
        ),
        # Bought on the last allowed day, and one sold a day too late.
        Entitlement(
            "us-last-buyer", "US", ANTIVIRUS, NO_NEW_SALES - day, datetime(2025, 7, 19, tzinfo=UTC)
        ),
        Entitlement(
            "us-late-buyer", "US", ANTIVIRUS, NO_NEW_SALES, datetime(2025, 7, 20, tzinfo=UTC)
        ),
        # Threat intelligence, bought after every cut-off: still allowed.
        Entitlement(
            "us-soc",
            "US",
            THREAT_INTEL,
            datetime(2024, 10, 15, tzinfo=UTC),
            datetime(2025, 10, 15, tzinfo=UTC),
        ),
        # A customer elsewhere is not touched by the US rule.
        Entitlement(
            "de-city",
            "DE",
            ANTIVIRUS,
            datetime(2024, 1, 1, tzinfo=UTC),
            datetime(2025, 12, 31, tzinfo=UTC),
        ),
    ]

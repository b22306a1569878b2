"""A small log for report tests: two releases, a policy restricting one jurisdiction, and
entitlements in three jurisdictions."""

from __future__ import annotations

import hashlib
from pathlib import Path

from audit.helpers import World
from clearance.attest import Statement, Subject, canonical_json
from clearance.keys import Signer
from clearance.keys.files import generate_key_files
from clearance.policy import ENTITLEMENT_PREDICATE_TYPE
from monitor.support import policy_body, rollout


def entitlement(
    world: World,
    customer: str,
    jurisdiction: str,
    start: str = "2023-01-01",
    end: str = "2099-01-01",
) -> bytes:
    body = {
        "customer": customer,
        "jurisdiction": jurisdiction,
        "product": "agent",
        "start": start,
        "end": end,
    }
    subject = Subject(customer, hashlib.sha256(canonical_json(body)).hexdigest())
    return Statement((subject,), ENTITLEMENT_PREDICATE_TYPE, body).sign([world.vendor]).to_bytes()


def populate(world: World) -> None:
    """Release 1.0.0 approved (verdicts dated 2026-11-22), 1.0.1 rejected; policy: no
    updates in XX after 2026-01-01; customers in DE, XX and YY (YY's entitlement ended)."""
    good = world.release("1.0.0")
    bad = world.release("1.0.1")
    world.append(
        good.to_bytes(),
        world.verdict(good).to_bytes(),
        rollout("started", good.sha256),
        bad.to_bytes(),
        world.verdict(bad, "rejected", findings={"content.targeting": {"high": 2}}).to_bytes(),
        world.policy(policy_body({"XX": "2026-01-01T00:00:00Z"})).to_bytes(),
        entitlement(world, "de-utility", "DE"),
        entitlement(world, "xx-hospital", "XX"),
        entitlement(world, "yy-school", "YY", end="2025-01-01"),
    )


def producer_key(directory: Path) -> tuple[Path, Signer]:
    key, _ = generate_key_files("regulator-report", directory)
    from clearance.keys import load_signer

    return key, load_signer(key)

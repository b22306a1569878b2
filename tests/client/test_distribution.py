"""``verify --customer`` offline: policy, private entitlement and signed rollout (case 5).

Each attack is refused with its own error class."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clearance.attest import Envelope, Role, TrustRoot, create_policy
from clearance.client import Bundle, BundleVerifier
from clearance.client.errors import (
    DistributionDeniedError,
    EntitlementError,
    PolicyMissingError,
    RolloutHaltedError,
    RolloutMissingError,
    RolloutRingError,
    RolloutSignatureError,
)
from clearance.gateway.bundles import build_bundle
from clearance.keys import Signer
from clearance.policy import Entitlement
from clearance.policy.commitment import new_opening, sign_entitlement
from clearance.policy.rollout import Ring, customer_bucket
from clearance.policy.rollout_statements import SignedTransition
from client.world import World

RULES = b"rule a { condition: true }"
DIGEST = hashlib.sha256(RULES).hexdigest()
RINGS = (
    Ring("canary", 1.0, timedelta(hours=1), min_reports=1),
    Ring("broad", 100.0, timedelta(0), min_reports=1),
)


def _customer(inside_canary: bool) -> str:
    for n in range(10_000):
        name = f"cust-{n}"
        if (customer_bucket(name) < 1.0) == inside_canary:
            return name
    raise AssertionError("no such customer")


@dataclass
class DistWorld(World):
    rollout_key: Signer = field(default_factory=lambda: Signer.generate("rollout"))

    @property
    def trust_root(self) -> TrustRoot:
        return replace(super().trust_root, rollout=Role((self.rollout_key.verifier,), 1))

    def moment(self, days: float = 0) -> datetime:
        return datetime.fromtimestamp(int(self.now), UTC) + timedelta(days=days)

    def policy(self, us_updates_until: datetime | None = None) -> Envelope:
        body: dict[str, Any] = {
            "name": "p",
            "issued": "2024-06-20T00:00:00Z",
            "products": {"av": "security-software"},
            "jurisdictions": [],
        }
        if us_updates_until is not None:
            body["jurisdictions"] = [
                {
                    "jurisdiction": "US",
                    "no_updates_after": us_updates_until.strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            ]
        return create_policy(body, self.policy_key)

    def entitlement(
        self, customer: str, jurisdiction: str = "DE", product: str = "av"
    ) -> tuple[Envelope, dict[str, Any]]:
        ent = Entitlement(
            customer,
            jurisdiction,
            product,
            self.moment(-30),
            self.moment(365),
            (Signer.generate("device-7f3a").verifier.to_string(),),
        )
        opening = new_opening(ent)
        return sign_entitlement(opening, [self.vendor]), opening.to_dict()

    def transition(
        self, release: Envelope, event: str, ring: str, signer: Signer | None = None
    ) -> Envelope:
        evidence: dict[str, Any] = {}
        if event == "started":
            evidence = {"rings": [r.to_dict() for r in RINGS]}
        return SignedTransition(release.sha256, event, ring, self.moment(), "test", evidence).sign(
            [signer or self.rollout_key]
        )

    def full(
        self,
        customer: str,
        events: tuple[tuple[str, str], ...] = (("started", "canary"), ("completed", "canary")),
        *,
        policy: Envelope | None = None,
        entitlement: tuple[Envelope, dict[str, Any]] | None = None,
        with_policy: bool = True,
        rollout_signer: Signer | None = None,
    ) -> Bundle:
        release, _verdicts, idx = self.publish("1.0", RULES)
        policy_env = policy or self.policy()
        ent_env, opening = entitlement or self.entitlement(customer)
        extra = self.append(policy_env, ent_env)
        rollout = self.append(*(self.transition(release, e, r, rollout_signer) for e, r in events))
        return build_bundle(
            self.log,
            self.checkpoint(),
            idx[0],
            idx[1:],
            extra[0] if with_policy else None,
            index=self.index(),
            entitlement_index=extra[1],
            entitlement_opening=opening,
            rollout_indices=rollout,
        )


@pytest.fixture
def world(tmp_path: Path) -> DistWorld:
    return DistWorld(tmp_path)


def _verify(world: DistWorld, bundle: Bundle, customer: str) -> Any:
    return BundleVerifier(world.trust_root, world.clock).verify(
        DIGEST, bundle.to_bytes(), customer=customer
    )


def test_customer_in_policy_entitled_and_rolled_out_verifies(world: DistWorld) -> None:
    customer = _customer(inside_canary=False)
    result = _verify(world, world.full(customer), customer)
    assert result.distribution is not None
    assert result.distribution.rule == "entitled"
    assert result.distribution.rollout.startswith("complete")
    assert result.to_dict()["distribution"]["customer"] == customer


def test_bundle_with_the_policy_stripped_is_refused(world: DistWorld) -> None:
    customer = _customer(inside_canary=False)
    with pytest.raises(PolicyMissingError, match="no distribution policy"):
        _verify(world, world.full(customer, with_policy=False), customer)


def test_release_whose_rollout_is_halted_is_refused(world: DistWorld) -> None:
    customer = _customer(inside_canary=True)  # the canary already had it, then it halted
    events = (("started", "canary"), ("halted", "canary"))
    with pytest.raises(RolloutHaltedError, match="halted in ring canary"):
        _verify(world, world.full(customer, events), customer)


def test_customer_outside_the_open_ring_is_refused(world: DistWorld) -> None:
    customer = _customer(inside_canary=False)
    with pytest.raises(RolloutRingError, match="not in it yet"):
        _verify(world, world.full(customer, (("started", "canary"),)), customer)
    inside = _customer(inside_canary=True)
    world2 = DistWorld(world.tmp)
    assert _verify(world2, world2.full(inside, (("started", "canary"),)), inside).distribution


def test_rollout_transition_signed_by_the_vendor_is_refused(world: DistWorld) -> None:
    customer = _customer(inside_canary=False)
    bundle = world.full(customer, rollout_signer=world.vendor)
    with pytest.raises(RolloutSignatureError, match="not signed by the rollout role"):
        _verify(world, bundle, customer)


def test_bundle_with_the_rollout_stripped_is_refused(world: DistWorld) -> None:
    customer = _customer(inside_canary=False)
    bundle = replace(world.full(customer), rollout=())
    with pytest.raises(RolloutMissingError):
        _verify(world, bundle, customer)


def test_entitlement_of_another_customer_is_refused(world: DistWorld) -> None:
    """``?customer=cust-324`` style: a bundle made with another customer's entitlement."""
    victim, other = _customer(inside_canary=False), "cust-324"
    bundle = world.full(victim, entitlement=world.entitlement(other))
    with pytest.raises(EntitlementError, match="another customer"):
        _verify(world, bundle, victim)


def test_forged_entitlement_opening_is_refused(world: DistWorld) -> None:
    """The logged commitment binds: an opening edited to another jurisdiction fails."""
    customer = _customer(inside_canary=False)
    env, opening = world.entitlement(customer, jurisdiction="US")
    forged = {**opening, "entitlement": {**opening["entitlement"], "jurisdiction": "DE"}}
    us_cutoff = world.policy(us_updates_until=world.moment(-1))
    bundle = world.full(customer, policy=us_cutoff, entitlement=(env, forged))
    with pytest.raises(EntitlementError, match="does not open"):
        _verify(world, bundle, customer)


def test_entitlement_not_signed_by_the_vendor_is_refused(world: DistWorld) -> None:
    customer = _customer(inside_canary=False)
    ent = Entitlement(customer, "DE", "av", world.moment(-1), world.moment(9))
    opening = new_opening(ent)
    env = sign_entitlement(opening, [Signer.generate("reseller")])
    bundle = world.full(customer, entitlement=(env, opening.to_dict()))
    with pytest.raises(EntitlementError, match="not signed by the vendors"):
        _verify(world, bundle, customer)


def test_update_after_the_legal_cutoff_is_refused(world: DistWorld) -> None:
    customer = _customer(inside_canary=False)
    bundle = world.full(
        customer,
        policy=world.policy(us_updates_until=world.moment(-1)),
        entitlement=world.entitlement(customer, jurisdiction="US"),
    )
    with pytest.raises(DistributionDeniedError, match="no-updates"):
        _verify(world, bundle, customer)


def test_logged_entitlement_does_not_publish_the_customer(world: DistWorld) -> None:
    """Issue 12 case 11: the public log holds a salted commitment, not who the customer is."""
    env, opening = world.entitlement("us-hospital", jurisdiction="US")
    logged = env.to_bytes() + env.payload
    device_key = opening["entitlement"]["client_keys"][0]
    for secret in (b"us-hospital", b"US", device_key.encode(), b"device-7f3a"):
        assert secret not in logged
    # The same entitlement committed twice gives unrelated commitments (fresh salt).
    again, _ = world.entitlement("us-hospital", jurisdiction="US")
    assert again.payload != env.payload

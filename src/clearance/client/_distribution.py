"""Distribution checked offline (``verify --customer``): policy, entitlement, rollout.

Run after the release, its verdicts and the checkpoint are proven.  With a
customer named, the bundle must carry

* the distribution policy (signed by the policy role and logged; checked by the
  verifier) -- a bundle with the policy stripped is refused
  (:class:`PolicyMissingError`) whenever the trust root has a policy role;
* the customer's entitlement: a vendor-signed, logged commitment and its opening
  (:mod:`clearance.policy.commitment`), which must name this customer and product;
* the release's rollout transitions, signed by the trust root's ``rollout`` role
  and logged, when the trust root has one.

Then :func:`clearance.policy.decide` must allow the delivery at the verifier's
clock, and the rollout (replayed from the transitions) must be neither halted
nor short of the customer's ring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clearance.attest.errors import EnvelopeSignatureError
from clearance.attest.release import Release
from clearance.attest.statement import statement_of
from clearance.attest.trust_root import TrustRoot
from clearance.client.bundle import Bundle, LoggedEntry
from clearance.client.errors import (
    DistributionDeniedError,
    EntitlementError,
    PolicyError,
    PolicyMissingError,
    RolloutHaltedError,
    RolloutMissingError,
    RolloutRingError,
    RolloutSignatureError,
    VerificationError,
)
from clearance.errors import BadInput
from clearance.policy import (
    ENTITLEMENT_PREDICATE_TYPE,
    POLICY_PREDICATE_TYPE,
    DistributionPolicy,
    Entitlement,
    LoggedPolicy,
    decide,
)
from clearance.policy.commitment import (
    CommitmentMismatchError,
    EntitlementOpening,
    logged_commitment,
    open_commitment,
)
from clearance.policy.rollout import customer_bucket
from clearance.policy.rollout_statements import HALTED, SignedTransition, replay

#: Checks that an entry is logged under the bundle's checkpoint (the verifier's own check).
CheckLogged = Callable[[LoggedEntry, str, type[VerificationError]], None]


@dataclass(frozen=True)
class DistributionResult:
    customer: str
    rule: str
    reason: str
    policy_log_index: int | None
    entitlement_log_index: int
    rollout: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer": self.customer,
            "rule": self.rule,
            "reason": self.reason,
            "policy_log_index": self.policy_log_index,
            "entitlement_log_index": self.entitlement_log_index,
            "rollout": self.rollout,
        }


def check_distribution(
    root: TrustRoot,
    bundle: Bundle,
    release: Release,
    release_sha256: str,
    customer: str,
    now: float,
    check_logged: CheckLogged,
) -> DistributionResult:
    moment = datetime.fromtimestamp(int(now), UTC)
    policy = _policy(root, bundle)
    entitlement, ent_index = _entitlement(root, bundle, release, customer, check_logged)
    decision = decide(policy, [entitlement], customer, release.product, moment)
    if not decision.allowed:
        where = (
            f" (policy {decision.policy_name!r}, log index {decision.policy_log_index})"
            if decision.policy_log_index is not None
            else ""
        )
        raise DistributionDeniedError(f"{decision.rule}: {decision.reason}{where}")
    rollout = _rollout(root, bundle, release_sha256, customer, check_logged)
    return DistributionResult(
        customer,
        decision.rule,
        decision.reason,
        decision.policy_log_index,
        ent_index,
        rollout,
    )


def _policy(root: TrustRoot, bundle: Bundle) -> LoggedPolicy | None:
    if bundle.policy is None:
        if root.policy.threshold:
            raise PolicyMissingError(
                "the bundle carries no distribution policy: the policy in force cannot be "
                "evaluated offline"
            )
        return None
    try:
        statement = statement_of(bundle.policy.parsed_envelope("policy"))
        if statement.predicate_type != POLICY_PREDICATE_TYPE:
            raise PolicyError(f"policy entry is a {statement.predicate_type!r} statement")
        return LoggedPolicy(DistributionPolicy.from_dict(statement.predicate), bundle.policy.index)
    except BadInput as exc:
        raise PolicyError(f"policy: {exc}") from None


def _entitlement(
    root: TrustRoot, bundle: Bundle, release: Release, customer: str, check_logged: CheckLogged
) -> tuple[Entitlement, int]:
    entry = bundle.entitlement
    if entry is None:
        raise EntitlementError(f"the bundle carries no entitlement for customer {customer!r}")
    env = entry.parsed_envelope("entitlement")
    try:
        env.verify(root.vendors.keys, root.vendors.threshold)
    except EnvelopeSignatureError as exc:
        raise EntitlementError(f"entitlement is not signed by the vendors: {exc}") from None
    check_logged(entry, "entitlement", EntitlementError)
    try:
        statement = statement_of(env, ENTITLEMENT_PREDICATE_TYPE)
        if logged_commitment(statement.predicate) is None:
            entitlement = Entitlement.from_dict(statement.predicate)  # legacy: in clear
        else:
            if bundle.entitlement_opening is None:
                raise EntitlementError("the bundle carries no opening of the entitlement")
            opening = EntitlementOpening.from_dict(bundle.entitlement_opening)
            entitlement = open_commitment(statement.predicate, opening)
    except BadInput as exc:
        raise EntitlementError(f"entitlement: {exc}") from None
    except CommitmentMismatchError as exc:
        raise EntitlementError(str(exc)) from None
    if entitlement.customer != customer:
        raise EntitlementError(f"the entitlement is for another customer, not {customer!r}")
    if entitlement.product != release.product:
        raise EntitlementError(
            f"the entitlement is for product {entitlement.product!r}, not {release.product!r}"
        )
    return entitlement, entry.index


def _rollout(
    root: TrustRoot,
    bundle: Bundle,
    release_sha256: str,
    customer: str,
    check_logged: CheckLogged,
) -> str:
    role = root.rollout
    if role.threshold == 0:
        return "unchecked: the trust root names no rollout role"
    if not bundle.rollout:
        raise RolloutMissingError("the bundle carries no rollout transition for the release")
    transitions: list[tuple[int, SignedTransition]] = []
    for i, entry in enumerate(bundle.rollout):
        what = f"rollout[{i}]"
        env = entry.parsed_envelope(what)
        try:
            env.verify(role.keys, role.threshold)
        except EnvelopeSignatureError as exc:
            raise RolloutSignatureError(
                f"{what} is not signed by the rollout role: {exc}"
            ) from None
        check_logged(entry, what, RolloutSignatureError)
        try:
            transition = SignedTransition.from_envelope(env)
        except BadInput as exc:
            raise RolloutSignatureError(f"{what}: {exc}") from None
        if transition.release != release_sha256:
            raise RolloutSignatureError(f"{what} is for release {transition.release}")
        transitions.append((entry.index, transition))
    transitions.sort(key=lambda t: t[0])
    try:
        view = replay([t for _, t in transitions])
    except BadInput as exc:
        raise RolloutSignatureError(f"rollout transitions: {exc}") from None
    last_index = transitions[-1][0]
    if view.status == HALTED:
        raise RolloutHaltedError(
            f"the rollout is halted in ring {view.ring.name} (log index {last_index}): "
            f"{view.last.reason}"
        )
    if customer_bucket(customer) >= view.ring.percent:
        raise RolloutRingError(
            f"the rollout has reached ring {view.ring.name} ({view.ring.percent:g} % of "
            f"customers, log index {last_index}); customer {customer!r} is not in it yet"
        )
    return f"{view.status} in ring {view.ring.name} (log index {last_index})"

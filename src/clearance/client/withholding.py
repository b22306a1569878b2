"""Detecting an update withheld without a logged reason (client side, against the log).

The client asks the gateway for the newest release of its channel
(``/api/v1/updates/latest``), then reads the public log itself (tiles checked
against the log-signed checkpoint) and recomputes, from logged data only:

* the newest release of the channel approved by the trust root's inspector
  threshold;
* when the gateway withholds it, whether the reason it gives holds: a policy
  refusal is recomputed with :func:`clearance.policy.decide` from the logged
  policy and the customer's logged entitlements; a rollout reason must match
  the logged rollout transitions of that release.

Anything else (a newer approved release the gateway does not mention, a reason
the log does not support) is an unexplained withholding: :class:`WithheldWithoutReason`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clearance._untrusted import load_json
from clearance.attest import Envelope, Release, Verdict, admission, statement_of
from clearance.attest.admission import VerdictVote, evaluate_verdicts
from clearance.attest.trust_root import TrustRoot
from clearance.errors import BadInput, Refused
from clearance.gateway.client import GatewayClient
from clearance.gateway.rollout import TRANSITION_TYPE, customer_bucket
from clearance.log import LogReader
from clearance.policy import (
    DistributionPolicy,
    Entitlement,
    LoggedPolicy,
    decide,
)
from clearance.policy._time import parse_time
from clearance.policy.commitment import EntitlementOpening, logged_commitment, open_commitment


class WithheldWithoutReason(Refused):
    """The gateway withholds an approved release and the log does not explain why."""


@dataclass
class _LogView:
    releases: dict[str, tuple[int, Release]] = field(default_factory=dict)
    votes: dict[str, list[VerdictVote]] = field(default_factory=dict)
    policy: LoggedPolicy | None = None
    entitlements: list[Entitlement] = field(default_factory=list)
    transitions: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)


@dataclass(frozen=True)
class WithholdingReport:
    product: str
    channel: str
    customer: str
    tree_size: int
    newest_approved_in_log: str | None
    offered: str | None
    withheld: bool
    explained_by: str | None  # "policy@<index>" or "rollout@<index>" when withheld

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "channel": self.channel,
            "customer": self.customer,
            "tree_size": self.tree_size,
            "newest_approved_in_log": self.newest_approved_in_log,
            "offered": self.offered,
            "withheld": self.withheld,
            "explained_by": self.explained_by,
        }


def _read_log(
    tiles: LogReader,
    size: int,
    root: TrustRoot,
    customer: str,
    openings: Sequence[EntitlementOpening] = (),
) -> _LogView:
    view = _LogView()
    by_commitment = {o.commitment: o for o in openings}
    for index, data in enumerate(tiles.entries(0, size, size)):
        try:
            raw = load_json(data, f"log entry {index}")
        except BadInput:
            continue
        if isinstance(raw, dict) and raw.get("_type") == TRANSITION_TYPE:
            view.transitions.setdefault(str(raw.get("release")), []).append((index, raw))
            continue
        try:
            envelope = Envelope.from_dict(raw)
            # Who must sign what: the one admission rule (distinct key ids, never names).
            kind, key_ids = admission.check_signers(envelope, root)
            statement = statement_of(envelope)
            if kind == admission.KIND_RELEASE:
                view.releases[envelope.sha256] = (index, Release.from_statement(statement))
            elif kind == admission.KIND_VERDICT:
                verdict = Verdict.from_statement(statement)
                view.votes.setdefault(verdict.release_sha256, []).append(
                    VerdictVote(index, verdict.decision, key_ids)
                )
            elif kind == admission.KIND_POLICY:
                view.policy = LoggedPolicy(DistributionPolicy.from_dict(statement.predicate), index)
            elif kind == admission.KIND_ENTITLEMENT:
                commitment = logged_commitment(statement.predicate)
                if commitment is None:  # legacy: in clear
                    ent = Entitlement.from_dict(statement.predicate)
                elif commitment in by_commitment:  # one the customer holds the opening of
                    ent = open_commitment(statement.predicate, by_commitment[commitment])
                else:
                    continue
                if ent.customer == customer:
                    view.entitlements.append(ent)
            elif kind == admission.KIND_TRANSITION:
                # signed by the rollout role: checked by the admission rule above
                record = {"_type": TRANSITION_TYPE, **statement.predicate}
                view.transitions.setdefault(str(record.get("release")), []).append((index, record))
        except (BadInput, Refused):
            continue  # not a valid statement of a trusted party: it explains nothing
    return view


def check_withholding(
    client: GatewayClient,
    trust_root: TrustRoot,
    product: str,
    channel: str,
    customer: str,
    openings: Sequence[EntitlementOpening] = (),
) -> WithholdingReport:
    """Ask the gateway, check against the log; raise :class:`WithheldWithoutReason`.
    ``openings``: the customer's own openings of its logged (committed) entitlements."""
    answer = client.latest(product, channel, customer)
    tiles = client.log(trust_root.log_key, trust_root.log_origin)
    checkpoint, _ = tiles.checkpoint()
    view = _read_log(tiles, checkpoint.size, trust_root, customer, openings)
    approved = sorted(
        (index, sha)
        for sha, (index, release) in view.releases.items()
        if release.product == product
        and release.channel == channel
        and evaluate_verdicts(view.votes.get(sha, ()), trust_root.inspectors).approved
    )
    newest = approved[-1][1] if approved else None
    offered = (answer.get("offered") or {}).get("sha256")

    def report(explained_by: str | None) -> WithholdingReport:
        return WithholdingReport(
            product,
            channel,
            customer,
            checkpoint.size,
            newest,
            offered,
            newest is not None and offered != newest,
            explained_by,
        )

    if newest is None or offered == newest:
        return report(None)
    claimed = (answer.get("newest_approved") or {}).get("sha256")
    if claimed != newest:
        raise WithheldWithoutReason(
            f"the log's newest approved {product}/{channel} release is {newest}, but the "
            f"gateway names {claimed} as the newest: an approved update is hidden"
        )
    reason = answer.get("reason") or {}
    if reason.get("by") == "policy":
        moment = parse_time(answer.get("at"), "gateway answer time")
        recomputed = decide(view.policy, view.entitlements, customer, product, moment)
        if recomputed.allowed:
            raise WithheldWithoutReason(
                f"release {newest} is withheld from {customer} for a policy reason, but the "
                f"logged policy and entitlements allow it ({recomputed.reason})"
            )
        if recomputed.policy_log_index is not None:
            return report(f"policy@{recomputed.policy_log_index}")
        return report(f"entitlement: {recomputed.rule}")
    if reason.get("by") == "rollout":
        events = view.transitions.get(newest, [])
        if not events:
            raise WithheldWithoutReason(
                f"release {newest} is withheld for its rollout, but no rollout of it is logged"
            )
        last_index, last = events[-1]
        if reason.get("rule") == "halted" and last.get("event") == "halted":
            return report(f"rollout@{last_index}")
        if reason.get("rule") == "ring" and last.get("event") in ("started", "advanced", "resumed"):
            rings = events[0][1].get("evidence", {}).get("rings", [])
            percent = next((r["percent"] for r in rings if r.get("name") == last.get("ring")), None)
            if percent is not None and customer_bucket(customer) >= float(percent):
                return report(f"rollout@{last_index}")
        raise WithheldWithoutReason(
            f"release {newest} is withheld from {customer} for its rollout "
            f"({reason.get('reason')}), but the logged rollout does not say so"
        )
    raise WithheldWithoutReason(
        f"release {newest} is approved in the log but withheld from {customer} without a "
        "logged reason"
    )

"""What the gateway checks before logging a submission: role, signature, semantics.

Write path of a submission: size limit -> DSSE envelope -> the caller's
token role must match the statement kind -> signatures checked against the
trust root's keys for that role -> semantic checks (a vendor only for its
own products, a verdict only for a logged release, ...).  The version rule
for releases is :meth:`SubmissionChecks.check_version`, which the gateway
calls under the channel's lock, just before appending.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clearance.attest import ChannelReset, Release, Revocation, Verdict, admission
from clearance.attest.admission import VersionNotIncreasingError
from clearance.attest.dsse import key_id
from clearance.attest.errors import EnvelopeSignatureError
from clearance.attest.report import ReportClaim
from clearance.attest.trust_root import TrustRoot
from clearance.attest.version import Version
from clearance.errors import BadInput
from clearance.gateway import rollout
from clearance.gateway._entries import (
    ADMISSION_KIND,
    KIND_CHANNEL_RESET,
    KIND_ENTITLEMENT,
    KIND_HEALTH,
    KIND_POLICY,
    KIND_RELEASE,
    KIND_REPORT,
    KIND_REVOCATION,
    KIND_ROLLOUT_DECISION,
    KIND_VERDICT,
    ParsedEntry,
)
from clearance.gateway.config import GatewayConfig
from clearance.gateway.customers import Device
from clearance.gateway.errors import GatewayInputError, GatewayRefused
from clearance.gateway.states import ReleaseState
from clearance.gateway.store import MetadataStore
from clearance.index import LogIndex
from clearance.keys import Verifier
from clearance.policy import DistributionPolicy, Entitlement
from clearance.policy.commitment import (
    CommitmentMismatchError,
    EntitlementOpening,
    logged_commitment,
    open_commitment,
)
from clearance.policy.rollout_statements import HealthReport

#: Which token role may submit which statement kind.
ROLE_FOR_KIND = {
    KIND_RELEASE: ("vendor",),
    KIND_ENTITLEMENT: ("vendor",),
    KIND_VERDICT: ("inspector",),
    KIND_POLICY: ("policy",),
    KIND_ROLLOUT_DECISION: ("inspector", "policy"),
    KIND_HEALTH: ("client",),
    KIND_REVOCATION: ("policy",),
    KIND_CHANNEL_RESET: ("policy",),
    # A signed report: the policy authority (the regulator) or an inspector (an auditor).
    KIND_REPORT: ("inspector", "policy"),
}


@dataclass(frozen=True)
class HealthVote:
    release: str
    ring: str
    status: str
    customer: str


def str_field(data: dict[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise GatewayInputError(f"{what}: '{key}' must be a non-empty string")
    return value


class SubmissionChecks:
    """The gateway's rules for accepting a signed submission, over its config and index."""

    def __init__(
        self,
        config: GatewayConfig,
        trust_root: TrustRoot,
        store: MetadataStore,
        index: LogIndex | None = None,
    ) -> None:
        self._config = config
        self._trust_root = trust_root
        self._store = store
        #: The log's verifiable index: revoked keys and the reset-aware version bar.
        self._index = index

    def check_role(self, kind: str, role: str | None) -> None:
        if kind == KIND_HEALTH:
            return  # a health report authenticates by its device signature, not a token
        allowed = ROLE_FOR_KIND[kind]
        if role not in allowed:
            raise GatewayRefused(
                f"a {kind} must be submitted with a {' or '.join(allowed)} token"
                + ("" if role else " (no valid API token given)")
            )

    def check_signature(self, parsed: ParsedEntry) -> list[Verifier]:
        """The distinct keys that admit the statement under the one admission rule
        (:mod:`clearance.attest.admission`: the role's threshold of distinct key ids, keys
        revoked in the log left out, a forged signature refused)."""
        assert parsed.envelope is not None
        kind = ADMISSION_KIND.get(parsed.kind)
        if kind is None or kind == KIND_HEALTH:  # health: device keys, not a trust-root role
            raise GatewayRefused(f"{parsed.kind} submissions are not signed by a trust-root role")
        rule = admission.signer_rule(kind, self._trust_root, revoked_keys=self._revoked())
        try:
            ids = admission.require_signers(parsed.envelope, rule)
        except admission.UnsignedSubmissionError as exc:
            raise GatewayRefused(f"{parsed.kind} envelope: {exc}") from None
        return [k for k in rule.keys if key_id(k) in ids]

    def _revoked(self) -> frozenset[str]:
        return frozenset() if self._index is None else self._index.revoked_keys

    def revoked_keys(self) -> set[str]:
        """Key ids the policy authority revoked (logged revocations of keys)."""
        return {
            str(summary.get("key"))
            for _, _, summary, _ in self._store.entries_of_kind(KIND_REVOCATION)
            if summary.get("target") == "key"
        }

    def check_version(self, release: Release) -> None:
        """Higher than every release of its product and channel logged since the channel's
        last reset, and than the reset's floor (the admission rule's version bar)."""
        if self._index is not None:
            admission.check_version(
                release, self._index.channel_bar(release.product, release.channel)
            )
            return
        new = release.parsed_version
        after = -1
        for index, _, summary, _ in self._store.entries_of_kind(KIND_CHANNEL_RESET):
            if (summary.get("product"), summary.get("channel")) == (
                release.product,
                release.channel,
            ) and index > after:
                after = index
                floor = str(summary.get("floor"))
                if not new > Version.parse(floor):
                    raise VersionNotIncreasingError(
                        f"{release.product} {release.channel}: version {release.version} is not "
                        f"higher than the floor {floor} of the channel reset at log index {index}"
                    )
        for row in self._store.channel_releases(release.product, release.channel):
            if row.log_index < after:
                continue  # logged before the channel's last reset
            if not new > Version.parse(row.version):
                raise VersionNotIncreasingError(
                    f"{release.product} {release.channel}: version {release.version} is not "
                    f"higher than the logged {row.version} (log index {row.log_index})"
                )

    def entitlement_of(
        self, parsed: ParsedEntry, opening: Mapping[str, Any] | None
    ) -> tuple[Entitlement, EntitlementOpening | None]:
        """The entitlement a submission logs: in clear (legacy), or a commitment that
        ``opening`` must open (the opening is kept privately, never logged)."""
        statement = parsed.statement
        assert statement is not None
        commitment = logged_commitment(statement.predicate)
        if commitment is None:
            return Entitlement.from_dict(statement.predicate), None
        if opening is None:
            raise GatewayInputError(
                "a committed entitlement needs its opening (POST /api/v1/entitlements with "
                '{"envelope": ..., "opening": ...})'
            )
        opened = EntitlementOpening.from_dict(opening)
        try:
            return open_commitment(statement.predicate, opened), opened
        except CommitmentMismatchError as exc:
            raise GatewayRefused(str(exc)) from None

    def check_semantics(
        self,
        parsed: ParsedEntry,
        signers: Sequence[Verifier],
        opening: Mapping[str, Any] | None = None,
    ) -> None:
        statement = parsed.statement
        assert statement is not None
        products = self._config.vendor_products
        if parsed.kind == KIND_RELEASE:
            release = Release.from_statement(statement)
            if not any(release.product in products.get(v.name, ()) for v in signers):
                raise GatewayRefused(
                    f"vendor key {', '.join(v.name for v in signers)} may not release "
                    f"product {release.product!r}"
                )
        elif parsed.kind == KIND_ENTITLEMENT:
            ent, _ = self.entitlement_of(parsed, opening)
            if not any(ent.product in products.get(v.name, ()) for v in signers):
                raise GatewayRefused(f"this vendor does not sell product {ent.product!r}")
        elif parsed.kind == KIND_VERDICT:
            verdict = Verdict.from_statement(statement)
            row = self._store.release(verdict.release_sha256)
            if row is None:
                raise GatewayRefused(
                    f"verdict names release {verdict.release_sha256}, which is not in the log"
                )
            if (row.product, row.version) != (verdict.product, verdict.version):
                raise GatewayRefused("verdict's product/version do not match the release it names")
        elif parsed.kind == KIND_POLICY:
            DistributionPolicy.from_dict(statement.predicate)
        elif parsed.kind == KIND_REVOCATION:
            revocation = Revocation.from_statement(statement)
            sha = revocation.release_sha256
            if sha is not None and self._store.release(sha) is None:
                raise GatewayRefused(f"revocation names release {sha}, which is not in the log")
        elif parsed.kind == KIND_CHANNEL_RESET:
            ChannelReset.from_statement(statement)
        elif parsed.kind == KIND_REPORT:
            claim = ReportClaim.from_statement(statement)
            if claim.origin != self._trust_root.log_origin:
                raise GatewayRefused(
                    f"the report covers log {claim.origin!r}, not this log "
                    f"({self._trust_root.log_origin!r})"
                )
        elif parsed.kind == KIND_ROLLOUT_DECISION:
            release_sha = str_field(statement.predicate, "release", "rollout decision")
            action = statement.predicate.get("action")
            if action != "resume":
                raise GatewayInputError(f"rollout decision action {action!r} is not 'resume'")
            state = self._store.rollout(release_sha)
            if state is None or state["status"] != rollout.HALTED:
                raise GatewayRefused(f"rollout of {release_sha} is not halted")
            row = self._store.release(release_sha)
            if row is None or row.state != ReleaseState.APPROVED:
                raise GatewayRefused(
                    f"release {release_sha} is {row.state if row else 'unknown'}: "
                    "only an approved release can resume its rollout"
                )

    def health_report(self, parsed: ParsedEntry, devices: Mapping[str, Device]) -> HealthVote:
        """Check a health report: fields, no customer named (it is logged), signed by one
        device key an entitlement names, for a ring that customer is in and that is open."""
        statement = parsed.statement
        assert statement is not None and parsed.envelope is not None
        p = statement.predicate
        if "customer" in p:
            raise GatewayInputError(
                "health reports are logged: they must not name the customer (the device key "
                "that signs says who reports)"
            )
        try:
            report = HealthReport.from_predicate(p)
        except BadInput as exc:
            raise GatewayInputError(f"health report: {exc}") from None
        keyids = {s.keyid for s in parsed.envelope.signatures}
        if len(keyids) != 1:
            raise GatewayRefused("a health report is signed by exactly one device key")
        device = devices.get(next(iter(keyids)))
        if device is None:
            raise GatewayRefused("health report: its key is named by no customer's entitlement")
        try:
            parsed.envelope.verify([device.key], 1)
        except EnvelopeSignatureError as exc:
            raise GatewayRefused(f"health report: {exc}") from None
        data = self._store.rollout(report.release)
        if data is None:
            raise GatewayRefused(f"release {report.release} is not being rolled out")
        state = rollout.RolloutState.from_dict(data)
        bucket = rollout.customer_bucket(device.customer)
        home = next(i for i, r in enumerate(state.rings) if bucket < r.percent)
        if state.rings[home].name != report.ring:
            raise GatewayRefused(
                f"the reporting device's customer is in ring {state.rings[home].name}, "
                f"not {report.ring}"
            )
        if home > state.ring_index:
            raise GatewayRefused(f"release {report.release} was not offered to ring {report.ring}")
        return HealthVote(report.release, report.ring, report.status, device.customer)

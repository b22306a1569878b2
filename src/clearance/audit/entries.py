"""Reading one log entry: what it is, and whether the trust root's keys signed it.

Entries are DSSE envelopes holding in-toto statements (every kind the admission rule
names: release, verdict, policy, rollout, health, report, ...), DSSE trust-root
rotations, or plain JSON written by the gateway (rollout transitions of older gateways,
health aggregates).  Which predicate type is which kind is the admission rule's map
(:data:`clearance.attest.admission.KIND_OF_PREDICATE`).  Signature rules:

the admission rule of :mod:`clearance.attest.admission` (the same function
``submit --log`` and the gateway call: distinct key ids, never names), and
a trust-root rotation must pass :func:`clearance.attest.accept_rotation`.
Health aggregates (plain JSON the gateway writes) and health reports: operational
records; no trust-root key is required, but a signature that claims a trust-root key
and does not verify is a forgery.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from clearance._untrusted import UntrustedInputError, load_json
from clearance.attest import (
    TRUST_ROOT_PAYLOAD_TYPE,
    Envelope,
    Release,
    TrustRoot,
    Verdict,
    accept_rotation,
    admission,
    statement_of,
)
from clearance.attest.errors import EnvelopeSignatureError, RotationRefused
from clearance.attest.report import ReportClaim
from clearance.attest.statement import HEALTH_AGGREGATE_TYPE
from clearance.audit.rules import AuditFinding
from clearance.errors import BadInput
from clearance.keys import Verifier

ROLLOUT_TRANSITION_TYPE = "https://clearance.dev/rollout-transition/v1"

KIND_RELEASE = admission.KIND_RELEASE
KIND_VERDICT = admission.KIND_VERDICT
KIND_POLICY = admission.KIND_POLICY
#: A rollout transition (signed statement or an older gateway's plain JSON).
KIND_ROLLOUT = "rollout"
#: A signed resume decision (the admission rule's "rollout").
KIND_ROLLOUT_DECISION = "rollout-decision"
KIND_ENTITLEMENT = admission.KIND_ENTITLEMENT
KIND_HEALTH = admission.KIND_HEALTH
KIND_HEALTH_AGGREGATE = "health-aggregate"
KIND_TRUST_ROOT = admission.KIND_TRUST_ROOT
KIND_REVOCATION = admission.KIND_REVOCATION
KIND_CHANNEL_RESET = admission.KIND_CHANNEL_RESET
KIND_REPORT = admission.KIND_REPORT
KIND_UNKNOWN = "unknown"

#: Where the auditor's name for a kind differs from the admission rule's (its reports and
#: state have used these names since the first version).
_AUDIT_NAME = {
    admission.KIND_ROLLOUT: KIND_ROLLOUT_DECISION,
    admission.KIND_TRANSITION: KIND_ROLLOUT,
}


def audit_kind(admission_kind: str) -> str:
    """The auditor's name for one of the admission rule's kinds."""
    return _AUDIT_NAME.get(admission_kind, admission_kind)


#: Audited kind by predicate type: the admission rule's map, under the auditor's names.
_KIND_OF_PREDICATE = {
    predicate: audit_kind(kind) for predicate, kind in admission.KIND_OF_PREDICATE.items()
}
#: Admission kind of each audited kind whose signers a trust-root role names (health
#: reports are signed by client keys the trust root does not hold).
_ADMISSION_KIND = {
    audit_kind(kind): kind
    for kind in admission.KIND_OF_PREDICATE.values()
    if kind != admission.KIND_HEALTH
}


@dataclass(frozen=True)
class EntryView:
    """One examined entry: its kind, its typed content, and what is wrong with it."""

    index: int
    kind: str
    sha256: str
    envelope: Envelope | None = None
    release: Release | None = None
    verdict: Verdict | None = None
    #: Rollout record (plain JSON transition or rollout predicate) or policy predicate.
    record: Mapping[str, Any] = field(default_factory=dict)
    #: A rotated trust root this entry carries, once accepted.
    new_trust_root: TrustRoot | None = None
    findings: tuple[AuditFinding, ...] = ()
    #: The envelope digest verdicts use (canonical envelope bytes), when it is an envelope.
    envelope_sha256: str | None = None
    #: What a signed report claims to cover, for a report entry.
    report: ReportClaim | None = None

    @property
    def signature_ok(self) -> bool:
        return not any(f.rule_id == "audit.bad-signature" for f in self.findings)


def key_roles(root: TrustRoot) -> dict[str, tuple[Verifier, ...]]:
    """Every key of ``root`` by the role that holds it (a key may be in several roles)."""
    return {
        "log": (root.log_key,),
        "vendor": root.vendors.keys,
        "inspector": root.inspectors.keys,
        "policy": root.policy.keys,
        "rollout": root.rollout.keys,
        "root": () if root.root is None else root.root.keys,
        "witness": root.witnesses.keys,
    }


def _all_keys(root: TrustRoot) -> list[Verifier]:
    keys = [root.log_key]
    for role in (root.vendors, root.inspectors, root.policy, root.rollout, root.root):
        if role is not None:
            keys.extend(role.keys)
    return keys


def _envelope_digest(data: bytes, obj: object, envelope: Envelope) -> str:
    """The digest verdicts use: SHA-256 of the envelope's RFC 8785 bytes.  Entries are logged
    canonical, so the entry digest is it; checking that with a plain sorted, compact
    ``json.dumps`` (the same bytes for an envelope's ASCII keys and string values) avoids
    re-serialising every entry with the slower RFC 8785 encoder."""
    if data == json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode():
        return hashlib.sha256(data).hexdigest()
    return envelope.sha256


def examine_entry(index: int, data: bytes, root: TrustRoot) -> EntryView:
    """Classify entry ``index`` and check its signatures against ``root``."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        obj = load_json(data, f"entry {index}")
    except UntrustedInputError as exc:
        return _unknown(index, digest, str(exc))
    if isinstance(obj, dict) and obj.get("_type") == ROLLOUT_TRANSITION_TYPE:
        view = EntryView(index, KIND_ROLLOUT, digest, record=obj)
        if root.rollout.threshold:  # the trust root names who signs transitions
            finding = AuditFinding(
                "audit.bad-signature",
                f"entry {index} (rollout transition): not a statement signed by the rollout "
                "role the trust root names",
                index,
                {"kind": KIND_ROLLOUT, "sha256": digest},
            )
            view = replace(view, findings=(finding,))
        return view
    if isinstance(obj, dict) and obj.get("_type") == HEALTH_AGGREGATE_TYPE:
        # Written by the gateway, unsigned: the log's checkpoint is what vouches for it;
        # the device-signed reports it counts are retrievable from the gateway.
        return EntryView(index, KIND_HEALTH_AGGREGATE, digest, record=obj)
    try:
        envelope = Envelope.from_dict(obj)
    except BadInput as exc:
        return _unknown(index, digest, f"not a DSSE envelope: {exc}")
    if envelope.payload_type == TRUST_ROOT_PAYLOAD_TYPE:
        return _rotation(index, digest, envelope, root)
    try:
        statement = statement_of(envelope)
        kind = _KIND_OF_PREDICATE.get(statement.predicate_type)
        if kind is None:
            return _unknown(index, digest, f"unknown predicate type {statement.predicate_type!r}")
        release = Release.from_statement(statement) if kind == KIND_RELEASE else None
        verdict = Verdict.from_statement(statement) if kind == KIND_VERDICT else None
        report = ReportClaim.from_statement(statement) if kind == KIND_REPORT else None
    except BadInput as exc:
        return _unknown(index, digest, f"malformed statement: {exc}")
    view = EntryView(
        index,
        kind,
        digest,
        envelope=envelope,
        release=release,
        verdict=verdict,
        record=statement.predicate if kind in (KIND_POLICY, KIND_ROLLOUT, KIND_HEALTH) else {},
        envelope_sha256=_envelope_digest(data, obj, envelope) if kind == KIND_RELEASE else None,
        report=report,
    )
    problem = _signature_problem(kind, envelope, root)
    if problem is None:
        return view
    finding = AuditFinding(
        "audit.bad-signature",
        f"entry {index} ({kind}): {problem}",
        index,
        {"kind": kind, "sha256": digest, "keyids": [s.keyid for s in envelope.signatures]},
    )
    return replace(view, findings=(finding,))


def _signature_problem(kind: str, envelope: Envelope, root: TrustRoot) -> str | None:
    """The admission rule's objection to this entry, if any (a forgery of any known key
    included); health reports are signed by client keys the trust root does not hold."""
    try:
        admission.valid_key_ids(envelope, _all_keys(root))
        admission_kind = _ADMISSION_KIND.get(kind)
        if admission_kind is not None:
            admission.require_signers(envelope, admission.signer_rule(admission_kind, root))
    except admission.UnsignedSubmissionError as exc:
        return str(exc)
    return None


def _rotation(index: int, digest: str, envelope: Envelope, root: TrustRoot) -> EntryView:
    try:
        new_root = accept_rotation(root, envelope)
    except (RotationRefused, EnvelopeSignatureError, BadInput) as exc:
        finding = AuditFinding(
            "audit.bad-signature",
            f"entry {index}: trust-root rotation refused: {exc}",
            index,
            {"kind": KIND_TRUST_ROOT, "sha256": digest},
        )
        return EntryView(index, KIND_TRUST_ROOT, digest, envelope=envelope, findings=(finding,))
    return EntryView(index, KIND_TRUST_ROOT, digest, envelope=envelope, new_trust_root=new_root)


def _unknown(index: int, digest: str, why: str) -> EntryView:
    finding = AuditFinding(
        "audit.entry-unrecognized", f"entry {index}: {why}", index, {"sha256": digest}
    )
    return EntryView(index, KIND_UNKNOWN, digest, findings=(finding,))

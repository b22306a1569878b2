"""What the regulator's report says, gathered from the public log only.

One replay by the auditor (:mod:`clearance.audit`, no re-inspection) gives both the audit
result and, through its entry observer, every entry already classified and
signature-checked; this module turns those entries into the report's facts:

- releases with a dated event (a verdict's ``inspectedAt``, a rollout transition's ``at``)
  in the period, with their verdicts, findings summaries and rollout transitions;
- every policy decision: each logged entitlement of a released product, decided with
  :func:`clearance.policy.decide` under the latest logged policy at the release's date;
- the withheld ones, with the logged rule, policy and its log index;
- equal treatment: per release, which jurisdictions received it; for each jurisdiction
  that did not while another did, the logged policy rule that explains it or a red flag;
- what was served: device-signed health reports (logged alone or inside a logged health
  aggregate) say which jurisdiction installed which release; :mod:`clearance.report.served`
  compares that with the policy's decisions and raises the red flags the recomputation
  alone cannot (a withheld release installed, an allowed one missing);
- each release's logged rollout health per ring (from the log, not a gateway's store);
- witness coverage of the checkpoint the report covers.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clearance.attest import TrustRoot, statement_of
from clearance.audit import AuditOptions, AuditReport, audit_log
from clearance.audit.auditor import cosigning_witnesses
from clearance.audit.entries import (
    KIND_ENTITLEMENT,
    KIND_HEALTH,
    KIND_HEALTH_AGGREGATE,
    KIND_POLICY,
    KIND_RELEASE,
    KIND_ROLLOUT,
    KIND_VERDICT,
    EntryView,
)
from clearance.errors import BadInput
from clearance.keys import Note
from clearance.log.checkpoint import Checkpoint
from clearance.log.tiles import TileSource
from clearance.policy import (
    DistributionPolicy,
    Entitlement,
    LoggedPolicy,
    decide,
)
from clearance.policy._time import parse_time
from clearance.policy.commitment import EntitlementOpening, logged_commitment, open_commitment
from clearance.report.rows import (
    DecisionRow,
    Period,
    ReleaseRow,
    TransitionRow,
    TreatmentRow,
    VerdictRow,
    WitnessRow,
)
from clearance.report.served import (
    AggregateFetcher,
    Devices,
    HealthEvidence,
    ServedEvidence,
    ServedRow,
    compare,
    served,
)


@dataclass
class ReportData:
    origin: str
    period: Period
    jurisdiction: str | None
    checkpoint: Checkpoint
    audit: AuditReport
    releases: list[ReleaseRow]
    undated: list[ReleaseRow]
    policies: list[LoggedPolicy]
    decisions: list[DecisionRow]
    treatment: list[TreatmentRow]
    jurisdictions: list[str]
    witnesses: list[WitnessRow]
    witness_threshold: int
    generated: datetime
    #: Log indices of entitlements the public log does not open (not decided here).
    unopened_entitlements: list[int] = field(default_factory=list)
    #: What was served (installs evidenced by device-signed health reports) vs the policy.
    served: list[ServedRow] = field(default_factory=list)
    served_evidence: ServedEvidence = field(default_factory=ServedEvidence)

    @property
    def withheld(self) -> list[DecisionRow]:
        return [d for d in self.decisions if not d.decision.allowed]

    @property
    def red_flags(self) -> list[TreatmentRow]:
        return [t for t in self.treatment if not t.explained]

    @property
    def served_flags(self) -> list[ServedRow]:
        return [t for t in self.served if not t.explained]


class _Collector:
    """The auditor's entry observer: keeps the entries the report needs."""

    def __init__(self, openings: Sequence[EntitlementOpening] = ()) -> None:
        #: The regulator's openings of committed entitlements, by commitment.
        self._openings = {o.commitment: o for o in openings}
        self.releases: dict[str, ReleaseRow] = {}
        self.ordered: list[ReleaseRow] = []
        self.policies: list[LoggedPolicy] = []
        self.entitlements: list[tuple[int, Entitlement]] = []
        #: Entitlement entries whose terms the public log does not show (e.g. committed).
        self.unopened: list[int] = []
        self.health = HealthEvidence()

    def __call__(self, view: EntryView, root: TrustRoot) -> None:
        if not view.signature_ok:
            return  # the audit section reports it; unsigned content is not a fact
        try:
            self._take(view)
        except BadInput:
            if view.kind == KIND_ENTITLEMENT:
                self.unopened.append(view.index)
            return  # otherwise a malformed predicate: the audit reports what it can

    def _take(self, view: EntryView) -> None:
        if view.kind == KIND_RELEASE and view.release is not None:
            rel = view.release
            row = ReleaseRow(
                view.index,
                view.envelope_sha256 or view.sha256,
                rel.product,
                rel.version,
                rel.channel,
            )
            self.ordered.append(row)
            for digest in {view.sha256, row.sha256}:
                self.releases[digest] = row
        elif view.kind == KIND_VERDICT and view.verdict is not None:
            v = view.verdict
            target = self.releases.get(v.release_sha256)
            if target is not None:
                target.verdicts.append(
                    VerdictRow(
                        view.index,
                        v.decision,
                        v.inspector,
                        bool(v.engines),
                        _time(v.inspected_at),
                        {k: dict(s) for k, s in v.findings.items()},
                        v.sarif_sha256 or "",
                        v.note,
                    )
                )
        elif view.kind == KIND_ROLLOUT:
            target = self.releases.get(str(view.record.get("release", "")))
            if target is not None:
                target.transitions.append(
                    TransitionRow(
                        view.index,
                        str(view.record.get("event", "")),
                        str(view.record.get("ring", "")),
                        _time(view.record.get("at")),
                        str(view.record.get("reason", "")),
                    )
                )
        elif view.kind == KIND_HEALTH and view.envelope is not None:
            self.health.reports.append((view.index, view.envelope))
            self._count(view.record, {str(view.record.get("status")): 1})
        elif view.kind == KIND_HEALTH_AGGREGATE:
            self.health.aggregates.append((view.index, dict(view.record)))
            counts = view.record.get("counts")
            self._count(view.record, counts if isinstance(counts, dict) else {})
        elif view.kind == KIND_POLICY:
            self.policies.append(
                LoggedPolicy(DistributionPolicy.from_dict(dict(view.record)), view.index)
            )
        elif view.kind == KIND_ENTITLEMENT and view.envelope is not None:
            predicate = statement_of(view.envelope).predicate
            commitment = logged_commitment(predicate)
            if commitment is None:  # legacy: logged in clear
                self.entitlements.append((view.index, Entitlement.from_dict(predicate)))
            elif commitment in self._openings:  # the regulator holds its opening
                opened = open_commitment(predicate, self._openings[commitment])
                self.entitlements.append((view.index, opened))

    def _count(self, record: Mapping[str, Any], counts: Mapping[str, Any]) -> None:
        target = self.releases.get(str(record.get("release", "")))
        if target is None:
            return
        tally = target.health.setdefault(str(record.get("ring", "")), [0, 0])
        for status, count in counts.items():
            n = count if isinstance(count, int) and count > 0 else 0
            tally[0 if status == "ok" else 1] += n


def _time(value: object) -> datetime | None:
    try:
        return parse_time(value, "time") if value else None
    except BadInput:
        return None


def _policy_at(policies: list[LoggedPolicy], moment: datetime) -> LoggedPolicy | None:
    """The latest logged policy issued by ``moment`` (else the first logged, if any)."""
    issued = [p for p in policies if p.policy.issued <= moment]
    return issued[-1] if issued else None


def _decisions(
    releases: Iterable[ReleaseRow],
    policies: list[LoggedPolicy],
    entitlements: list[tuple[int, Entitlement]],
) -> list[DecisionRow]:
    rows: list[DecisionRow] = []
    for release in releases:
        moment = release.dated
        if moment is None or release.decision != "approved":
            continue
        policy = _policy_at(policies, moment)
        product_ents = [(i, e) for i, e in entitlements if e.product == release.product]
        customers: dict[str, tuple[int, str]] = {}
        for index, ent in product_ents:
            customers.setdefault(ent.customer, (index, ent.jurisdiction))
        for customer, (index, jurisdiction) in sorted(customers.items()):
            ents = [e for _, e in product_ents if e.customer == customer]
            decision = decide(policy, ents, customer, release.product, moment)
            rows.append(DecisionRow(release, index, customer, jurisdiction, moment, decision))
    return rows


def _treatment(decisions: list[DecisionRow], focus: str | None) -> list[TreatmentRow]:
    by_release: dict[int, list[DecisionRow]] = defaultdict(list)
    for row in decisions:
        by_release[row.release.index].append(row)
    out: list[TreatmentRow] = []
    for rows in by_release.values():
        received = sorted({r.jurisdiction for r in rows if r.decision.allowed})
        if not received:
            continue
        by_jurisdiction: dict[str, list[DecisionRow]] = defaultdict(list)
        for r in rows:
            by_jurisdiction[r.jurisdiction].append(r)
        for jurisdiction, group in sorted(by_jurisdiction.items()):
            if jurisdiction in received or (focus is not None and jurisdiction != focus):
                continue
            out.append(_explain(group, tuple(received)))
    return out


def _explain(group: list[DecisionRow], received: tuple[str, ...]) -> TreatmentRow:
    first = group[0]
    by_policy = [r for r in group if r.decision.policy_log_index is not None]
    if len(by_policy) == len(group):
        d = by_policy[0].decision
        text = (
            f"policy {d.policy_name!r} (log entry {d.policy_log_index}), rule {d.rule}: {d.reason}"
        )
        return TreatmentRow(first.release, first.jurisdiction, received, text, True)
    unexplained = [r for r in group if r.decision.policy_log_index is None]
    rules = ", ".join(sorted({r.decision.rule for r in unexplained}))
    text = (
        f"no logged policy rule explains it: {len(unexplained)} of {len(group)} "
        f"customer(s) withheld by {rules} "
        f"(entitlement entries {', '.join(str(r.entitlement_index) for r in unexplained)})"
    )
    return TreatmentRow(first.release, first.jurisdiction, received, text, False)


def collect(
    trust_root: TrustRoot,
    source: TileSource,
    period: Period,
    jurisdiction: str | None = None,
    clock: datetime | None = None,
    openings: Sequence[EntitlementOpening] = (),
    fetch_aggregate: AggregateFetcher | None = None,
) -> ReportData:
    """Replay the log once and gather every fact of the report.  Entitlements are logged
    as commitments: ``openings`` (the regulator's copies) open them; an unopened one is
    counted by nobody (its customer is unknown to this report).  ``fetch_aggregate`` reads
    the individual reports of a logged health aggregate (from the gateway that logged it)."""
    collector = _Collector(openings)
    with tempfile.TemporaryDirectory(prefix="clearance-report-") as state:
        audit = audit_log(
            AuditOptions(
                trust_root=trust_root, source=source, state_dir=Path(state), observer=collector
            )
        )
    note = Note.from_bytes(audit.note)
    checkpoint = Checkpoint.from_note(note)
    in_period = [r for r in collector.ordered if r.dated is not None and r.dated in period]
    undated = [r for r in collector.ordered if r.dated is None]
    if jurisdiction is not None:
        known = {e.jurisdiction for _, e in collector.entitlements}
        known |= {rule.jurisdiction for p in collector.policies for rule in p.policy.rules}
        if jurisdiction not in known:
            raise BadInput(
                f"jurisdiction {jurisdiction!r} appears in no logged policy or entitlement "
                f"(known: {', '.join(sorted(known)) or 'none'})"
            )
    decisions = _decisions(in_period, collector.policies, collector.entitlements)
    if jurisdiction is not None:
        shown = [d for d in decisions if d.jurisdiction == jurisdiction]
    else:
        shown = decisions
    devices = Devices.of(collector.entitlements)
    evidence = served(collector.health, devices, fetch_aggregate)
    cosigned = cosigning_witnesses(note, trust_root)
    witnesses = [
        WitnessRow(
            k.name,
            k.name in cosigned,
            datetime.fromtimestamp(cosigned[k.name], UTC) if k.name in cosigned else None,
        )
        for k in trust_root.witnesses.keys
    ]
    return ReportData(
        origin=trust_root.log_origin,
        period=period,
        jurisdiction=jurisdiction,
        checkpoint=checkpoint,
        audit=audit,
        releases=in_period,
        undated=undated,
        policies=collector.policies,
        decisions=shown,
        treatment=_treatment(decisions, jurisdiction),
        jurisdictions=sorted({d.jurisdiction for d in shown}),
        witnesses=witnesses,
        witness_threshold=trust_root.witnesses.threshold,
        generated=clock or datetime.now(UTC),
        unopened_entitlements=collector.unopened,
        served=compare(in_period, decisions, evidence, devices, jurisdiction),
        served_evidence=evidence,
    )


def summary(data: ReportData) -> dict[str, Any]:
    """The machine-readable outline of a report (also the signed predicate's body)."""
    return {
        "origin": data.origin,
        "from": data.period.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "to": data.period.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "jurisdiction": data.jurisdiction,
        "treeSize": data.checkpoint.size,
        "rootHash": data.checkpoint.root_hash.hex(),
        "releases": len(data.releases),
        "decisions": len(data.decisions),
        "withheld": len(data.withheld),
        "redFlags": len(data.red_flags) + len(data.served_flags),
        "servedRedFlags": len(data.served_flags),
        "installsEvidenced": len(data.served_evidence.installs),
        "auditClean": data.audit.clean,
        "witnessesCosigned": sum(1 for w in data.witnesses if w.cosigned),
        "unopenedEntitlements": len(data.unopened_entitlements),
    }

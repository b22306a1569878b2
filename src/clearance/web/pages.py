"""The data of each dashboard page, from the gateway's public methods (no HTTP here)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from clearance.attest import Envelope, admission, statement_of
from clearance.attest.report import ReportClaim
from clearance.audit.auditor import cosigning_witnesses
from clearance.errors import BadInput
from clearance.gateway.errors import GatewayNotFoundError
from clearance.keys import Note
from clearance.log.checkpoint import Checkpoint
from clearance.policy._time import parse_time
from clearance.report import plots
from clearance.web._source import DashboardSource
from clearance.web.entry_view import EntryPage, entry_page
from clearance.web.sarif_view import FindingView, findings_of

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _now() -> datetime:
    return datetime.now(UTC)


def overview(src: DashboardSource) -> dict[str, Any]:
    releases = []
    for row in reversed(src.releases()):
        releases.append(
            {
                **row.to_dict(),
                "verdicts": src.verdicts_of(row.sha256),
                "rollout": src.rollout_of(row.sha256),
            }
        )
    policy = src.policy_in_force()
    audits = src.audit_reports()
    return {
        "log_size": src.log_size,
        "kinds": src.entry_kinds(),
        "jobs": src.job_counts(),
        "releases": releases,
        "recent": src.recent_entries(15),
        "policy": None
        if policy is None
        else {
            "name": policy.policy.name,
            "log_index": policy.log_index,
            "rules": [r.to_dict() for r in policy.policy.rules],
        },
        "witnesses": witnesses(src)["rows"],
        "audit": audits[-1] if audits else None,
    }


def release(src: DashboardSource, sha256: str) -> dict[str, Any]:
    status = src.status(sha256)
    if "release" not in status:
        raise GatewayNotFoundError(f"{sha256} is not a release")
    sarif_path = src.inspection_report(sha256, "sarif")
    findings: list[FindingView] = []
    if sarif_path is not None:
        try:
            findings = findings_of(json.loads(sarif_path.read_bytes()))
        except (OSError, ValueError):
            findings = []
    return {
        **status,
        "findings": findings,
        "has_sarif": sarif_path is not None,
        "has_html": src.inspection_report(sha256, "html") is not None,
    }


def entry(src: DashboardSource, index: int) -> EntryPage:
    if not 0 <= index < src.log_size:
        raise GatewayNotFoundError(f"log entry {index} does not exist (the log has {src.log_size})")
    size, proof, note = src.inclusion(index)
    return entry_page(index, src.log_entry(index), src.trust_root, size, proof, note)


def customers(src: DashboardSource) -> list[dict[str, Any]]:
    by_customer: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for index, ent in src.all_entitlements():
        by_customer[str(ent.get("customer", "?"))].append((index, ent))
    out = []
    for customer, ents in sorted(by_customer.items()):
        products = sorted({str(e.get("product", "")) for _, e in ents})
        out.append(
            {
                "customer": customer,
                "entitlements": [{"log_index": i, **e} for i, e in ents],
                "decisions": [
                    {"product": p, **src.decide_for(customer, p).to_dict()} for p in products
                ],
            }
        )
    return out


def policy(src: DashboardSource) -> dict[str, Any]:
    in_force = src.policy_in_force()
    history = src.policy_history()
    return {
        "in_force": in_force,
        "history": list(reversed(history)),
        "plot": "" if in_force is None else plots.policy_timeline(in_force.policy, _now()),
    }


def witnesses(src: DashboardSource) -> dict[str, Any]:
    note = Note.from_bytes(src.checkpoint_note())
    checkpoint = Checkpoint.from_note(note)
    cosigned = cosigning_witnesses(note, src.trust_root)
    status = src.witness_status or {}
    sizes = status.get("witness_sizes", {}) if isinstance(status, dict) else {}
    failures = (
        {f.get("name"): f for f in status.get("failures", []) if isinstance(f, dict)}
        if isinstance(status, dict)
        else {}
    )
    now = _now()
    rows = []
    for key in src.trust_root.witnesses.keys:
        at = cosigned.get(key.name)
        size = checkpoint.size if at is not None else sizes.get(key.name)
        rows.append(
            {
                "name": key.name,
                "cosigned_latest": at is not None,
                "size": size,
                "time": None if at is None else datetime.fromtimestamp(at, UTC),
                "lag_entries": None if size is None else checkpoint.size - int(size),
                "lag_seconds": None
                if at is None
                else int((now - datetime.fromtimestamp(at, UTC)).total_seconds()),
                "failure": failures.get(key.name),
            }
        )
    return {
        "rows": rows,
        "size": checkpoint.size,
        "threshold": src.trust_root.witnesses.threshold,
        "checkpoint": note.to_bytes().decode(),
    }


def ring_series(
    transitions: list[tuple[int, dict[str, Any]]], health: list[tuple[datetime, str]]
) -> dict[str, list[tuple[datetime, float]]]:
    """Each ring's failure rate after each health report, over time: a report counts
    against the ring the rollout was in when it arrived; a ring starts afresh when it is
    entered or resumed (as the gateway counts)."""
    series: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    events: list[tuple[datetime, int, dict[str, Any] | str]] = []
    for _, transition in transitions:
        moment = _when(transition.get("at"))
        if moment is not None:
            events.append((moment, 0, transition))
    events += [(moment, 1, status) for moment, status in health]
    ring = ""
    for moment, _, event in sorted(events, key=lambda e: (e[0], e[1])):
        if isinstance(event, dict):
            ring = str(event.get("ring", ""))
            if event.get("event") in ("started", "resumed", "advanced"):
                counts[ring] = [0, 0]
        elif ring:
            counts[ring][0] += 1
            counts[ring][1] += 0 if event == "ok" else 1
            series[ring].append((moment, counts[ring][1] / counts[ring][0]))
    return dict(series)


def _when(value: object) -> datetime | None:
    try:
        return parse_time(value, "time")
    except BadInput:
        return None


#: One piece of logged health evidence: (log index, when, ring, ok count, failed count).
LoggedHealth = tuple[int, datetime | None, str, int, int]


def logged_health(src: DashboardSource) -> dict[str, list[LoggedHealth]]:
    """Health evidence in the log, by release: each device-signed report logged on its own
    (undated: the log orders it) and each logged aggregate (dated by its window's end)."""
    out: dict[str, list[LoggedHealth]] = defaultdict(list)
    for index in src.entries_of("health"):
        try:
            p = statement_of(Envelope.from_bytes(src.log_entry(index))).predicate
        except BadInput:
            continue
        ok = p.get("status") == "ok"
        out[str(p.get("release"))].append((index, None, str(p.get("ring")), int(ok), int(not ok)))
    for index in src.entries_of("health-aggregate"):
        try:
            record = json.loads(src.log_entry(index))
            counts = record["counts"]
            end = int(record["window_start"]) + int(record["window_seconds"])
            ok = int(counts.get("ok", 0))
            failed = sum(int(n) for status, n in counts.items() if status != "ok")
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        moment = datetime.fromtimestamp(end, UTC)
        out[str(record.get("release"))].append((index, moment, str(record.get("ring")), ok, failed))
    return out


def logged_ring_series(
    transitions: list[tuple[int, dict[str, Any]]], health: list[LoggedHealth]
) -> dict[str, list[tuple[datetime, float]]]:
    """Each ring's failure rate over the log: events in log order; a report or aggregate
    counts against the ring it names; a ring starts afresh when a logged transition enters
    or resumes it.  An undated report is placed at the last dated logged event before it."""
    series: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    events: list[tuple[int, dict[str, Any] | LoggedHealth]] = [(i, t) for i, t in transitions]
    events += [(h[0], h) for h in health]
    moment: datetime | None = None
    for _, event in sorted(events, key=lambda e: e[0]):
        if isinstance(event, dict):
            moment = _when(event.get("at")) or moment
            if event.get("event") in ("started", "resumed", "advanced"):
                counts[str(event.get("ring", ""))] = [0, 0]
            continue
        _, when, ring, ok, failed = event
        moment = when or moment
        tally = counts[ring]
        tally[0] += ok + failed
        tally[1] += failed
        if moment is not None and tally[0]:
            series[ring].append((moment, tally[1] / tally[0]))
    return dict(series)


def rollouts(src: DashboardSource) -> list[dict[str, Any]]:
    """Each rollout with its logged transitions and a plot of each ring's failure rate: from
    the log's health evidence where it has any, else from the gateway's stored reports."""
    out = []
    evidence = logged_health(src)
    for row in reversed(src.releases()):
        state = src.rollout_of(row.sha256)
        if state is None:
            continue
        transitions = src.transitions_of(row.sha256)
        thresholds = {
            str(r["name"]): float(r.get("failure_threshold", 0)) for r in state.get("rings", [])
        }
        marks = [
            (at, str(t.get("event", ""))) for _, t in transitions if (at := _when(t.get("at")))
        ]
        logged = evidence.get(row.sha256, [])
        if logged:
            series = logged_ring_series(transitions, logged)
        else:
            series = ring_series(transitions, src.health_of(row.sha256))
        out.append(
            {
                "release": row,
                "state": state,
                "transitions": [{"log_index": i, **t} for i, t in transitions],
                "plot": plots.ring_failure_rates(series, thresholds, marks),
                "health_source": "log" if logged else "gateway",
                "health_entries": [h[0] for h in logged],
            }
        )
    return out


def search(src: DashboardSource, query: str, can_see_customers: bool) -> dict[str, Any]:
    """Where a query leads: a log index, a release (by envelope or artifact digest, or by
    product and version), a log entry by digest, or a customer (signed-in roles only)."""
    q = query.strip()
    results: list[dict[str, str]] = []
    if q.isdigit() and int(q) < src.log_size:
        results.append({"href": f"/entries/{int(q)}", "text": f"log entry {int(q)}"})
    low = q.lower()
    for row in src.releases():
        label = f"{row.product} {row.version} ({row.channel})"
        artifacts = [a for a in row.artifacts if a.get("sha256") == low]
        if low == row.sha256:
            results.append({"href": f"/releases/{row.sha256}", "text": f"release {label}"})
        elif artifacts:
            names = ", ".join(str(a.get("name")) for a in artifacts)
            results.append(
                {"href": f"/releases/{row.sha256}", "text": f"{names} in release {label}"}
            )
        elif q and (q.lower() in f"{row.product} {row.version}".lower() or q == row.version):
            results.append({"href": f"/releases/{row.sha256}", "text": f"release {label}"})
    if HEX64.match(low) and not results:
        try:
            status = src.status(low)
        except GatewayNotFoundError:
            status = None
        if status is not None:
            results.append(
                {
                    "href": f"/entries/{status['log_index']}",
                    "text": f"{status['kind']} at log entry {status['log_index']}",
                }
            )
    if can_see_customers and q:
        for index, ent in src.all_entitlements():
            if q.lower() in str(ent.get("customer", "")).lower():
                results.append(
                    {
                        "href": "/customers#" + str(ent.get("customer")),
                        "text": f"customer {ent.get('customer')} (entitlement, entry {index})",
                    }
                )
    return {"query": q, "results": results}


def logged_reports(src: DashboardSource) -> list[dict[str, Any]]:
    """Signed regulator's reports in the log, newest first: who signed, what they cover, and
    the file digests ``clearance report verify`` checks a copy of the report against."""
    rule = admission.signer_rule(admission.KIND_REPORT, src.trust_root)
    out = []
    for index in sorted(src.entries_of(admission.KIND_REPORT), reverse=True):
        try:
            envelope = Envelope.from_bytes(src.log_entry(index))
            claim = ReportClaim.from_statement(statement_of(envelope))
            signers = sorted(admission.valid_key_ids(envelope, rule.keys))
        except (BadInput, admission.ForgedSignatureError):
            continue  # not admitted under today's rule: its entry page still shows it
        out.append(
            {
                "index": index,
                "producer": claim.producer,
                "signers": signers,
                "period": f"{claim.period_from} to {claim.period_to}",
                "jurisdiction": claim.jurisdiction or "all",
                "tree_size": claim.tree_size,
                "root_hash": claim.root_hash,
                "files": [(f.name, f.sha256) for f in claim.files],
            }
        )
    return out

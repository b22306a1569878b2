"""Recomputing every rollout transition from the logged, signed health reports.

The gateway's rollout operator signs each transition; the rule that must have
produced it is :mod:`clearance.policy.rollout` (one vote per reporting device per
window, halts on failures, advances only after the soak with enough healthy
devices, halts on silence).  The auditor replays the log: per release it keeps
the rings (from ``started``), the current ring and when it was entered, and the
latest status of each device that reported in the window; at each ``advanced``,
``halted`` or ``completed`` transition it runs the rule on the reports logged up
to ``evidence.reportsThrough`` at the transition's time, and reports
``audit.rollout-unjustified`` when the rule says otherwise.  A halt justified by a
rejecting verdict or a revocation (``evidence.verdict_log_index`` /
``evidence.revocation_log_index``) is not re-judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from clearance.audit.rules import AuditFinding
from clearance.audit.state import AuditState
from clearance.errors import BadInput
from clearance.policy._time import format_time, parse_time
from clearance.policy.rollout import Report, Ring, judge, tally
from clearance.policy.rollout_statements import SignedTransition

_JUDGED = ("advanced", "halted", "completed")


def on_health(state: AuditState, index: int, predicate: Mapping[str, Any], device: str) -> None:
    """Record one logged health report (signed by ``device``) in its release's window."""
    release = predicate.get("release")
    if not isinstance(release, str):
        return
    record = state.rollout(release)
    if record is None or record["status"] != "active":
        return
    if predicate.get("ring") != record["rings"][record["ring_index"]]["name"]:
        return  # a report for another ring does not count in this one
    reports = record.setdefault("reports", [])
    reports.append([device, str(predicate.get("status")), index])
    state.set_rollout(release, record)


def on_transition(
    state: AuditState, index: int, predicate: Mapping[str, Any]
) -> list[AuditFinding]:
    """Apply a logged transition; a finding when the rule does not produce it."""
    try:
        transition = SignedTransition.from_predicate(predicate)
    except BadInput:
        return []  # malformed: reported as such by the entry check
    record = state.rollout(transition.release)
    findings: list[AuditFinding] = []
    if transition.event == "started":
        try:
            fixed = transition.rings()
        except BadInput:
            return []
        state.set_rollout(
            transition.release,
            {
                "rings": [r.to_dict() for r in fixed],
                "ring_index": 0,
                "status": "active",
                "entered": format_time(transition.at),
                "reports": [],
            },
        )
        return []
    if record is None:
        return [_finding(index, transition, "no logged 'started' transition precedes it")]
    rings = [Ring.from_dict(r) for r in record["rings"]]
    ring_index = int(record["ring_index"])
    if transition.event in _JUDGED and not _justified_elsewhere(transition):
        findings.extend(_judge(index, transition, record, rings, ring_index))
    if transition.event == "advanced":
        names = [r.name for r in rings]
        if transition.ring in names:
            ring_index = names.index(transition.ring)
        record.update(ring_index=ring_index, status="active", reports=[])
        record["entered"] = format_time(transition.at)
    elif transition.event == "halted":
        record["status"] = "halted"
    elif transition.event == "resumed":
        record.update(status="active", reports=[], entered=format_time(transition.at))
    elif transition.event == "completed":
        record["status"] = "complete"
    state.set_rollout(transition.release, record)
    return findings


def _justified_elsewhere(transition: SignedTransition) -> bool:
    return transition.event == "halted" and any(
        k in transition.evidence for k in ("verdict_log_index", "revocation_log_index")
    )


def _judge(
    index: int,
    transition: SignedTransition,
    record: Mapping[str, Any],
    rings: list[Ring],
    ring_index: int,
) -> list[AuditFinding]:
    if record["status"] != "active":
        return [_finding(index, transition, f"the rollout is {record['status']}, not active")]
    through = transition.evidence.get("reportsThrough", index - 1)
    if not isinstance(through, int) or isinstance(through, bool):
        through = index - 1
    counts = tally(
        Report(device, status, at)
        for device, status, at in record.get("reports", [])
        if at <= through
    )
    entered: datetime = parse_time(record["entered"], "rollout.entered")
    ruling = judge(rings[ring_index], ring_index == len(rings) - 1, entered, counts, transition.at)
    if ruling.event == transition.event:
        return []
    said = ruling.event or "no change"
    return [
        _finding(
            index,
            transition,
            f"the logged health reports give {said!r} ({ruling.reason}; "
            f"{counts.healthy} healthy of {counts.devices} reporting devices)",
        )
    ]


def _finding(index: int, transition: SignedTransition, why: str) -> AuditFinding:
    return AuditFinding(
        "audit.rollout-unjustified",
        f"entry {index}: rollout of {transition.release[:16]}… {transition.event} in ring "
        f"{transition.ring}, but {why}",
        index,
        {
            "release": transition.release,
            "event": transition.event,
            "ring": transition.ring,
            "at": format_time(transition.at),
        },
    )

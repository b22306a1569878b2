"""What the auditor reports: its own ``audit.*`` rule ids, and the finding value.

The contract finding ids (``content.*``, ``binary.*``) describe releases;
these describe the log and the statements in it, so they live in their own
namespace and their own model.  A finding of severity MEDIUM or worse is a
*discrepancy* (``clearance audit`` exits 1); LOW and INFO are alerts kept in
the report (e.g. a policy change, which is legitimate but worth a look).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clearance.inspection.findings import Severity


@dataclass(frozen=True)
class AuditRule:
    rule_id: str
    severity: Severity
    title: str
    description: str


_RULES = (
    AuditRule(
        "audit.log-inconsistent",
        Severity.CRITICAL,
        "Log is not consistent with what the auditor saw before",
        "The new checkpoint does not extend the one recorded on the previous run "
        "(fork or rewritten history); both signed checkpoints are in the evidence.",
    ),
    AuditRule(
        "audit.split-view",
        Severity.CRITICAL,
        "Split view",
        "Another signed checkpoint of the same log (e.g. held by a witness) is not "
        "consistent with the one the log serves to this auditor.",
    ),
    AuditRule(
        "audit.checkpoint-unwitnessed",
        Severity.HIGH,
        "Checkpoint lacks witness cosignatures",
        "The served checkpoint carries fewer valid cosignatures from the trust root's "
        "witnesses than its threshold.",
    ),
    AuditRule(
        "audit.report-tree-mismatch",
        Severity.HIGH,
        "A logged report cites a tree that is not the log's",
        "A signed report in the log names a tree (origin, size, root) that is not this log's "
        "tree at that size, or one it could not have read before it was logged: its signer "
        "cites the log for a history the log does not hold.",
    ),
    AuditRule(
        "audit.index-root-mismatch",
        Severity.CRITICAL,
        "Checkpoint commits to a wrong index root",
        "The verifiable index recomputed from the log's entries under the trust root has "
        "another root than the one the signed checkpoint commits to: endpoints could be "
        "shown a release as approved or unrevoked when the log says otherwise.",
    ),
    AuditRule(
        "audit.rollout-unapproved",
        Severity.CRITICAL,
        "Rollout of a release the inspectors did not approve",
        "The log records a rollout step for a release that the index (distinct trusted "
        "inspector keys, revocations) does not show approved.",
    ),
    AuditRule(
        "audit.cosignature-forged",
        Severity.HIGH,
        "Forged witness cosignature",
        "The checkpoint carries a cosignature line that names a trusted witness key but "
        "does not verify.",
    ),
    AuditRule(
        "audit.bad-signature",
        Severity.HIGH,
        "Entry not signed as the trust root requires",
        "A release without the vendors' threshold, a verdict without a valid inspector "
        "signature, a policy without the policy key, or a forged signature by a known key.",
    ),
    AuditRule(
        "audit.rollout-unjustified",
        Severity.HIGH,
        "Rollout transition the health reports do not produce",
        "Recomputing the rollout rule (one vote per reporting device per window, soak, "
        "enough healthy devices, silence counts as failure) over the logged, signed health "
        "reports gives another outcome than a logged transition: a ring advanced without "
        "enough healthy devices, or halted or completed without cause.",
    ),
    AuditRule(
        "audit.tuf-not-approved",
        Severity.HIGH,
        "TUF publishes what the log does not approve",
        "The gateway's TUF targets metadata lists a target whose release is not logged, "
        "was rejected by an inspector, was revoked by the policy authority, or was never "
        "approved: a stock TUF client would download it.",
    ),
    AuditRule(
        "audit.entry-unrecognized",
        Severity.MEDIUM,
        "Unrecognized entry",
        "A log entry that is not a DSSE-enveloped Clearance statement or a rollout record.",
    ),
    AuditRule(
        "audit.verdict-without-release",
        Severity.HIGH,
        "Verdict for a release that is not logged",
        "An approved verdict names a release envelope digest that no earlier log entry holds.",
    ),
    AuditRule(
        "audit.verdict-mismatch",
        Severity.HIGH,
        "Verdict does not describe its release",
        "The verdict's product, version or channel differ from the logged release it names.",
    ),
    AuditRule(
        "audit.findings-mismatch",
        Severity.HIGH,
        "Re-inspection finds something else",
        "Re-running the deterministic inspections on the release's artifacts gives a "
        "findings summary different from the one in the logged verdict.",
    ),
    AuditRule(
        "audit.timing-differs",
        Severity.LOW,
        "Re-inspection differs only in timing-dependent findings",
        "Re-inspection and verdict differ only in findings that depend on the machine's "
        "speed (content.slow); the content itself is judged the same.",
    ),
    AuditRule(
        "audit.sarif-mismatch",
        Severity.MEDIUM,
        "Re-inspection SARIF differs",
        "The SHA-256 of the SARIF produced by re-inspection differs from the verdict's.",
    ),
    AuditRule(
        "audit.reinspection-failed",
        Severity.MEDIUM,
        "Re-inspection failed",
        "The release's artifacts were available but the inspections could not be re-run.",
    ),
    AuditRule(
        "audit.release-without-verdict",
        Severity.MEDIUM,
        "Release without verdict after the deadline",
        "A logged release still has no verdict a set time after the auditor first saw it.",
    ),
    AuditRule(
        "audit.verdict-overridden",
        Severity.MEDIUM,
        "Verdict overridden",
        "A later verdict changes the decision of an earlier one for the same release "
        "(e.g. a human approving what the automated inspection rejected).",
    ),
    AuditRule(
        "audit.rollout-halted",
        Severity.MEDIUM,
        "Rollout halted",
        "A staged rollout was halted (canary health went bad).",
    ),
    AuditRule(
        "audit.policy-changed",
        Severity.LOW,
        "Distribution policy changed",
        "A new distribution policy was logged after an earlier one.",
    ),
    AuditRule(
        "audit.not-reinspected",
        Severity.INFO,
        "Release not re-inspected",
        "The release's artifacts could not be fetched, so its verdict was not recomputed.",
    ),
)

#: Every audit rule, by id.
AUDIT_RULES: Mapping[str, AuditRule] = {r.rule_id: r for r in _RULES}


@dataclass(frozen=True)
class AuditFinding:
    """One discrepancy or alert; ``entry_index`` is the log entry it is about, if any."""

    rule_id: str
    message: str
    entry_index: int | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rule_id not in AUDIT_RULES:
            raise ValueError(f"unknown audit rule {self.rule_id!r}")

    @property
    def severity(self) -> Severity:
        return AUDIT_RULES[self.rule_id].severity

    @property
    def is_discrepancy(self) -> bool:
        return self.severity >= Severity.MEDIUM

    def to_dict(self) -> dict[str, Any]:
        return {
            "ruleId": self.rule_id,
            "severity": self.severity.label,
            "message": self.message,
            "entryIndex": self.entry_index,
            "evidence": dict(self.evidence),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditFinding:
        index = data.get("entryIndex")
        return cls(
            str(data["ruleId"]),
            str(data["message"]),
            None if index is None else int(index),
            dict(data.get("evidence") or {}),
        )

    def sort_key(self) -> tuple[Any, ...]:
        return (
            -int(self.severity),
            self.rule_id,
            -1 if self.entry_index is None else self.entry_index,
            self.message,
            json.dumps(self.evidence, sort_keys=True, default=str),
        )

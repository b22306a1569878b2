"""The monitor's alert rules (stable ``monitor.*`` ids) and the alert value.

The monitor also forwards every discrepancy the replaying auditor reports under its own
``audit.*`` id (see :mod:`clearance.audit.rules`), so one id names one kind of event
wherever it is reported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clearance.audit.rules import AUDIT_RULES
from clearance.inspection.findings import Severity


@dataclass(frozen=True)
class MonitorRule:
    rule_id: str
    severity: Severity
    title: str


_RULES = (
    MonitorRule(
        "monitor.unknown-signer", Severity.HIGH, "Signed by a key the trust root does not know"
    ),
    MonitorRule(
        "monitor.unexpected-signer", Severity.HIGH, "Signed by a key not expected for this product"
    ),
    MonitorRule(
        "monitor.unexpected-product",
        Severity.MEDIUM,
        "Release of a product the monitor does not expect",
    ),
    MonitorRule(
        "monitor.key-outside-role",
        Severity.HIGH,
        "A trust-root key signed what its role may not sign",
    ),
    MonitorRule(
        "monitor.release-without-verdict",
        Severity.MEDIUM,
        "Vendor release without verdict after the deadline",
    ),
    MonitorRule(
        "monitor.unapproved-rollout",
        Severity.CRITICAL,
        "A rejected or unreviewed release reached a rollout ring",
    ),
    MonitorRule(
        "monitor.rejection-overridden", Severity.HIGH, "A human overrode an automatic rejection"
    ),
    MonitorRule("monitor.policy-change", Severity.LOW, "A distribution policy was logged"),
    MonitorRule(
        "monitor.checkpoint-stale", Severity.MEDIUM, "The log's checkpoint has not advanced"
    ),
    MonitorRule(
        "monitor.split-view", Severity.CRITICAL, "Two signed checkpoints that cannot both be true"
    ),
    MonitorRule("monitor.witness-silent", Severity.MEDIUM, "A witness stopped cosigning"),
)

#: Every monitor rule, by id.
MONITOR_RULES: Mapping[str, MonitorRule] = {r.rule_id: r for r in _RULES}


def severity_of(rule_id: str) -> Severity:
    if rule_id in MONITOR_RULES:
        return MONITOR_RULES[rule_id].severity
    return AUDIT_RULES[rule_id].severity


@dataclass(frozen=True)
class Alert:
    """One alert.  ``key`` identifies the event, so an event is alerted once however often
    the monitor passes over it (restarts, replays)."""

    rule_id: str
    message: str
    entry_index: int | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    key: str = ""

    def __post_init__(self) -> None:
        if self.rule_id not in MONITOR_RULES and self.rule_id not in AUDIT_RULES:
            raise ValueError(f"unknown alert rule {self.rule_id!r}")
        if not self.key:
            basis = json.dumps(
                [self.rule_id, self.entry_index, self.message], sort_keys=True
            ).encode()
            object.__setattr__(self, "key", hashlib.sha256(basis).hexdigest()[:32])

    @property
    def severity(self) -> Severity:
        return severity_of(self.rule_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ruleId": self.rule_id,
            "severity": self.severity.label,
            "message": self.message,
            "entryIndex": self.entry_index,
            "evidence": dict(self.evidence),
            "key": self.key,
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Alert:
        obj = json.loads(data)
        index = obj.get("entryIndex")
        return cls(
            str(obj["ruleId"]),
            str(obj["message"]),
            None if index is None else int(index),
            dict(obj.get("evidence") or {}),
            str(obj["key"]),
        )

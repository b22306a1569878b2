"""The check-plugin interface and what every check may read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from clearance.inspection.content.engine import CompileReport, ScanReport
from clearance.inspection.content.evidence import EvidenceScan
from clearance.inspection.content.model import ContentRule, RuleFile
from clearance.inspection.findings import Finding, Location, Severity

_SNIPPET_LIMIT = 6000


@dataclass(frozen=True)
class CheckSettings:
    """Thresholds of the checks (documented in docs/inspection.md)."""

    #: A rule matching at least this many clean files is critical (mass false positive).
    overbroad_critical_files: int = 5
    #: Scan budget: extra milliseconds a content file may add per MiB scanned.
    budget_ms_per_mib: float = 100.0
    #: A content file may take at most this long to compile alone (seconds).
    compile_budget_seconds: float = 5.0


@dataclass(frozen=True)
class CheckContext:
    files: tuple[RuleFile, ...]
    compile_report: CompileReport
    scan_report: ScanReport | None
    previous_files: tuple[RuleFile, ...] | None = None
    #: (uri, rule name, pattern id) -> personal-data shapes its regex matches (engine probe).
    pii_hits: Mapping[tuple[str, str, str], tuple[str, ...]] = field(default_factory=dict)
    settings: CheckSettings = field(default_factory=CheckSettings)
    #: The release (and its predecessor) scanned over the evidence corpus, when there was one.
    evidence: EvidenceScan | None = None
    #: Rules of the whole release when ``files`` is a part of it (the sandboxed analysis
    #: reads one file at a time; a condition may name a rule of another file).
    known_rule_names: frozenset[str] = frozenset()

    def rules(self) -> list[ContentRule]:
        return [r for f in self.files for r in f.rules]

    def file(self, uri: str) -> RuleFile | None:
        return next((f for f in self.files if f.uri == uri), None)

    def rule_names(self) -> frozenset[str]:
        return frozenset(r.name for r in self.rules()) | self.known_rule_names


class Check(Protocol):
    rule_id: str
    default_severity: Severity
    description: str

    def run(self, ctx: CheckContext) -> list[Finding]: ...


def rule_text(ctx: CheckContext, rule: ContentRule) -> str:
    f = ctx.file(rule.uri)
    if f is None:
        return ""
    text = f.line_range(rule.start_line, rule.end_line)
    return text if len(text) <= _SNIPPET_LIMIT else text[:_SNIPPET_LIMIT] + "\n[...]"


def rule_finding(
    ctx: CheckContext,
    rule_id: str,
    severity: Severity,
    rule: ContentRule,
    message: str,
    evidence: Mapping[str, Any],
    highlight: list[int] | None = None,
) -> Finding:
    """A finding located on a detection rule (name, file, lines, text)."""
    ev = dict(evidence)
    if highlight:
        ev["highlight_lines"] = sorted(set(highlight))
    return Finding(
        rule_id,
        severity,
        message,
        (
            Location(
                uri=rule.uri,
                logical_name=rule.name,
                start_line=rule.start_line or None,
                end_line=rule.end_line or None,
                snippet=rule_text(ctx, rule) or None,
            ),
        ),
        ev,
    )


def file_finding(
    rule_id: str,
    severity: Severity,
    uri: str,
    message: str,
    evidence: Mapping[str, Any],
    line: int | None = None,
    rule_name: str | None = None,
) -> Finding:
    return Finding(
        rule_id,
        severity,
        message,
        (Location(uri=uri, logical_name=rule_name, start_line=line or None),),
        dict(evidence),
    )


def rule_at_line(ctx: CheckContext, uri: str, line: int) -> ContentRule | None:
    f = ctx.file(uri)
    if f is None:
        return None
    return next((r for r in f.rules if r.start_line <= line <= r.end_line), None)

"""``content.engine-crash``: compiling or scanning crashed, hung or ran out of memory."""

from __future__ import annotations

from clearance.inspection.content.checks._base import CheckContext, file_finding
from clearance.inspection.findings import Finding, Severity


class EngineCrashCheck:
    rule_id = "content.engine-crash"
    default_severity = Severity.CRITICAL
    description = "The sandboxed engine died (signal, limit, hang) on this content."

    def run(self, ctx: CheckContext) -> list[Finding]:
        crashes = list(ctx.compile_report.crashes)
        if ctx.scan_report is not None:
            crashes += list(ctx.scan_report.crashes)
        return [
            file_finding(
                self.rule_id,
                self.default_severity,
                c.uri,
                c.message if c.uri == "ruleset" else f"{c.uri}: {c.message}",
                {"phase": c.phase, **c.evidence},
                rule_name=c.rule_name,
            )
            for c in crashes
        ]

"""``content.slow``: compile or scan cost beyond the budget.

Three sources, from most to least deterministic:

* the engine's own warnings (``slow_pattern``, ``potentially_slow_loop``);
* corpus files whose scan hit the per-file timeout;
* the measured cost of each content file on the cost sample (extra
  milliseconds per MiB scanned) and its compile time, against the budgets.
  Only the verdict "over budget" and a coarse bucket (2x, 4x, 8x... the
  budget) enter the findings, so reruns give the same SARIF unless a file
  sits right at a bucket edge; the raw timings go to the HTML report only.
"""

from __future__ import annotations

import math

from clearance.inspection.content.checks._base import (
    CheckContext,
    file_finding,
    rule_at_line,
    rule_finding,
)
from clearance.inspection.findings import Finding, Severity

_ENGINE_CODES = frozenset({"slow_pattern", "potentially_slow_loop"})


def bucket(ratio: float) -> str:
    """Deterministic coarse bucket of cost / budget: 'over 1x', 'over 2x', 'over 4x'..."""
    if math.isinf(ratio):
        return "hit the scan timeout"
    power = 2 ** math.floor(math.log2(max(ratio, 1.0)))
    return f"over {power}x the budget"


class SlowCheck:
    rule_id = "content.slow"
    default_severity = Severity.MEDIUM
    description = (
        "Compile or scan cost beyond the budget (engine warnings, timeouts, measured cost)."
    )

    def run(self, ctx: CheckContext) -> list[Finding]:
        out: list[Finding] = []
        for d in ctx.compile_report.diagnostics:
            if d.level == "warning" and d.code in _ENGINE_CODES:
                rule = rule_at_line(ctx, d.uri, d.line)
                evidence = {"engine_message": d.text, "code": d.code}
                message = f"{d.uri}: the engine warns: {d.message} [{d.code}]"
                if rule is not None:
                    out.append(
                        rule_finding(
                            ctx, self.rule_id, Severity.LOW, rule, message, evidence, [d.line]
                        )
                    )
                else:
                    out.append(
                        file_finding(self.rule_id, Severity.LOW, d.uri, message, evidence, d.line)
                    )
        for cost in ctx.compile_report.costs:
            budget = cost.budget_ms_per_mib or ctx.settings.budget_ms_per_mib
            ratio = cost.scan_ms_per_mib / budget if budget else 0.0
            if ratio > 1.0:
                worst = sorted(cost.rules.items(), key=lambda kv: (-kv[1], kv[0]))
                over = [name for name, ms in worst if ms > budget]
                out.append(
                    file_finding(
                        self.rule_id,
                        Severity.HIGH if ratio >= 4 or math.isinf(ratio) else self.default_severity,
                        cost.uri,
                        f"{cost.uri}: scanning costs {bucket(ratio)}"
                        + (f"; slowest rule {over[0]}" if over else ""),
                        {
                            "budget_ms_per_mib": budget,
                            "cost": bucket(ratio),
                            "rules_over_budget": over,
                        },
                        rule_name=over[0] if over else None,
                    )
                )
            if cost.compile_seconds > ctx.settings.compile_budget_seconds:
                out.append(
                    file_finding(
                        self.rule_id,
                        self.default_severity,
                        cost.uri,
                        f"{cost.uri}: compiling takes longer than {ctx.settings.compile_budget_seconds:g} s",
                        {"compile_budget_seconds": ctx.settings.compile_budget_seconds},
                    )
                )
        if ctx.scan_report is not None and ctx.scan_report.timeouts:
            out.append(
                file_finding(
                    self.rule_id,
                    Severity.HIGH,
                    "ruleset",
                    f"scanning {len(ctx.scan_report.timeouts)} clean file(s) hit the per-file timeout",
                    {
                        "files": list(ctx.scan_report.timeouts[:50]),
                        "count": len(ctx.scan_report.timeouts),
                    },
                )
            )
        return out

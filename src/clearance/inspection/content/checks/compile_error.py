"""``content.compile-error``: the content does not compile in yara-x; engine warnings too.

Errors make the whole file fail (an update is accepted or refused as a whole).
Engine warnings other than slow patterns (which :mod:`.slow` reports) are
carried as low-severity findings; a file the independent parser cannot read
is reported too, because the other checks could not look inside it.
"""

from __future__ import annotations

from clearance.inspection.content.checks._base import CheckContext, file_finding, rule_at_line
from clearance.inspection.content.yara_terms import rule_heads
from clearance.inspection.findings import Finding, Severity

#: Warning codes reported elsewhere (slow patterns belong to content.slow).
_ELSEWHERE = frozenset({"slow_pattern", "potentially_slow_loop"})


class CompileErrorCheck:
    rule_id = "content.compile-error"
    default_severity = Severity.CRITICAL
    description = (
        "Content that yara-x refuses, engine warnings, and content the parser cannot read."
    )

    def run(self, ctx: CheckContext) -> list[Finding]:
        out = []
        for d in ctx.compile_report.diagnostics:
            if d.level == "warning" and d.code in _ELSEWHERE:
                continue
            rule = rule_at_line(ctx, d.uri, d.line) if d.line else None
            severity = {"error": self.default_severity, "info": Severity.INFO}.get(
                d.level, Severity.LOW
            )
            what = {"error": "does not compile", "info": "note"}.get(
                d.level, "has an engine warning"
            )
            out.append(
                file_finding(
                    self.rule_id,
                    severity,
                    d.uri,
                    f"{d.uri}: {what}: {d.message} [{d.code}]",
                    {
                        "engine_message": d.text,
                        "code": d.code,
                        "level": d.level,
                        "highlight_lines": [d.line] if d.line else [],
                    },
                    line=d.line,
                    rule_name=rule.name if rule else None,
                )
            )
        compiled = set(ctx.compile_report.compiled_uris)
        for f in ctx.files:
            if f.parse_error or f.uri not in compiled:
                continue
            parsed = {r.name for r in f.rules}
            for name, line in rule_heads(f.text):
                if name not in parsed:
                    out.append(
                        file_finding(
                            self.rule_id,
                            Severity.MEDIUM,
                            f.uri,
                            f"{f.uri}: rule {name} compiles, but the independent parser did not "
                            "return it, so the other checks could not inspect it",
                            {"highlight_lines": [line]},
                            line=line,
                            rule_name=name,
                        )
                    )
        for f in ctx.files:
            if f.parse_error and f.uri in compiled:
                out.append(
                    file_finding(
                        self.rule_id,
                        Severity.MEDIUM,
                        f.uri,
                        f"{f.uri}: compiles, but the independent parser cannot read it, "
                        "so the other checks could not inspect its rules",
                        {"parser_error": f.parse_error[:500]},
                    )
                )
        return out

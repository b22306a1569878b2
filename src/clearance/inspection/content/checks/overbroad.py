"""``content.overbroad``: rules that match files of the clean corpus.

Every matching rule is reported with the files it matched (up to the
evidence cap, all counted) and the strings that matched.  Matching at least
``overbroad_critical_files`` clean files is critical: shipped to a fleet,
such a rule quarantines system files on every machine.
"""

from __future__ import annotations

from typing import Any

from clearance.inspection.content.checks._base import CheckContext, file_finding, rule_finding
from clearance.inspection.findings import Finding, Severity


class OverbroadCheck:
    rule_id = "content.overbroad"
    default_severity = Severity.HIGH
    description = "Matches clean files (mass false-positive risk)."

    def run(self, ctx: CheckContext) -> list[Finding]:
        scan = ctx.scan_report
        if scan is None:
            return []
        by_key = {(r.uri, r.name): r for r in ctx.rules()}
        kept: dict[tuple[str, str], list[dict[str, Any]]] = {}
        hit_ids: dict[tuple[str, str], set[str]] = {}
        for m in scan.matches:
            kept.setdefault((m.uri, m.rule_name), []).append(
                {"file": m.corpus_file, "strings": [list(s) for s in m.strings]}
            )
            hit_ids.setdefault((m.uri, m.rule_name), set()).update(s[0] for s in m.strings)
        out = []
        for key in sorted(scan.match_counts):
            count = scan.match_counts[key]
            severity = (
                Severity.CRITICAL
                if count >= ctx.settings.overbroad_critical_files
                else self.default_severity
            )
            evidence = {
                "matched_files": count,
                "corpus_files": scan.files_scanned,
                "examples": kept.get(key, []),
            }
            message = (
                f"rule {key[1]} matches {count} clean file(s), e.g. {kept[key][0]['file']}"
                if kept.get(key)
                else f"rule {key[1]} matches {count} clean file(s)"
            )
            rule = by_key.get(key)
            if rule is not None:
                ids = hit_ids.get(key, set())
                lines = [p.line for p in rule.patterns if p.identifier in ids and p.line]
                out.append(
                    rule_finding(ctx, self.rule_id, severity, rule, message, evidence, lines)
                )
            else:
                out.append(
                    file_finding(
                        self.rule_id, severity, key[0], message, evidence, rule_name=key[1]
                    )
                )
        return out

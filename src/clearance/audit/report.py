"""The audit report: SARIF 2.1.0 (one result per finding, ``audit.*`` rule ids), a plain-text
summary for terminals and mail, and a self-contained HTML page."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import jinja2

from clearance import __version__
from clearance.audit.auditor import AuditReport
from clearance.audit.rules import AUDIT_RULES, AuditFinding

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _result(finding: AuditFinding, origin: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "level": finding.severity.sarif_level,
        "message": {"text": finding.message},
        "properties": {"severity": finding.severity.label, "evidence": dict(finding.evidence)},
    }
    if finding.entry_index is not None:
        result["locations"] = [
            {
                "logicalLocations": [
                    {
                        "name": f"entry {finding.entry_index}",
                        "fullyQualifiedName": f"{origin}/entries/{finding.entry_index}",
                        "kind": "object",
                    }
                ]
            }
        ]
    return result


def to_sarif(report: AuditReport) -> dict[str, Any]:
    """SARIF 2.1.0: every audit rule in ``tool.driver.rules``, one result per finding."""
    rules = [
        {
            "id": rule.rule_id,
            "name": rule.title,
            "shortDescription": {"text": rule.title},
            "fullDescription": {"text": rule.description},
            "defaultConfiguration": {"level": rule.severity.sarif_level},
            "properties": {"severity": rule.severity.label},
        }
        for rule in AUDIT_RULES.values()
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "clearance-audit",
                        "version": __version__,
                        "informationUri": "https://clearance.dev/audit",
                        "rules": rules,
                    }
                },
                "results": [_result(f, report.origin) for f in report.findings],
                "properties": {
                    "log": report.origin,
                    "checkpointSize": report.checkpoint_size,
                    "auditedFrom": report.audited_from,
                    "auditedTo": report.audited_to,
                    "complete": report.complete,
                },
            }
        ],
    }


def sarif_bytes(report: AuditReport) -> bytes:
    return (json.dumps(to_sarif(report), indent=2, sort_keys=True) + "\n").encode()


def to_text(report: AuditReport) -> str:
    lines = [
        f"audit of {report.origin}: checkpoint size {report.checkpoint_size}, "
        f"{report.cosignatures} witness cosignature(s)",
        f"entries {report.audited_from}..{report.audited_to} audited in {report.seconds:.1f} s"
        + ("" if report.complete else " (incomplete: run again to resume)"),
        "seen so far: " + ", ".join(f"{n} {k}" for k, n in sorted(report.counts.items())),
    ]
    if not report.findings:
        lines.append("no new findings: clean")
        return "\n".join(lines)
    by_rule = Counter(f.rule_id for f in report.findings)
    alerts = len(report.findings) - len(report.discrepancies)
    if report.clean:
        lines.append(f"clean: no discrepancies, {alerts} alert(s):")
    else:
        lines.append(f"{len(report.discrepancies)} discrepancies, {alerts} alert(s):")
    for rule_id, count in sorted(by_rule.items()):
        lines.append(f"  {count:5d}  {rule_id}  {AUDIT_RULES[rule_id].title}")
    for finding in report.findings[:200]:
        lines.append(f"[{finding.severity.label}] {finding.rule_id}: {finding.message}")
    if len(report.findings) > 200:
        lines.append(f"... and {len(report.findings) - 200} more (see the SARIF file)")
    return "\n".join(lines)


_HTML = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Audit of {{ r.origin }}</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3em .5em;
text-align:left;vertical-align:top}.critical,.high{color:#a00;font-weight:600}.medium{color:#b60}
.low,.info{color:#555}code,pre{font:13px ui-monospace,monospace}pre{white-space:pre-wrap;margin:0}
.ok{color:#070;font-weight:600}
</style></head><body>
<h1>Audit of <code>{{ r.origin }}</code></h1>
<p>Checkpoint size {{ r.checkpoint_size }}, {{ r.cosignatures }} witness cosignature(s).
Entries {{ r.audited_from }}&ndash;{{ r.audited_to }} audited in {{ "%.1f"|format(r.seconds) }} s
{% if not r.complete %}(incomplete: run again to resume){% endif %}.</p>
<p>Seen so far: {% for k, n in counts %}{{ n }} {{ k }}{% if not loop.last %}, {% endif %}{% endfor %}.</p>
{% if not r.findings %}<p class="ok">No new findings: clean.</p>{% else %}
<h2>{{ r.discrepancies|length }} discrepancies, {{ r.findings|length - r.discrepancies|length }} alerts</h2>
<table><tr><th>severity</th><th>rule</th><th>entry</th><th>what</th></tr>
{% for f in r.findings %}<tr><td class="{{ f.severity.label }}">{{ f.severity.label }}</td>
<td><code>{{ f.rule_id }}</code><br>{{ rules[f.rule_id].title }}</td>
<td>{{ "" if f.entry_index is none else f.entry_index }}</td>
<td>{{ f.message }}{% if f.evidence %}<details><summary>evidence</summary>
<pre>{{ evidence(f) }}</pre></details>{% endif %}</td></tr>
{% endfor %}</table>{% endif %}
<h2>Rules</h2><table>{% for rule in rules.values() %}<tr><td><code>{{ rule.rule_id }}</code></td>
<td class="{{ rule.severity.label }}">{{ rule.severity.label }}</td><td>{{ rule.description }}</td></tr>
{% endfor %}</table></body></html>
"""
)


def to_html(report: AuditReport) -> str:
    return _HTML.render(
        r=report,
        counts=sorted(report.counts.items()),
        rules=AUDIT_RULES,
        evidence=lambda f: json.dumps(dict(f.evidence), indent=2, sort_keys=True, default=str),
    )

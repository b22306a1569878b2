"""The HTML report a person reads first: one self-contained, escaped page.

Summary by severity, the decision and why, the diff against the previous
release, every finding with its rule's text (lines highlighted) and
evidence, a plot of per-content-file scan cost (matplotlib, inline PNG), and
the generic sections of every inspector (``InspectionResult.report["sections"]``).
Jinja2 autoescaping is on: nothing from the release reaches the page unescaped.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import jinja2

from clearance.inspection._orchestrate import InspectionOutcome
from clearance.inspection.findings import Finding, Severity


def _cost_plot(costs: Sequence[Mapping[str, Any]], budget: float | None) -> str | None:
    """A horizontal bar chart of the costliest content files, as a data: URI (PNG)."""
    measured = [c for c in costs if float(c.get("ms_per_mib", 0.0)) >= 0][:25]
    if not measured:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    labels = [str(c["uri"])[-48:] for c in reversed(measured)]
    values = [float(c["ms_per_mib"]) for c in reversed(measured)]
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(values) + 1.4), dpi=90)
    ax.barh(range(len(values)), values, color="#4a78b5")
    ax.set_yticks(range(len(values)), labels, fontsize=7)
    ax.set_xlabel("extra scan time per MiB (ms), measured on the cost sample")
    if budget:
        ax.axvline(budget, color="#c0392b", linestyle="--", label=f"budget {budget:g} ms/MiB")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Scan cost per content file (costliest first)", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _finding_view(inspector: str, f: Finding) -> dict[str, Any]:
    loc = f.locations[0] if f.locations else None
    highlight = set(f.evidence.get("highlight_lines", []) or [])
    lines = []
    if loc is not None and loc.snippet:
        first = loc.start_line or 1
        for offset, text in enumerate(loc.snippet.splitlines()):
            number = first + offset
            lines.append({"number": number, "text": text, "hit": number in highlight})
    evidence = {k: v for k, v in f.evidence.items() if k != "highlight_lines"}
    return {
        "inspector": inspector,
        "rule_id": f.rule_id,
        "severity": f.severity.label,
        "message": f.message,
        "uri": loc.uri if loc else "",
        "rule_name": loc.logical_name if loc else None,
        "start_line": loc.start_line if loc else None,
        "lines": lines,
        "evidence": json.dumps(evidence, indent=2, sort_keys=True, ensure_ascii=False, default=str)
        if evidence
        else "",
    }


def _sections(outcome: InspectionOutcome) -> list[dict[str, Any]]:
    out = []
    for result in outcome.results:
        for section in result.report.get("sections", []) or []:
            if not isinstance(section, Mapping):
                continue
            out.append(
                {
                    "inspector": result.inspector,
                    "title": str(section.get("title", "")),
                    "paragraphs": [str(p) for p in section.get("paragraphs", []) or []],
                    "tables": [
                        {
                            "caption": str(t.get("caption", "")),
                            "columns": [str(c) for c in t.get("columns", []) or []],
                            "rows": [[str(c) for c in row] for row in t.get("rows", []) or []],
                        }
                        for t in section.get("tables", []) or []
                        if isinstance(t, Mapping)
                    ],
                    "code": [
                        {
                            "caption": str(c.get("caption", "")),
                            "lines": [
                                {
                                    "number": i + 1,
                                    "text": line,
                                    "hit": (i + 1) in set(c.get("highlight_lines", []) or []),
                                }
                                for i, line in enumerate(str(c.get("text", "")).splitlines())
                            ],
                        }
                        for c in section.get("code", []) or []
                        if isinstance(c, Mapping)
                    ],
                }
            )
    return out


def render_html(outcome: InspectionOutcome, budget_ms_per_mib: float | None = 100.0) -> str:
    """The report page for ``outcome``."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(
        resources.files("clearance.inspection")
        .joinpath("templates/report.html.j2")
        .read_text("utf-8")
    )
    by_severity = {s.label: 0 for s in sorted(Severity, reverse=True)}
    for _, f in outcome.findings:
        by_severity[f.severity.label] += 1
    costs: list[Mapping[str, Any]] = []
    diff = None
    scan = None
    for result in outcome.results:
        costs += list(result.report.get("costs", []) or [])
        diff = diff or result.report.get("diff")
        scan = scan or result.report.get("scan")
    return template.render(
        outcome=outcome,
        decision=outcome.decision.decision,
        reasons=outcome.decision.reasons,
        by_severity=by_severity,
        summary=outcome.summary,
        findings=[_finding_view(name, f) for name, f in outcome.findings],
        diff=diff,
        cost_plot=_cost_plot(
            sorted(costs, key=lambda c: -float(c.get("ms_per_mib", 0))), budget_ms_per_mib
        ),
        costs=costs[:25],
        sections=_sections(outcome),
        engines=sorted(outcome.engines.items()),
        sarif_sha256=outcome.sarif_sha256,
    )

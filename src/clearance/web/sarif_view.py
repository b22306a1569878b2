"""A SARIF 2.1.0 log as rows a person reads: rule id, severity, the rule's text, the
message, the offending lines and the evidence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SourceLine:
    number: int
    text: str


@dataclass(frozen=True)
class FindingView:
    rule_id: str
    severity: str
    rule_title: str
    rule_text: str
    message: str
    uri: str
    logical_name: str
    lines: tuple[SourceLine, ...] = ()
    evidence: Mapping[str, Any] = field(default_factory=dict)


def _text(obj: Any, key: str) -> str:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    if isinstance(value, Mapping):
        value = value.get("text")
    return value if isinstance(value, str) else ""


def findings_of(sarif: Any) -> list[FindingView]:
    """Every result of every run, with its rule's description; tolerant of missing parts
    (a SARIF file from another tool still renders)."""
    out: list[FindingView] = []
    runs = sarif.get("runs") if isinstance(sarif, Mapping) else None
    for run in runs if isinstance(runs, list) else []:
        if not isinstance(run, Mapping):
            continue
        driver = (
            run.get("tool", {}).get("driver", {}) if isinstance(run.get("tool"), Mapping) else {}
        )
        rules = {r.get("id"): r for r in driver.get("rules", []) or [] if isinstance(r, Mapping)}
        for result in run.get("results", []) or []:
            if not isinstance(result, Mapping):
                continue
            rule_id = str(result.get("ruleId", "?"))
            rule = rules.get(rule_id, {})
            props = (
                result.get("properties") if isinstance(result.get("properties"), Mapping) else {}
            )
            assert isinstance(props, Mapping)
            uri, logical, lines = "", "", []
            locations = result.get("locations") or []
            if isinstance(locations, list) and locations and isinstance(locations[0], Mapping):
                loc = locations[0]
                physical = loc.get("physicalLocation") or {}
                uri = str((physical.get("artifactLocation") or {}).get("uri", ""))
                region = physical.get("region") or {}
                start = region.get("startLine")
                snippet = _text(region, "snippet")
                if isinstance(start, int) and snippet:
                    lines = [SourceLine(start + i, t) for i, t in enumerate(snippet.splitlines())]
                logicals = loc.get("logicalLocations") or []
                if isinstance(logicals, list) and logicals and isinstance(logicals[0], Mapping):
                    logical = str(logicals[0].get("name", ""))
            evidence = props.get("evidence")
            out.append(
                FindingView(
                    rule_id=rule_id,
                    severity=str(props.get("severity") or result.get("level") or "warning"),
                    rule_title=_text(rule, "shortDescription") or str(rule.get("name", "")),
                    rule_text=_text(rule, "fullDescription"),
                    message=_text(result, "message"),
                    uri=uri,
                    logical_name=logical,
                    lines=tuple(lines),
                    evidence=dict(evidence) if isinstance(evidence, Mapping) else {},
                )
            )
    return out

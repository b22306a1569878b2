"""SARIF 2.1.0 for the findings of every inspector.

One run, tool ``clearance-inspect`` with every finding id of the contract as
a reporting descriptor, the engine versions as tool extensions, and one
result per finding.  Nothing run-dependent goes in (no time, no host, no
absolute work paths, no raw timings): the same findings always give the
same bytes, so an auditor can re-run the inspection and compare digests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from clearance import __version__
from clearance.inspection.findings import FINDING_KINDS, Finding, Location

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "clearance-inspect"
TOOL_URI = "https://clearance.dev/inspection"
_RULE_IDS = sorted(FINDING_KINDS)


def _location(loc: Location) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": loc.uri or "release"}}
    if loc.start_line:
        region: dict[str, Any] = {"startLine": loc.start_line}
        if loc.end_line and loc.end_line >= loc.start_line:
            region["endLine"] = loc.end_line
        if loc.snippet:
            region["snippet"] = {"text": loc.snippet}
        physical["region"] = region
    out: dict[str, Any] = {"physicalLocation": physical}
    if loc.logical_name:
        out["logicalLocations"] = [{"name": loc.logical_name, "kind": "member"}]
    return out


def fingerprint(finding: Finding) -> str:
    """Stable identity of a finding across runs (id, place, message)."""
    first = finding.locations[0] if finding.locations else Location("")
    text = "\x00".join((finding.rule_id, first.uri, first.logical_name or "", finding.message))
    return hashlib.sha256(text.encode()).hexdigest()


def _result(finding: Finding, inspector: str | None) -> dict[str, Any]:
    props: dict[str, Any] = {"severity": finding.severity.label}
    if inspector:
        props["inspector"] = inspector
    if finding.evidence:
        props["evidence"] = finding.evidence
    return {
        "ruleId": finding.rule_id,
        "ruleIndex": _RULE_IDS.index(finding.rule_id),
        "level": finding.severity.sarif_level,
        "message": {"text": finding.message},
        "locations": [_location(loc) for loc in finding.locations]
        or [_location(Location("release"))],
        "partialFingerprints": {"clearanceFinding/v1": fingerprint(finding)},
        "properties": props,
    }


def to_sarif(
    findings: Sequence[Finding | tuple[str, Finding]],
    engines: Mapping[str, str],
    properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The SARIF log as a dict (deterministic order of everything).

    ``findings`` may be bare findings or ``(inspector name, finding)`` pairs.
    """
    pairs = [item if isinstance(item, tuple) else ("", item) for item in findings]
    pairs.sort(key=lambda p: (p[1].sort_key(), p[0]))
    rules = []
    for rule_id in _RULE_IDS:
        kind = FINDING_KINDS[rule_id]
        rules.append(
            {
                "id": rule_id,
                "name": kind.title,
                "shortDescription": {"text": kind.title},
                "fullDescription": {"text": kind.description},
                "defaultConfiguration": {"level": kind.default_severity.sarif_level},
                "properties": {"defaultSeverity": kind.default_severity.label},
            }
        )
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": __version__,
                "informationUri": TOOL_URI,
                "rules": rules,
            },
            "extensions": [
                {"name": name, "version": version} for name, version in sorted(engines.items())
            ],
        },
        "columnKind": "unicodeCodePoints",
        "results": [_result(f, name or None) for name, f in pairs],
    }
    if properties:
        run["properties"] = dict(properties)
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def sarif_bytes(log: Mapping[str, Any]) -> bytes:
    """Canonical bytes: sorted keys, fixed indentation, UTF-8, final newline."""
    return (
        json.dumps(log, sort_keys=True, indent=2, ensure_ascii=False, default=str) + "\n"
    ).encode()


def summary(findings: Sequence[Finding]) -> dict[str, dict[str, int]]:
    """{ruleId: {severity: count}} -- the verdict statement's findings field."""
    out: dict[str, dict[str, int]] = {}
    for f in findings:
        by = out.setdefault(f.rule_id, {})
        by[f.severity.label] = by.get(f.severity.label, 0) + 1
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}

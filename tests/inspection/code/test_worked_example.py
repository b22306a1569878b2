"""The worked example (examples/agent): version 2 quietly uploads documents; it is rejected."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from clearance.inspection.base import InspectionInput
from clearance.inspection.code import code_inspectors
from clearance.inspection.code._capa_runner import CapaEngine
from clearance.inspection.findings import Finding

from .conftest import NullProgress, artifact, need_tool

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "agent"


def _build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agent_example_build", EXAMPLE / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_v2_is_rejected_naming_capability_endpoint_and_lines(
    tmp_path: Path, capa_rules: Path, engine: CapaEngine
) -> None:
    need_tool("make")
    need_tool("unshare")
    build = _build_module()
    v1, v2 = build.build_version("v1", tmp_path), build.build_version("v2", tmp_path)

    def release(d: Path) -> tuple:  # type: ignore[type-arg]
        return (artifact(d / "agent", "binary"), artifact(d / "agent-src.tar.gz", "source"))

    inp = InspectionInput(
        product="agent",
        version="2",
        artifacts=release(v2),
        previous_artifacts=release(v1),
        declared_endpoints=tuple((v2 / "endpoints.txt").read_text().split()),
        build_recipes=json.loads((v2 / "recipes.json").read_text()),
        work_dir=tmp_path / "work",
        cache_dir=tmp_path / "cache",
    )
    findings: list[Finding] = []
    sections = []
    for inspector in code_inspectors(capa_rules):
        result = inspector.inspect(inp, NullProgress())
        findings.extend(result.findings)
        sections.extend(result.report["sections"])

    by_id = {f.rule_id: f for f in findings}
    # The binary is honest about its source: it rebuilds bit for bit.
    assert "binary.not-reproducible" not in by_id
    capability = by_id["binary.capability-added"]
    assert capability.evidence["category"] == "network"
    assert "gains network communication" in capability.message
    assert capability.severity.label == "critical"
    assert "docs-sync.example.net" in capability.evidence["undeclared_endpoints"]
    source_lines = {(s["file"], s["line"]) for s in capability.evidence["source_lines"]}
    assert ("agent.c", 40) in source_lines  # getaddrinfo("docs-sync.example.net", ...)
    endpoint = by_id["binary.undeclared-endpoint"]
    assert endpoint.evidence["host"] == "docs-sync.example.net"
    assert endpoint.severity.label == "critical"
    places = {(loc.uri, loc.start_line) for loc in endpoint.locations}
    assert ("agent.c", 40) in places
    assert any(loc.uri == "agent" and loc.logical_name for loc in endpoint.locations)
    titles = [s["title"] for s in sections]
    assert "Source review of agent-src.tar.gz" in titles

    # The shipped verdict policy turns these findings into a rejection.
    from clearance.inspection.policy import default_policy

    decision = default_policy().decide(findings)
    assert decision.decision == "rejected"

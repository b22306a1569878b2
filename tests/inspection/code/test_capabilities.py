"""capa over tiny binaries compiled here (rules loaded once per session)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from clearance.inspection.base import InspectionInput
from clearance.inspection.code import CapabilityInspector
from clearance.inspection.code._capa_runner import CapaEngine
from clearance.inspection.code._categories import category_of

from .conftest import NullProgress, artifact, compile_c

PLAIN = r"""
#include <stdio.h>
int main(int argc, char **argv) { printf("%d\n", argc); return 0; }
"""

LISTS_FILES = r"""
#include <dirent.h>
#include <stdio.h>
int main(void) {
    DIR *d = opendir("/home");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) puts(e->d_name);
    return 0;
}
"""


def test_new_capability_is_a_finding_with_attack_id(
    tmp_path: Path, engine: CapaEngine, capa_rules: Path, make_input: Callable[..., InspectionInput]
) -> None:
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    old = compile_c(PLAIN, tmp_path / "v1" / "tool")
    new = compile_c(LISTS_FILES, tmp_path / "v2" / "tool")
    inp = make_input((artifact(new, "binary"),), (artifact(old, "binary"),))
    progress = NullProgress()
    result = CapabilityInspector(capa_rules).inspect(inp, progress)
    [finding] = [f for f in result.findings if f.evidence["category"] == "file-collection"]
    assert finding.rule_id == "binary.capability-added"
    assert finding.severity.label == "high"
    assert "gains file collection and upload" in finding.message
    rules = {r["rule"]: r for r in finding.evidence["rules"]}
    assert "enumerate files on Linux" in rules
    assert any("T1083" in a for a in rules["enumerate files on Linux"]["attack"])
    assert all(a.startswith("0x") for a in rules["enumerate files on Linux"]["addresses"])
    assert "readdir" in finding.evidence["new_imports"]
    assert result.engines["flare-capa"]
    assert progress.started == ["capa: analysing binaries"]

    # Results are cached by digest: the cache file holds exactly what was reported.
    cached = sorted((tmp_path / "cache" / "capa").glob(f"{artifact(new, 'binary').sha256}-*.json"))
    assert len(cached) == 1
    assert json.loads(cached[0].read_text())["capabilities"]
    again = CapabilityInspector(capa_rules).inspect(inp, NullProgress())
    assert again.findings == result.findings


def test_same_binary_again_has_no_finding(
    tmp_path: Path, capa_rules: Path, engine: CapaEngine, make_input: Callable[..., InspectionInput]
) -> None:
    (tmp_path / "a").mkdir()
    binary = compile_c(LISTS_FILES, tmp_path / "a" / "tool")
    inp = make_input((artifact(binary, "binary"),), (artifact(binary, "binary"),))
    result = CapabilityInspector(capa_rules).inspect(inp, NullProgress())
    assert result.findings == ()
    rows = result.report["sections"][0]["tables"][0]["rows"]
    assert any(row[0] == "enumerate files on Linux" and row[4] == "unchanged" for row in rows)


def test_non_executable_is_reported_not_fatal(
    tmp_path: Path, capa_rules: Path, engine: CapaEngine, make_input: Callable[..., InspectionInput]
) -> None:
    script = tmp_path / "tool.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    result = CapabilityInspector(capa_rules).inspect(
        make_input((artifact(script, "binary"),)), NullProgress()
    )
    assert result.findings == ()
    assert "could not analyse" in " ".join(result.report["sections"][0]["paragraphs"])


def test_categories() -> None:
    assert category_of("collection/keylog", "log keystrokes").id == "keylogging"  # type: ignore[union-attr]
    assert category_of("communication/c2/file-transfer", "x").id == "file-collection"  # type: ignore[union-attr]
    assert category_of("communication/c2/shell", "x").id == "process"  # type: ignore[union-attr]
    assert category_of("communication/socket/tcp", "x").id == "network"  # type: ignore[union-attr]
    assert category_of("load-code/shellcode", "x").id == "code-loading"  # type: ignore[union-attr]
    assert category_of("persistence/registry/run", "x").id == "persistence"  # type: ignore[union-attr]
    assert category_of("host-interaction/process/inject", "x").id == "injection"  # type: ignore[union-attr]
    assert category_of("communication/named-pipe/create", "x") is None
    assert category_of("data-manipulation/hashing/sha256", "hash data") is None


def test_isolated_analysis_matches_and_timeout_is_a_finding(
    tmp_path: Path, capa_rules: Path, engine: CapaEngine, make_input: Callable[..., InspectionInput]
) -> None:
    (tmp_path / "b").mkdir()
    binary = compile_c(LISTS_FILES, tmp_path / "b" / "tool")
    in_process = engine.analyse(binary, "x" * 64)
    isolated = engine.analyse(binary, "x" * 64, isolate_over_bytes=0)
    assert isolated == in_process

    inp = make_input((artifact(binary, "binary"),))
    inspector = CapabilityInspector(capa_rules, isolate_over_bytes=0, wall_seconds=0.5)
    [finding] = inspector.inspect(inp, NullProgress()).findings
    assert finding.severity.label == "medium"
    assert "could not be determined" in finding.message
    assert finding.evidence["error"].startswith("capa failed: timeout")
    assert not list((tmp_path / "cache" / "capa").glob("*.json"))  # failures are not cached

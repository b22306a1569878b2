"""The rule analysis runs in a sandboxed child under the engine's limits.

A hostile rule set (a rule with an enormous number of strings) must become a
``content.engine-crash`` finding on its file (stage ``analysis``), never a hung
inspector, and the other files of the release must still be analysed.
"""

from __future__ import annotations

from pathlib import Path

from clearance.inspection.content import analysis_sandbox
from clearance.inspection.content.checks import default_checks
from clearance.inspection.content.checks._base import CheckSettings
from clearance.inspection.content.inspector import ContentInspector
from clearance.inspection.content.model import TEXT, ContentRule, RuleFile, RulePattern
from clearance.inspection.findings import Severity
from clearance.inspection.sandbox import Limits
from inspection._helpers import inspect_rules

TIGHT = Limits(cpu_seconds=2, address_space_bytes=2 * 2**30, wall_seconds=60)


def _file(uri: str, rules: list[ContentRule]) -> RuleFile:
    return RuleFile(uri, Path(uri), "yara", "", tuple(rules))


def _hostile(strings: int) -> ContentRule:
    patterns = tuple(
        RulePattern(f"$s{i}", TEXT, f"Qx{i:07d} zv{i * 7919 % 100003:06d} kw", line=3)
        for i in range(strings)
    )
    return ContentRule(
        "Many_Strings", "hostile.yar", 1, 3, patterns, "any of them", ("any", "of", "them")
    )


def _marked(uri: str = "honest.yar") -> ContentRule:
    pattern = RulePattern("$a", TEXT, "TOP SECRET//NOFORN", line=2)
    return ContentRule("Marked", uri, 1, 3, (pattern,), "$a", ("$a",))


def test_hostile_file_is_a_finding_and_the_others_are_still_analysed() -> None:
    checks = [c for c in default_checks() if analysis_sandbox.is_sandboxed(c)]
    files = [
        _file("a-honest.yar", [_marked("a-honest.yar")]),
        _file("hostile.yar", [_hostile(60_000)]),
    ]
    files.append(_file("z-honest.yar", [_marked("z-honest.yar")]))
    per_check, failures = analysis_sandbox.run_sandboxed_checks(
        checks, files, {}, CheckSettings(), TIGHT
    )
    assert [f.locations[0].uri for f in failures] == ["hostile.yar"]
    failure = failures[0]
    assert failure.rule_id == "content.engine-crash"
    assert failure.severity == Severity.CRITICAL
    assert failure.evidence["stage"] == "analysis"
    assert failure.evidence["status"] in ("cpu-limit", "timeout", "out-of-memory")
    hunting = [f for found in per_check for f in found if f.rule_id == "content.document-hunting"]
    assert sorted(f.locations[0].uri for f in hunting) == ["a-honest.yar", "z-honest.yar"]


def test_the_same_rules_pass_under_the_default_limits_with_the_same_findings() -> None:
    checks = [c for c in default_checks() if analysis_sandbox.is_sandboxed(c)]
    files = [_file("honest.yar", [_marked()])]
    per_check, failures = analysis_sandbox.run_sandboxed_checks(checks, files, {}, CheckSettings())
    assert failures == []
    in_process = [c.run(_context(files)) for c in checks]
    assert per_check == in_process


def _context(files: list[RuleFile]) -> analysis_sandbox.CheckContext:
    return analysis_sandbox.CheckContext(tuple(files), analysis_sandbox._EMPTY_COMPILE, None)


def test_inspector_reports_a_rule_set_whose_analysis_exceeds_the_limits(tmp_path: Path) -> None:
    # Far over the one CPU second allowed on any machine: 8,000 strings analysed in about
    # a second on a fast one (30 November 2026), so the limit was not always reached.
    strings = "\n".join(
        f'    $s{i} = "Qx{i:07d} zv{i * 7919 % 100003:06d} kw"' for i in range(30_000)
    )
    hostile = f"rule Many_Strings {{\n  strings:\n{strings}\n  condition:\n    any of them\n}}\n"
    honest = 'rule Marked {\n  strings:\n    $a = "TOP SECRET//NOFORN"\n  condition:\n    $a\n}\n'
    inspector = ContentInspector(
        analysis_limits=Limits(cpu_seconds=1, address_space_bytes=2 * 2**30, wall_seconds=60)
    )
    findings = inspect_rules(
        tmp_path, {"hostile.yar": hostile, "honest.yar": honest}, inspector=inspector
    )
    crashes = [
        f
        for f in findings
        if f.rule_id == "content.engine-crash" and f.evidence.get("stage") == "analysis"
    ]
    assert [f.locations[0].uri for f in crashes] == ["hostile.yar"]
    assert any(
        f.rule_id == "content.document-hunting" and f.locations[0].logical_name == "Marked"
        for f in findings
    )

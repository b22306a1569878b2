"""The sandboxed plyara parse (strings lexed as runs) gives exactly stock plyara's result."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import plyara
import pytest

from clearance.inspection.content import _yara_child

EDGE_CASES = [
    r'rule a { strings: $a = "ab\"c\\d\x41" $b = "tab	run, é ü" wide condition: $a or $b }',
    r'rule a { strings: $a = "bad hex \x4g" condition: $a }',
    r'rule a { strings: $a = "short hex \x4" condition: $a }',
    r'rule a { strings: $a = "ends in escape \x" condition: $a }',
    r'rule a { strings: $a = "bad escape \q" condition: $a }',
    r"rule a { strings: $a = /ab\/c\x41[a-z]+\\/ $b = /x\x4g/ condition: $a or $b }",
    r"rule a { strings: $a = /ab\xZZ/is condition: $a }",
    r"rule a { strings: $a = { 4D 5A [2-4] ( 90 | ?? ) ~00 6? } condition: $a }",
    r"rule a { strings: $a = { 4D 5 } condition: $a }",
    "rule a { strings: $a = { 4D5A\n 9000 // c\n /* x */ AB } condition: $a }",
    'rule a { strings: $a = "line\nbreak" condition: $a }',
    r'rule a { meta: d = "x\"y" strings: $a = /a\/b/ condition: $a and #a > 2 }',
]


def _stock(text: str) -> dict[str, Any]:
    parser = plyara.Plyara(store_raw_sections=True)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            rules = parser.parse_string(text.replace("\r\n", "\n").replace("\r", "\n"))
        return {"rules": [_yara_child._rule_dict(r) for r in rules], "error": ""}
    except Exception as exc:
        return {"rules": [], "error": f"{type(exc).__name__}: {exc}"}


def _ours(paths: list[Path]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    _yara_child.parse_files({"files": [[p.name, str(p)] for p in paths]}, out.append)
    return [{"rules": e["rules"], "error": e["error"]} for e in out]


def test_edge_cases_parse_and_fail_exactly_as_stock_plyara(tmp_path: Path) -> None:
    paths = []
    for number, text in enumerate(EDGE_CASES):
        path = tmp_path / f"case{number}.yar"
        path.write_text(text)
        paths.append(path)
    # One parser for all files, as in the sandbox: each file starts from a clean state.
    assert _ours(paths) == [_stock(t) for t in EDGE_CASES]
    assert sum(1 for t in EDGE_CASES if _stock(t)["error"]) >= 5


def test_real_rules_parse_as_stock_plyara(shared_dir: Path) -> None:
    folder = shared_dir / "rulesets/signature-base/yara"
    if not folder.is_dir():
        pytest.skip("needs ../shared/rulesets/signature-base")
    paths = sorted(folder.glob("*.ya*"))[::25]
    expected = [_stock(p.read_bytes().decode("utf-8", "replace")) for p in paths]
    assert _ours(paths) == expected
    assert sum(len(e["rules"]) for e in expected) > 50

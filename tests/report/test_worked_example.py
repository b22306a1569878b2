"""The report and the monitor over the log the worked example's gateway wrote."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from clearance.cli import main

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("demo") / "data"
    env = {**os.environ, "CLEARANCE_DEMO_ONCE": "1", "PORT": str(_free_port())}
    done = subprocess.run(
        [sys.executable, "-m", "clearance.demo", "--data", str(data)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return data


def test_worked_example_report(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    code = main(
        [
            "report",
            str(demo / "gateway" / "log"),
            "--trust-root",
            str(demo / "trust-root.json"),
            "--from",
            "2000-01-01",
            "--to",
            "2099-12-31",
            "--out",
            str(out),
            "--key",
            str(demo / "keys" / "policy.key"),
            "--json",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 0, result
    assert result["releases"] == 1 and result["withheld"] == 1 and result["redFlags"] == 0
    assert result["witnessesCosigned"] == 2 and result["auditClean"]
    assert set(result["files"]) == {"report.html", "report.pdf", "summary.json", "report.dsse.json"}
    html = (out / "report.html").read_text()
    assert "us-2024-av-restriction" in html and "withheld from us-hospital (US)" in html


def test_worked_example_monitor_alerts_only_on_the_policy(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "monitor",
        str(demo / "gateway" / "log"),
        "--trust-root",
        str(demo / "trust-root.json"),
        "--state",
        str(tmp_path / "state"),
        "--once",
    ]
    assert main(args) == 1
    alerts = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [a["ruleId"] for a in alerts] == ["monitor.policy-change"]
    assert main(args) == 0

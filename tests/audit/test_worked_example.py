"""The auditor on the log a real gateway wrote: the worked example (``make run`` in --once
mode) leaves a gateway data directory whose every entry must be recognised and verify."""

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


def test_worked_example_log_audits_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "demo-data"
    env = {**os.environ, "CLEARANCE_DEMO_ONCE": "1", "PORT": str(_free_port())}
    demo = subprocess.run(
        [sys.executable, "-m", "clearance.demo", "--data", str(data)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    code = main(
        [
            "audit",
            str(data / "gateway" / "log"),
            "--trust-root",
            str(data / "trust-root.json"),
            "--state",
            str(tmp_path / "state"),
            "--no-reinspect",
            "--quiet",
            "--json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report["findings"]
    assert report["findings"] == [] and report["complete"]
    assert report["cosignatures"] >= 2  # the demo's two witnesses cosigned the checkpoint
    assert report["counts"]["releases"] >= 1 and report["counts"]["verdicts"] >= 1

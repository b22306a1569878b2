"""``make run`` in --once mode: the whole worked example, real parties on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_runs_to_completion_as_make_run_does(tmp_path: Path) -> None:
    env = {**os.environ, "CLEARANCE_DEMO_ONCE": "1", "PORT": str(_free_port())}
    proc = subprocess.run(
        [sys.executable, "-m", "clearance.demo", "--data", str(tmp_path / "demo-data")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "verdict by inspector: approved" in out
    assert "installed" in out and "witnessed by witness-1, witness-2" in out
    assert "withheld: True; rule 'no-updates'" in out
    assert "started canary" in out and "completed broad" in out
    assert f"http://127.0.0.1:{env['PORT']}/" in out
    installed = tmp_path / "demo-data" / "client" / "installed"
    assert (installed / "demo_rules.yar").is_file()
    assert (installed / "gen_mimikatz.yar").is_file()  # the attributed signature-base subset
    if shutil.which("clamscan"):  # the ClamAV database update beside the YARA rules
        assert (installed / "demo_signatures.ndb").is_file()
    # The data directory is a real gateway store that a second server can reopen.
    assert json.loads((tmp_path / "demo-data" / "gateway" / "tokens.json").read_text())


def test_demo_refuses_to_delete_a_folder_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    proc = subprocess.run(
        [sys.executable, "-m", "clearance.demo", "--data", str(precious), "--once"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "refusing to delete" in proc.stderr
    assert (precious / "thesis.tex").read_text() == "years of work"

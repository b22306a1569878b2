"""The worked example (``make run`` in --once mode) as a fixture: its data folder, its
tokens, and a gateway serving it again on an OS-chosen port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Screenshots are kept here (CI uploads the folder); CLEARANCE_TEST_ARTIFACTS overrides.
ARTIFACTS = Path(os.environ.get("CLEARANCE_TEST_ARTIFACTS", REPO / "test-artifacts"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_worked_example(data: Path) -> dict[str, str]:
    """Run the worked example into ``data``; the gateway's role tokens."""
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
    tokens: dict[str, str] = json.loads((data / "gateway" / "tokens.json").read_text())
    return tokens

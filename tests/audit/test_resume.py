"""kill -9 in the middle of ``clearance audit``: the next run resumes from the last commit and
reports exactly what an uninterrupted audit reports."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from audit.helpers import World
from clearance.attest import Artifact, create_release, create_verdict
from clearance.keys import Signer


def audited(state: Path) -> int:
    db = state / "audit.sqlite3"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'audited'").fetchone()
    except sqlite3.Error:
        return 0
    return 0 if row is None else int(row[0])


def test_kill_9_mid_audit_then_resume(world: World, tmp_path: Path) -> None:
    stranger = Signer.generate("stranger.example")
    entries: list[bytes] = []
    for i in range(1500):
        artifact = Artifact(f"r{i}.yar", f"{i:064x}", 10, "content")
        signer = stranger if i in (700, 1400) else world.vendor
        rel = create_release(
            product="agent",
            version=f"1.{i}.0",
            channel="stable",
            artifacts=[artifact],
            signers=signer,
        )
        entries += [
            rel.to_bytes(),
            create_verdict(
                rel,
                "approved",
                signers=world.inspector,
                inspected_at="2026-11-22T00:00:00Z",
            ).to_bytes(),
        ]
    world.append(*entries)
    root = world.write_trust_root()
    clearance = str(Path(sys.executable).with_name("clearance"))

    def cmd(state: Path) -> list[str]:
        return [
            clearance,
            "audit",
            str(world.logdir),
            "--trust-root",
            str(root),
            "--state",
            str(state),
            "--no-reinspect",
            "--json",
        ]

    state = tmp_path / "killed"
    proc = subprocess.Popen(cmd(state), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while audited(state) < 512 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = audited(state)
    assert 0 < done_before < len(entries), "the kill must land mid-audit"
    resumed = subprocess.run(cmd(state), capture_output=True, check=False)
    assert resumed.returncode == 1
    report = json.loads(resumed.stdout)
    assert report["audited_from"] == done_before and report["audited_to"] == len(entries)
    fresh = subprocess.run(cmd(tmp_path / "fresh"), capture_output=True, check=False)
    expected = json.loads(fresh.stdout)
    key = lambda f: (f["ruleId"], f["entryIndex"])  # noqa: E731
    assert sorted(map(key, report["findings"])) == sorted(map(key, expected["findings"]))
    assert sorted(map(key, report["findings"])) == [
        ("audit.bad-signature", 1400),
        ("audit.bad-signature", 2800),
    ]
    assert report["counts"] == expected["counts"]

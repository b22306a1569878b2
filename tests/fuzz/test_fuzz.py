"""The fuzzing campaign's CI budget (issue 12).

- every seed and every kept crash (``regressions/<target>/``) replays through its
  target in-process: accepted or refused with a ClearanceError, nothing else;
- every atheris harness runs, coverage-guided, for about two seconds each, all in one
  process (``make fuzz`` runs each on its own for 100,000 inputs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.targets import TARGETS, run_one

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent


def _inputs(target: str) -> list[Path]:
    return sorted(
        p
        for kind in ("corpus", "regressions")
        for p in (HERE / kind / target).glob("*")
        if p.is_file()
    )


def test_every_target_has_seeds() -> None:
    assert {p.name for p in (HERE / "corpus").iterdir()} == set(TARGETS)
    assert all(_inputs(t) for t in TARGETS)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_seeds_and_regressions_replay_cleanly(target: str) -> None:
    for path in _inputs(target):
        run_one(target, path.read_bytes())


def test_atheris_short_run_of_every_harness(tmp_path: Path) -> None:
    """Every harness, coverage-guided, in one process (the first byte picks the target)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent / "src"), str(TESTS)])}
    seconds = 2 * len(TARGETS)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "fuzz.run",
            "all",
            "--seconds",
            str(seconds),
            "--work",
            str(tmp_path),
        ],
        cwd=TESTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "stat::number_of_executed_units" in run.stderr

"""Command-line start-up: ``clearance --help`` and a few commands' ``--help``, wall clock.

Each figure is the median of N fresh processes (``python -m clearance ...``
with this checkout first on ``PYTHONPATH``), beside a bare ``python -c pass``
measured in the same run, so the interpreter's own start-up is visible.  The
target is ``clearance --help`` under 0.3 s: the heavy engines (lief, capa,
yara-x, httpx, rich) are imported only by the command that needs them.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 0.3


def _median_seconds(argv: list[str], runs: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(quick: bool) -> str:
    runs = 5 if quick else 21
    python = sys.executable
    rows = [
        ("`python -c pass` (the interpreter alone)", [python, "-c", "pass"]),
        ("`clearance --help`", [python, "-m", "clearance", "--help"]),
        ("`clearance log --help`", [python, "-m", "clearance", "log", "--help"]),
        ("`clearance verify --help`", [python, "-m", "clearance", "verify", "--help"]),
        ("`clearance inspect --help`", [python, "-m", "clearance", "inspect", "--help"]),
    ]
    results = [(label, _median_seconds(argv, runs)) for label, argv in rows]
    top = results[1][1]
    lines = [
        f"Median wall-clock time of {runs} fresh processes each; target: `clearance --help` "
        f"under {TARGET_SECONDS} s.",
        "",
        "| command | seconds |",
        "| --- | ---: |",
        *(f"| {label} | {seconds:.3f} |" for label, seconds in results),
        "",
        f"`clearance --help`: {top:.3f} s, "
        + ("within" if top < TARGET_SECONDS else "**over**")
        + f" the {TARGET_SECONDS} s target.",
    ]
    return "\n".join(lines)

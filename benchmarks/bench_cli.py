"""Command-line start-up: ``clearance --help`` and a few commands' ``--help``, wall clock.

Each figure is the median of N fresh processes (``python -m clearance ...``
with this checkout first on ``PYTHONPATH``), beside a bare ``python -c pass``
measured in the same run, so the interpreter's own start-up is visible.  The
target is ``clearance --help`` under 0.3 s: the heavy engines (lief, capa,
yara-x, httpx, rich) are imported only by the command that needs them.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 0.3


def _median_seconds(argv: list[str], runs: int) -> tuple[float, float]:
    """Median wall-clock and CPU (user + system) seconds of ``runs`` fresh processes.

    The CPU time does not grow when other jobs share the machine; the wall clock does."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


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
    results = [(label, *_median_seconds(argv, runs)) for label, argv in rows]
    top_wall, top_cpu = results[1][1], results[1][2]
    load = os.getloadavg()[0]
    lines = [
        f"Median of {runs} fresh processes each (load average {load:.1f} on "
        f"{os.cpu_count()} cores during the run); target: `clearance --help` under "
        f"{TARGET_SECONDS} s.",
        "",
        "| command | wall-clock s | CPU s |",
        "| --- | ---: | ---: |",
        *(f"| {label} | {wall:.3f} | {cpu:.3f} |" for label, wall, cpu in results),
        "",
        f"`clearance --help`: {top_wall:.3f} s wall clock ({top_cpu:.3f} s CPU), "
        + ("within" if top_wall < TARGET_SECONDS else "**over**")
        + f" the {TARGET_SECONDS} s target.",
    ]
    return "\n".join(lines)

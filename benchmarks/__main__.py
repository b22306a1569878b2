"""Run the benchmarks and rebuild BENCHMARKS.md.

Each ``benchmarks/bench_<name>.py`` defines ``run(quick: bool) -> str``: it
measures, compares with the peer its issue names in the same run, and returns
a Markdown section.  The section is kept in ``benchmarks/results/<name>.md``
so that running one benchmark does not erase the others' figures;
BENCHMARKS.md is then rebuilt from every kept section with the machine it
ran on.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
OUTPUT = HERE.parent / "BENCHMARKS.md"


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB memory; "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}"
    )


def _names() -> list[str]:
    return sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(HERE)])
        if m.name.startswith("bench_")
    )


def rebuild() -> None:
    sections = [p.read_text() for p in sorted(RESULTS.glob("*.md"))]
    header = (
        "# Benchmarks\n\n"
        "Produced by `make bench` (`python -m benchmarks`); each section names the machine, "
        "the date it was measured and the peer it is compared with in the same run.\n\n"
    )
    OUTPUT.write_text(header + "\n".join(sections))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--only", action="append", choices=_names(), help="run only these")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    for name in args.only or _names():
        module = importlib.import_module(f"benchmarks.bench_{name}")
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        body = module.run(quick=args.quick)
        stamp = f"_Measured {started} on {_machine()}._\n\n"
        (RESULTS / f"{name}.md").write_text(f"## {name}\n\n{stamp}{body.strip()}\n")
        print(f"benchmark {name}: done", file=sys.stderr)
    rebuild()
    print(f"wrote {OUTPUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

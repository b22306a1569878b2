"""Run one fuzz target under atheris (coverage-guided, libFuzzer).

    PYTHONPATH=src:tests python -m fuzz.run TARGET [--runs N | --seconds S] [--work DIR]

The committed seed corpus is copied into a working corpus (default
``.fuzz/<target>/``, not committed) that libFuzzer grows; a crashing input is
written to ``tests/fuzz/crashes/<target>/`` -- move it to
``tests/fuzz/regressions/<target>/`` once fixed, where the pytest replay keeps
it as a regression test.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target")
    parser.add_argument("--runs", type=int, default=100_000, help="inputs to try")
    parser.add_argument("--seconds", type=int, default=0, help="stop after this long instead")
    parser.add_argument("--work", type=Path, default=None, help="working corpus directory")
    parser.add_argument("--max-len", type=int, default=16_384)
    args = parser.parse_args(argv)

    with atheris.instrument_imports(include=["clearance"]):
        from fuzz import targets

    if args.target not in targets.TARGETS:
        parser.error(f"unknown target {args.target!r}; one of {', '.join(targets.TARGETS)}")
    name = args.target
    work = args.work or REPO / ".fuzz" / name
    work.mkdir(parents=True, exist_ok=True)
    for seed in (HERE / "corpus" / name).glob("*"):
        shutil.copy(seed, work / seed.name)
    crashes = HERE / "crashes" / name
    crashes.mkdir(parents=True, exist_ok=True)
    targets.world()  # build the fixed world before fuzzing starts

    def one_input(data: bytes) -> None:
        targets.run_one(name, data)

    libfuzzer = [
        sys.argv[0],
        f"-max_len={args.max_len}",
        f"-artifact_prefix={crashes}/",
        "-print_final_stats=1",
        # A parser must answer quickly: a slow input is a bug (a resource-exhaustion DoS).
        "-timeout=10",
        "-rss_limit_mb=2048",
    ]
    libfuzzer.append(f"-max_total_time={args.seconds}" if args.seconds else f"-runs={args.runs}")
    atheris.Setup([*libfuzzer, str(work)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

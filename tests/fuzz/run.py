"""Run one fuzz target under atheris (coverage-guided, libFuzzer).

    PYTHONPATH=src:tests python -m fuzz.run TARGET [--runs N | --seconds S] [--work DIR]

``TARGET`` ``all`` runs every target in one process (the first input byte picks the
target): one instrumentation and start-up for the short CI budget.

The committed seed corpus is copied into a working corpus (default
``.fuzz/<target>/``, not committed) that libFuzzer grows; a crashing input is
written to ``tests/fuzz/crashes/<target>/`` -- move it to
``tests/fuzz/regressions/<target>/`` once fixed, where the pytest replay keeps
it as a regression test.
"""

from __future__ import annotations

import argparse
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

    names = sorted(targets.TARGETS)
    if args.target not in (*names, "all"):
        parser.error(f"unknown target {args.target!r}; one of all, {', '.join(names)}")
    name = args.target
    work = args.work or REPO / ".fuzz" / name
    work.mkdir(parents=True, exist_ok=True)
    for number, target in enumerate(names):
        if name in (target, "all"):
            for seed in (HERE / "corpus" / target).glob("*"):
                prefix = bytes([number]) if name == "all" else b""
                (work / f"{target}-{seed.name}").write_bytes(prefix + seed.read_bytes())
    crashes = HERE / "crashes" / name
    crashes.mkdir(parents=True, exist_ok=True)
    targets.world()  # build the fixed world before fuzzing starts (not inside the timeout)
    if name in ("all", "gateway-submit"):
        targets.gateway()

    def one_input(data: bytes) -> None:
        if name != "all":
            targets.run_one(name, data)
        elif data:
            targets.run_one(names[data[0] % len(names)], data[1:])

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

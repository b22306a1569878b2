"""Code inspection: capability analysis speed, hermetic rebuild overhead, endpoint noise.

* Capability analysis (flare-capa + lief over one binary, rules already
  loaded, cache disabled) in seconds per MB, on the worked example's agent
  and on system binaries; the peer is the stock ``capa`` command line on the
  same file in the same run (it also loads its rules from capa's cache).
* Rebuild overhead: the same recipe run as a plain build in a temporary
  directory versus the hermetic rebuild (copy of the tree, network and mount
  namespaces, clean environment), median of several runs, for the C agent
  (``make``) and a Python wheel from its sdist (``pip wheel`` offline).
* Endpoint extraction over every ELF file in ``/usr/bin``: how many
  endpoints it reports, by kind, with the bare host names (the error-prone
  kind) listed so a reader can judge the false alarms.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from clearance.inspection.code._binary import binary_facts
from clearance.inspection.code._capa_runner import capa_engine, default_rules_dir
from clearance.inspection.code._hermetic_build import plain_build, rebuild
from clearance.inspection.code._host_scan import find_endpoints
from clearance.inspection.code.recipe import BuildRecipe

REPO = Path(__file__).resolve().parents[1]
# Bare hosts/IPs this extractor reported on /usr/bin that are not endpoints, labelled by hand
# (config keys, program names, fragments); the run counts how many of them it still reports.
KNOWN_FALSE_ALARMS = frozenset(
    {
        "le.org",
        "diag.pk",
        "msgfmt.net",
        "msgunfmt.net",
        "fs.sync.link",
        "hints.link",
        "options.ca",
        "stats.dev",
        "10.2.4.1",
        "8bcccbcc18b95.b126.bb",
        "8bcccbcc18b95.bb125.bb",
    }
)
SETUP_PY = "from setuptools import setup\nsetup(name='demo', version='1.0', packages=['demo'])\n"


def _example_build() -> object:
    spec = importlib.util.spec_from_file_location("agent_build", REPO / "examples/agent/build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _capability_rows(
    binaries: list[Path], with_cli: bool, repeats: int
) -> tuple[list[str], float | None]:
    """Wall and CPU seconds, best of ``repeats``; CPU time is what load does not inflate."""
    rules = default_rules_dir().resolve()
    started = time.monotonic()
    engine = capa_engine(rules)
    load = time.monotonic() - started
    rows = []
    ls_cpu = None
    for path in binaries:
        size_mb = path.stat().st_size / 2**20
        walls, cpus, cli_walls, cli_cpus = [], [], [], []
        cli_note = ""
        report = None
        for _ in range(repeats):
            t0, c0 = time.monotonic(), time.process_time()
            report = engine._analyse(path, "bench")
            walls.append(time.monotonic() - t0)
            cpus.append(time.process_time() - c0)
            if with_cli:
                t0, c0 = time.monotonic(), _child_cpu()
                with tempfile.TemporaryDirectory() as no_sigs:
                    # Same inputs as the inspector: these rules, no FLIRT library signatures.
                    argv = [str(Path(sys.executable).parent / "capa"), "-q", "-j", "-r", str(rules)]
                    run = subprocess.run(
                        [*argv, "-s", no_sigs, str(path)], capture_output=True, check=False
                    )
                cli_walls.append(time.monotonic() - t0)
                cli_cpus.append(_child_cpu() - c0)
                if run.returncode != 0:
                    cli_note = f" (exit {run.returncode})"
        assert report is not None
        t0 = time.monotonic()
        facts = binary_facts(path)
        lief_s = time.monotonic() - t0
        cpu = min(cpus) + lief_s
        if path.name == "ls":
            ls_cpu = cpu
        cli = (
            f"{min(cli_walls):.1f}-{max(cli_walls):.1f} s wall, {min(cli_cpus):.1f} s CPU{cli_note}"
            if cli_walls
            else "not run"
        )
        rows.append(
            f"| {path.name} | {path.stat().st_size / 1024:.0f} KB | {len(report.capabilities)} | "
            f"{min(walls):.1f}-{max(walls):.1f} s | {min(cpus):.1f} s | "
            f"{lief_s:.2f} s ({len(facts.strings)} strings) | **{cpu / size_mb:.0f} s/MB** | {cli} |"
        )
    return [
        f"Rules loaded once in {load:.1f} s ({len(engine.rules)} rules); each figure is the "
        f"best (and worst) of {repeats} run(s).",
        "",
        *rows,
    ], ls_cpu


def _rebuild_rows(runs: int) -> tuple[list[str], float]:
    build = _example_build()
    rows = []
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        wheel_src = base / "wheel-src"
        (wheel_src / "demo").mkdir(parents=True)
        (wheel_src / "setup.py").write_text(SETUP_PY)
        (wheel_src / "demo" / "__init__.py").write_text("VALUE = 1\n")
        cases = [
            ("C agent (make, gcc -O0)", REPO / "examples/agent/v2", build.RECIPE),  # type: ignore[attr-defined]
            (
                "Python wheel from sdist (pip wheel, offline)",
                wheel_src,
                {
                    "source": "s",
                    "command": [
                        "python",
                        "-m",
                        "pip",
                        "wheel",
                        "--no-deps",
                        "--no-build-isolation",
                        "--no-index",
                        "-w",
                        "dist",
                        ".",
                    ],
                    "output": "dist/demo-1.0-py3-none-any.whl",
                },
            ),
        ]
        for label, tree, raw in cases:
            recipe = BuildRecipe.from_dict("x", raw)
            plain, hermetic = [], []
            for i in range(runs):
                plain.append(plain_build(recipe, tree, base / f"p{label[:3]}{i}"))
                t0 = time.monotonic()
                outcome = rebuild(recipe, tree, base / f"h{label[:3]}{i}")
                hermetic.append(time.monotonic() - t0)
                assert outcome.ok, outcome.log_tail
                shutil.rmtree(base / f"h{label[:3]}{i}", ignore_errors=True)
            p, h = statistics.median(plain), statistics.median(hermetic)
            worst = max(worst, h - p)
            rows.append(
                f"| {label} | {p:.2f} s | {h:.2f} s | {h - p:+.2f} s ({h / p:.2f}x) | {runs} |"
            )
    return rows, worst


def _endpoint_rows(limit: int | None) -> list[str]:
    files = sorted(p for p in Path("/usr/bin").iterdir() if p.is_file() and not p.is_symlink())
    elves = [p for p in files if p.read_bytes()[:4] == b"\x7fELF"][:limit]
    kinds: Counter[str] = Counter()
    bare: Counter[str] = Counter()
    with_any = 0
    total_mb = sum(p.stat().st_size for p in elves) / 2**20
    t0 = time.monotonic()
    for path in elves:
        seen: set[tuple[str, str]] = set()
        for found in binary_facts(path).strings:
            for endpoint, _ in find_endpoints(found.text):
                if (endpoint.kind, endpoint.host) not in seen:
                    seen.add((endpoint.kind, endpoint.host))
                    kinds[endpoint.kind] += 1
                    if endpoint.kind in ("host", "ip"):
                        bare[endpoint.host] += 1
        with_any += bool(seen)
    elapsed = time.monotonic() - t0
    return [
        f"{len(elves)} ELF files ({total_mb:.0f} MB) read in {elapsed:.0f} s "
        f"({elapsed / total_mb:.2f} s/MB); {with_any} contain at least one endpoint. "
        "Distinct endpoints per binary, summed: "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
        + ".",
        "",
        "Bare host names and IPv4 addresses (no URL scheme, no mail address), the kind most "
        "prone to false alarms, with the number of binaries each appears in:",
        "",
        ", ".join(f"`{h}` ({n})" for h, n in bare.most_common(40)),
        "",
        f"Known false alarms (labelled by hand in an earlier run) still reported: "
        f"{len(KNOWN_FALSE_ALARMS & set(bare))} of {len(KNOWN_FALSE_ALARMS)}; bare hosts/IPs "
        f"reported in total: {len(bare)} distinct. The URL and mail kinds are real addresses "
        "(documentation and bug-report links), which a release must declare or explain.",
    ]


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def run(quick: bool) -> str:
    build = _example_build()
    with tempfile.TemporaryDirectory() as tmp:
        out = build.build_version("v2", Path(tmp))  # type: ignore[attr-defined]
        agent = out / "agent"
        binaries = [agent, Path("/usr/bin/true")]
        if not quick:
            import setuptools

            pe = Path(setuptools.__file__).parent / "cli-32.exe"  # a small PE (Windows) binary
            binaries += [pe, Path("/usr/bin/gzip"), Path("/usr/bin/ls")]
        load_before = os.getloadavg()[0]
        capability, ls_seconds = _capability_rows(
            binaries, with_cli=True, repeats=1 if quick else 2
        )
    rebuilds, worst_overhead = _rebuild_rows(2 if quick else 5)
    endpoints = _endpoint_rows(60 if quick else None)
    return "\n".join(
        [
            "### Capability analysis (flare-capa 10 + lief), per binary",
            "",
            "Target: a binary of the size of `/usr/bin/ls` (150 KB) in under 30 s of CPU, i.e. "
            "about 200 s/MB on this machine (capa-rules SOURCE.md measured about 20 s for `ls`). The "
            "peer is the stock `capa` command line on the same file, which adds process start "
            "and rule loading; results are cached by digest, so an unchanged binary costs "
            "a file read the second time.",
            "",
            *capability[:2],
            "| binary | size | capabilities | capa wall | capa CPU | lief + strings "
            "| CPU time per MB | peer: `capa` CLI |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            *capability[2:],
            "",
            (
                f"Result: `ls` took {ls_seconds:.0f} s of CPU: target {_met(ls_seconds < 30)}. "
                if ls_seconds is not None
                else "Result: `ls` not measured in the quick run. "
            )
            + f"The machine's 1-minute load average was {load_before:.1f} on 2 cores when "
            "the run started (other work shares it), which inflates the wall-clock figures; CPU time is the fair measure.",
            "",
            "### Hermetic rebuild overhead vs a plain build of the same source",
            "",
            "Target: under 1 s of overhead per rebuild (copying the tree, creating the "
            "namespaces, a clean environment).",
            "",
            "| build | plain build | hermetic rebuild | overhead | runs (median) |",
            "| --- | --- | --- | --- | --- |",
            *rebuilds,
            "",
            f"Result: worst overhead {worst_overhead:+.2f} s: target {_met(worst_overhead < 1.0)}.",
            "",
            "### Endpoint extraction over /usr/bin",
            "",
            *endpoints,
        ]
    )

"""ClamAV databases: the whole inspection vs a plain ``clamscan``; the labelled set; the real update.

Database: Linux Malware Detect's, second version (``../shared/rulesets/maldet-clamav``,
11,235 signatures).  Corpus: this machine's files (Python stdlib, /usr/bin,
/usr/sbin, /usr/lib), capped at 1.2 GB (quick: 150 MB), listed once,
deterministically.  Side by side in the same run, each in a fresh child process
so that the CPU time of its process tree is its own:

* plain: ``clamscan --no-summary -d FOLDER -f LIST`` over the same files -- what a
  user of the database runs (one process: clamscan is single-threaded);
* inspection: the content inspector on the same database and corpus (parse,
  each database loaded alone by clamscan in the sandbox to name malformed lines,
  the set's cost measured top-down on the cost sample, the ``--allmatch`` corpus
  scan in shards by sandboxed children, 2 at a time, every check).

Then the labelled set (``tests/inspection/clamav_labelled.py``): disguised
abusive signatures mixed into the real database, recall per category and
false alarms; and the real update (second version inspected as an update of
the first, with generated evidence samples for the first version's body
signatures).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MALDET = ROOT.parent / "shared" / "rulesets" / "maldet-clamav"
CURRENT = MALDET / "sigs-2013090421650"
FULL_CAP = 1200 * 2**20
QUICK_CAP = 150 * 2**20
TARGET = 1.3


def _corpus(cap: int) -> list[Path]:
    from clearance.inspection.corpus import default_roots, list_corpus

    return list_corpus(default_roots(), cap)


def _measure_plain(cap: int) -> dict[str, Any]:
    files = _corpus(cap)
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "files.lst"
        listing.write_text("".join(f"{p}\n" for p in files if "\n" not in str(p)))
        started = time.perf_counter()
        proc = subprocess.run(
            ["clamscan", "--no-summary", "--infected", "-d", str(CURRENT), "-f", str(listing)],
            capture_output=True,
            check=False,
        )
        wall = time.perf_counter() - started
    hits = sum(
        1 for line in proc.stdout.decode(errors="replace").splitlines() if line.endswith(" FOUND")
    )
    return {
        "wall": wall,
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "hits": hits,
        "returncode": proc.returncode,
    }


def _artifacts(folder: Path) -> tuple[Any, ...]:
    from clearance.inspection.base import Artifact

    out = []
    for p in sorted(folder.iterdir()):
        data = p.read_bytes()
        out.append(Artifact(p.name, "content", hashlib.sha256(data).hexdigest(), len(data), p))
    return tuple(out)


def _measure_inspect(cap: int) -> dict[str, Any]:
    from clearance.inspection import NullProgress
    from clearance.inspection.base import InspectionInput
    from clearance.inspection.content.inspector import ContentInspector

    with tempfile.TemporaryDirectory() as tmp:
        inp = InspectionInput("maldet", "2013090421650", _artifacts(CURRENT), work_dir=Path(tmp))
        started = time.perf_counter()
        result = ContentInspector(default_corpus_bytes=cap).inspect(inp, NullProgress())
        wall = time.perf_counter() - started
    counts: dict[str, int] = {}
    for f in result.findings:
        key = f"{f.rule_id} ({f.severity.label})"
        counts[key] = counts.get(key, 0) + 1
    return {"wall": wall, "scan": result.report["scan"], "findings": counts}


def _child_main(kind: str, cap: int) -> None:
    out = _measure_plain(cap) if kind == "plain" else _measure_inspect(cap)
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["cpu"] = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    out["peak_rss_mib"] = max(me.ru_maxrss, kids.ru_maxrss) / 1024
    print(json.dumps(out))


def _run(kind: str, cap: int) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from benchmarks.bench_clamav import _child_main; _child_main({kind!r}, {cap})",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        check=True,
        text=True,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _speed(quick: bool) -> list[str]:
    cap = QUICK_CAP if quick else FULL_CAP
    load_before = os.getloadavg()[0]
    plain = _run("plain", cap)
    inspect = _run("inspect", cap)
    load_after = os.getloadavg()[0]
    mib = plain["bytes"] / 2**20
    wall_ratio = inspect["wall"] / plain["wall"]
    cpu_ratio = inspect["cpu"] / plain["cpu"]
    return [
        "### Speed: the whole inspection vs a plain clamscan, side by side",
        "",
        f"Corpus: {plain['files']:,} files, {mib:,.0f} MiB of this machine's files "
        f"({'quick' if quick else 'full'} settings); database: maldet second version "
        "(11,235 signatures); load average {:.1f} before, {:.1f} after.".format(
            load_before, load_after
        ),
        "",
        "| | plain `clamscan -d` (peer) | inspection (all checks) |",
        "| --- | --- | --- |",
        f"| wall time | {plain['wall']:.1f} s | {inspect['wall']:.1f} s |",
        f"| CPU time (process tree) | {plain['cpu']:.1f} s | {inspect['cpu']:.1f} s |",
        f"| throughput | {mib / plain['wall']:.1f} MiB/s | {mib / inspect['wall']:.1f} MiB/s |",
        f"| peak RSS of one process | {plain['peak_rss_mib']:.0f} MiB | {inspect['peak_rss_mib']:.0f} MiB |",
        f"| files reported | {plain['hits']} | {json.dumps(inspect['findings'])} |",
        "",
        f"Ratio inspection / plain: **{wall_ratio:.2f}x wall time, {cpu_ratio:.2f}x CPU time** "
        f"(target {TARGET}x: wall {'met' if wall_ratio <= TARGET else 'NOT met'}, "
        f"CPU {'met' if cpu_ratio <= TARGET else 'NOT met'}).  The inspection scans with "
        "`--allmatch` (every signature that matches, not the first) in 2 workers, "
        "and also loads each database alone and measures the set's cost on a 4 MiB sample.",
        "",
    ]


def _labelled(quick: bool) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from tests.inspection.clamav_labelled import CATEGORIES, build, clean_sources, evaluate

    with tempfile.TemporaryDirectory() as tmp:
        labelled = build(Path(tmp) / "set", clean_sources((8 if quick else 24) * 2**20))
        score = evaluate(labelled, Path(tmp) / "work")
    lines = [
        "### Labelled set: disguised abusive signatures in the real database",
        "",
        f"{len(labelled.labels)} abusive signatures (generated by "
        "`tests/inspection/clamav_labelled.py`) mixed into the second maldet version "
        f"({score.benign_total:,} real signatures), inspected as an update of the first "
        "version, with a clean corpus of this machine's Python packages plus four "
        "'organisation documents' and an evidence corpus of generated samples "
        f"(one per plain body signature of the first version).  Inspection took {score.seconds:.0f} s.",
        "",
        "| category | caught | recall | missed |",
        "| --- | --- | --- | --- |",
    ]
    for category in CATEGORIES:
        caught, total = score.recall[category]
        missed = ", ".join(score.missed[category]) or "-"
        lines.append(f"| {category} | {caught}/{total} | {caught / total:.0%} | {missed} |")
    rate = len(score.benign_flagged) / score.benign_total
    lines += [
        "",
        f"Real signatures flagged at error level: **{len(score.benign_flagged)} of "
        f"{score.benign_total:,} ({rate:.2%})**"
        + (f": {', '.join(score.benign_flagged[:10])}" if score.benign_flagged else "")
        + f" (target at most 2 %).  Honest malicious-document hard negatives flagged: "
        f"{len(score.negatives_flagged)} of {len(labelled.negatives)}.",
        "",
        "Caught means a finding at error level (high or critical) naming the signature; "
        "for `removed`, a `content.detection-removed` finding at medium or above (the "
        "default policy sends those to a person).",
        "",
    ]
    return lines


def run(quick: bool) -> str:
    if not MALDET.is_dir():
        return "Skipped: ../shared/rulesets/maldet-clamav not found.\n"
    lines = _speed(quick)
    lines += _labelled(quick)
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(quick=True))

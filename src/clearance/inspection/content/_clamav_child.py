"""Sandbox targets for the ClamAV engine: run Debian's ``clamscan`` (libclamav) on vendor databases.

These functions run inside :func:`clearance.inspection.sandbox.run_sandboxed`
(a limited child process); ``clamscan`` is their child and inherits the
limits (CPU time, address space, the process group the parent kills on wall
time).  ``clamscan`` itself dying by a signal or hanging past a timeout is
reported as data for the item it was on, so one bad database or corpus file
never hides the rest.

CPU time is read with ``getrusage(RUSAGE_CHILDREN)`` around each ``clamscan``
run, so other load on the machine does not make a signature look slow.
"""

from __future__ import annotations

import re
import resource
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLAMSCAN = "clamscan"
_PARSE_LINE = re.compile(r"Problem parsing (?:database|signature) at line (\d+)", re.IGNORECASE)
_LIB_ERROR = re.compile(r"^(?:LibClamAV Error|ERROR): (.*)$", re.MULTILINE)
_LIB_WARNING = re.compile(r"^LibClamAV Warning: (.*)$", re.MULTILINE)
#: Options shared by every scan, the inspector's and the benchmark's plain one alike.
SCAN_OPTIONS = ("--no-summary", "--bytecode-unsigned=no")
_MAX_FIXES = 60


def _run(argv: list[str], timeout: float) -> tuple[int | None, str, str, float, str]:
    """(returncode, stdout, stderr, cpu seconds, status) of one clamscan run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        proc = subprocess.run(
            argv, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode("utf-8", "replace")
        return None, out, (exc.stderr or b"").decode("utf-8", "replace"), timeout, "timeout"
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    status = "ok"
    if proc.returncode < 0:
        status = "crashed"
    return (
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
        cpu,
        status,
    )


def _signal_name(code: int | None) -> str | None:
    if code is None or code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _load(db: Path, empty: Path, timeout: float) -> tuple[int | None, str, float, str]:
    rc, _, err, cpu, status = _run([CLAMSCAN, *SCAN_OPTIONS, "-d", str(db), str(empty)], timeout)
    return rc, err, cpu, status


def _scan_cpu(
    db: Path,
    sample_list: Path,
    empty: Path,
    timeout: float,
    rounds: int = 2,
    load_cpu: float | None = None,
) -> float:
    """CPU seconds scanning the sample costs beyond loading ``db`` (min of ``rounds`` runs each).

    ``load_cpu``: the load was just measured; it is not measured again.
    """
    scans, loads = [], [] if load_cpu is None else [load_cpu]
    for _ in range(rounds):
        _, _, _, cpu, status = _run(
            [CLAMSCAN, *SCAN_OPTIONS, "--allmatch", "-d", str(db), "-f", str(sample_list)], timeout
        )
        if status != "ok":
            return float("inf")
        scans.append(cpu)
        if load_cpu is None:
            loads.append(_load(db, empty, timeout)[2])
    return max(min(scans) - min(loads), 0.0)


def check_databases(args: dict[str, Any], progress: Callable[[Any], None]) -> dict[str, Any]:
    """Load each database alone: errors (every malformed line, by dropping and retrying).

    ``args``: ``items`` [[uri, path, suffix, out_path]], ``timeout`` seconds per
    clamscan run.  A cleaned copy (malformed lines dropped) of each database that
    loads is written to ``out_path`` for the scanning set; its cost is measured
    afterwards, on the whole set first (:func:`measure_costs`).
    """
    work = Path(tempfile.mkdtemp(prefix="clamcheck-"))
    try:
        empty = work / "empty"
        empty.write_bytes(b"\n")
        timeout = float(args["timeout"])
        for index, (uri, path, suffix, out_path) in enumerate(args["items"]):
            progress({"i": index, "start": index})
            progress(
                _check_one(index, uri, Path(path), suffix, Path(out_path), work, empty, timeout)
            )
        return {"done": len(args["items"])}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_one(
    index: int,
    uri: str,
    path: Path,
    suffix: str,
    out_path: Path,
    work: Path,
    empty: Path,
    timeout: float,
) -> dict[str, Any]:
    lines = path.read_bytes().split(b"\n")
    numbers = list(range(1, len(lines) + 1))
    db = work / f"one{suffix}"
    errors: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    crash: dict[str, Any] | None = None
    load_cpu = 0.0
    for _ in range(_MAX_FIXES):
        db.write_bytes(b"\n".join(lines))
        rc, err, load_cpu, status = _load(db, empty, timeout)
        if status != "ok":
            crash = {"status": status, "signal": _signal_name(rc), "detail": err[-2000:]}
            break
        for w in _LIB_WARNING.findall(err):
            warnings.append({"line": 0, "message": w.strip()[:300]})
        if rc != 2:
            break
        msgs = [m.strip() for m in _LIB_ERROR.findall(err)]
        at = _PARSE_LINE.search(err)
        if at is None or not (1 <= int(at.group(1)) <= len(lines)):
            errors.append({"line": 0, "message": "; ".join(msgs)[:500] or err[-500:], "text": ""})
            lines = []
            break
        local = int(at.group(1)) - 1
        errors.append(
            {
                "line": numbers[local],
                "message": "; ".join(msgs)[:500],
                "text": lines[local].decode("utf-8", "replace")[:300],
            }
        )
        del lines[local]
        del numbers[local]
    else:
        errors.append({"line": 0, "message": f"more than {_MAX_FIXES} malformed lines", "text": ""})
        lines = []
    loads = crash is None and any(line.strip() and not line.startswith(b"#") for line in lines)
    if loads:
        out_path.write_bytes(b"\n".join(lines))
    return {
        "i": index,
        "uri": uri,
        "errors": errors,
        "warnings": warnings[:20],
        "crash": crash,
        "loads": loads,
        "load_s": load_cpu,
    }


def measure_costs(args: dict[str, Any], progress: Callable[[Any], None]) -> dict[str, Any]:
    """Cost of the scanning set on the sample; of each database only when the set is over budget.

    ``args``: ``set`` (the folder of cleaned databases), ``dbs`` [[key, path, suffix,
    dropped original line numbers]], ``sample``, ``timeout``, ``budget``, ``drill``.
    Returns key -> [ms per MiB, databases timed together, {original line: ms}].  A
    database costs at most what the set it belongs to costs (one pass over each
    file either way, and fewer signatures), so a set within the budget clears every
    database in it with one timing; only a set over budget is taken apart.
    """
    work = Path(tempfile.mkdtemp(prefix="clamcost-"))
    try:
        empty = work / "empty"
        empty.write_bytes(b"\n")
        sample = [Path(p) for p in args["sample"]]
        sample_list = work / "sample.lst"
        sample_list.write_text("".join(f"{p}\n" for p in sample))
        mib = max(sum(p.stat().st_size for p in sample) / 2**20, 0.25)
        timeout, budget = float(args["timeout"]), float(args["budget"])
        trivial = work / "baseline.hdb"
        trivial.write_text("0" * 32 + ":1:Clearance.Baseline\n")
        baseline = _scan_cpu(trivial, sample_list, empty, timeout, rounds=2)
        dbs = args["dbs"]
        progress({"measuring": [d[0] for d in dbs]})
        whole = _cost(Path(args["set"]), sample_list, empty, timeout, baseline, mib, budget)
        if whole <= budget:
            return {str(d[0]): [whole, len(dbs), {}] for d in dbs}
        out: dict[str, Any] = {}
        for key, path, suffix, dropped in dbs:
            progress({"measuring": [key]})
            cost = (
                whole
                if len(dbs) == 1
                else _cost(Path(path), sample_list, empty, timeout, baseline, mib, budget)
            )
            per_line: dict[str, float] = {}
            if args.get("drill", True) and cost > budget:
                lines = Path(path).read_bytes().split(b"\n")
                gone = set(dropped)
                numbers = [n for n in range(1, len(lines) + len(gone) + 1) if n not in gone]
                _drill(
                    lines,
                    numbers[: len(lines)],
                    suffix,
                    work,
                    sample_list,
                    empty,
                    timeout,
                    baseline,
                    mib,
                    budget,
                    per_line,
                )
            out[str(key)] = [-1.0 if cost == float("inf") else cost, 1, per_line]
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _cost(
    db: Path,
    sample_list: Path,
    empty: Path,
    timeout: float,
    baseline: float,
    mib: float,
    budget: float | None = None,
    load_cpu: float | None = None,
) -> float:
    """Extra ms per MiB; one run when far under ``budget``, else the min of two more."""
    spent = _scan_cpu(db, sample_list, empty, timeout, rounds=1 if budget else 2, load_cpu=load_cpu)
    if spent == float("inf"):
        return spent
    cost = max(spent - baseline, 0.0) * 1000 / mib
    if budget and cost > budget / 2:
        again = _scan_cpu(db, sample_list, empty, timeout, rounds=2)
        cost = min(cost, max(again - baseline, 0.0) * 1000 / mib)
    return cost


def _drill(
    lines: list[bytes],
    numbers: list[int],
    suffix: str,
    work: Path,
    sample_list: Path,
    empty: Path,
    timeout: float,
    baseline: float,
    mib: float,
    budget: float,
    out: dict[str, float],
    runs: list[int] | None = None,
) -> None:
    """Bisect the signatures of an over-budget database down to the ones over budget."""
    runs = runs if runs is not None else [0]
    keep = [
        (n, line)
        for n, line in zip(numbers, lines, strict=True)
        if line.strip() and not line.startswith(b"#")
    ]
    if not keep:
        return
    if len(keep) == 1:
        # One signature: the min of three runs, so load on the machine does not name it.
        out[str(keep[0][0])] = _measure(
            keep, suffix, work, sample_list, empty, timeout, baseline, mib, rounds=3
        )
        return
    half = len(keep) // 2
    for part in (keep[:half], keep[half:]):
        if runs[0] >= 48:
            return
        runs[0] += 1
        cost = _measure(part, suffix, work, sample_list, empty, timeout, baseline, mib)
        if cost > budget:
            _drill(
                [x[1] for x in part],
                [x[0] for x in part],
                suffix,
                work,
                sample_list,
                empty,
                timeout,
                baseline,
                mib,
                budget,
                out,
                runs,
            )


def _measure(
    part: list[tuple[int, bytes]],
    suffix: str,
    work: Path,
    sample_list: Path,
    empty: Path,
    timeout: float,
    baseline: float,
    mib: float,
    rounds: int = 2,
) -> float:
    db = work / f"part{suffix}"
    db.write_bytes(b"\n".join(x[1] for x in part) + b"\n")
    spent = _scan_cpu(db, sample_list, empty, timeout, rounds=rounds)
    if spent == float("inf"):
        return spent
    return max(spent - baseline, 0.0) * 1000 / mib


def scan_corpus(args: dict[str, Any], progress: Callable[[Any], None]) -> dict[str, Any]:
    """Scan ``files`` with the database folder ``db``; one progress entry per file, in order.

    Entry: ``{"i": index, "m": [signature names], "b": bytes, "t": timed out}``.  When
    clamscan dies on a file, an entry ``{"i": index, "crash": {...}}`` is sent and the
    scan resumes after it.
    """
    files = [str(p) for p in args["files"]]
    timeout_ms = int(args["timeout"]) * 1000
    work = Path(tempfile.mkdtemp(prefix="clamscan-"))
    cpu_total = 0.0
    # clamscan's own failures are reported in-band from here on (see the module doc).
    progress({"ready": 1})
    try:
        start = 0
        while start < len(files):
            listing = work / "files.lst"
            listing.write_text("".join(f"{p}\n" for p in files[start:]))
            argv = [
                CLAMSCAN,
                *SCAN_OPTIONS,
                "--allmatch",
                f"--max-scantime={timeout_ms}",
                "--alert-exceeds-max=yes",
                "-d",
                str(args["db"]),
                "-f",
                str(listing),
            ]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
            )
            assert proc.stdout is not None
            position = start
            current: dict[str, Any] | None = None
            for raw in proc.stdout:
                text = raw.decode("utf-8", "replace").rstrip("\n")
                head, sep, tail = text.rpartition(": ")
                if not sep:
                    continue
                index = _find(files, head, position)
                if index is None:
                    continue
                if current is not None and current["i"] != index:
                    progress(current)
                    current = None
                if current is None:
                    for skipped in range(position, index):
                        progress({"i": skipped, "m": [], "b": 0, "t": False, "skipped": True})
                    current = {"i": index, "m": [], "b": _size(files[index]), "t": False}
                    position = index + 1
                if tail.endswith(" FOUND"):
                    name = tail[: -len(" FOUND")]
                    if name.startswith("Heuristics.Limits.Exceeded.MaxScanTime"):
                        current["t"] = True
                    elif not name.startswith("Heuristics.Limits.Exceeded"):
                        current["m"].append(name.removesuffix(".UNOFFICIAL"))
            if current is not None:
                progress(current)
            err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
            rc = proc.wait()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_total += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            if rc >= 0:
                if rc == 2 and position == start and current is None:
                    # Nothing scanned: the whole set did not load (or the list was refused).
                    progress({"i": start, "fatal": err[-2000:]})
                    break
                for rest in range(position, len(files)):
                    progress({"i": rest, "m": [], "b": _size(files[rest]), "t": False})
                break
            if position >= len(files):
                break
            progress(
                {
                    "i": position,
                    "crash": {
                        "status": "crashed",
                        "signal": _signal_name(rc),
                        "detail": err[-2000:],
                    },
                }
            )
            start = position + 1
        return {"cpu_seconds": cpu_total}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _find(files: list[str], path: str, position: int) -> int | None:
    for index in range(position, min(position + 64, len(files))):
        if files[index] == path:
            return index
    if position > 0 and files[position - 1] == path:
        return position - 1
    return None


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0

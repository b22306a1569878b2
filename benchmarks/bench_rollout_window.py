"""A window of bulk health reports: judging its rollout while it is open, and logging its
aggregate once it has closed, each beside the way it was done before, in one run.

After every bulk request the gateway judges the release's rollout again, and the
rule counts each device of the current window once.  Two ways of counting, side by
side on the same stored reports, in both backends:

* **tally kept by the store** (what the gateway does): each bulk request brings its
  window's tally (each device's latest report, devices per status) up to date in the
  transaction that stores its reports, so judging reads a few rows: the counts, and
  which of the logged reports' devices are in the window;
* **read back** (the reference, what the gateway did before the store kept each
  report's device): every report of the window is read back with its envelope and
  tallied in Python; the device of each report is looked up in a dictionary filled
  beforehand, as the replica's cache of its own reports did, so the reference is its
  best case (no envelope parsed).

Once the window has closed, its aggregate is built as the store streams the reports
from one snapshot, beside the reference that read them all back into memory first:
time and the peak of Python memory allocated.

Each window holds one report per device plus a second one from a tenth of the
devices; the envelopes have the size of a real signed health report.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo
from rich.progress import Progress

from clearance.gateway.health_batch import AcceptedReport, HealthAggregate
from clearance.gateway.health_store import SQLiteHealthReportStore
from clearance.gateway.health_store_postgres import PostgresHealthReportStore
from clearance.gateway.store import HealthReportStore
from clearance.policy.rollout import Report, tally

SERVER = os.environ.get("CLEARANCE_PG_DSN", "dbname=postgres")
DATABASE = "clearance_i13window_bench"
#: The size of a real signed health report (DSSE, one Ed25519 signature), in bytes.
ENVELOPE_BYTES = 670
WINDOW = 600
REPEATS = 5


def _database() -> str:
    with psycopg.connect(SERVER, autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        db.execute(f"CREATE DATABASE {DATABASE}")
    return make_conninfo(SERVER, dbname=DATABASE)


def _reports(devices: int) -> list[AcceptedReport]:
    out = []
    for n in range(devices + devices // 10):
        device = f"device-{n % devices:08d}"
        envelope = (b'{"payload":"%08d",' % n).ljust(ENVELOPE_BYTES - 1, b"x") + b"}"
        sha = hashlib.sha256(envelope).hexdigest()
        status = "failed" if n % 50 == 0 else "ok"
        out.append(AcceptedReport(sha, "r1", f"site-{n}", "canary", status, envelope, device))
    return out


def _median_ms(work: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _measure(store: HealthReportStore, reports: list[AcceptedReport]) -> tuple[float, float]:
    device_of = {r.sha256: r.device for r in reports}
    logged = [Report("device-00000001", "failed", 1), Report("logged-only", "ok", 2)]
    among = sorted({r.device for r in logged})

    def by_store() -> object:
        counted = store.window_tally("r1", "canary", WINDOW, among)
        return tally(logged, counted.devices_by_status, counted.reporting)

    def read_back() -> object:
        rows = store.window("r1", "canary", WINDOW)
        votes = [*logged]
        votes += [Report(device_of[sha], status, 3 + n) for n, (sha, status, _) in enumerate(rows)]
        return tally(votes)

    assert by_store() == read_back(), "the two ways of counting disagree"
    return _median_ms(by_store), _median_ms(read_back)


def _peak_mib(work: Callable[[], object]) -> float:
    """The peak of Python memory ``work`` allocated (tracemalloc, which slows it: its time
    is measured in another run)."""
    tracemalloc.start()
    try:
        work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def _aggregate(store: HealthReportStore) -> tuple[float, float, float, float, float]:
    """Aggregating the window: read back whole and built (the reference: what the leader
    did before), then streamed from the store (what it does); seconds and peak MiB each."""

    def read_back() -> HealthAggregate:
        rows = store.window("r1", "canary", WINDOW)
        return HealthAggregate.build("r1", "canary", WINDOW, 300, rows)

    built: list[HealthAggregate] = []

    def streamed(log_index: int | None) -> Callable[[], object]:
        def log(rows: Iterator[tuple[str, str, bytes]]) -> int | None:
            built.append(HealthAggregate.from_ordered("r1", "canary", WINDOW, 300, rows))
            return log_index  # None: nothing recorded, the window stays open

        return lambda: store.aggregate_window("r1", "canary", WINDOW, log)

    ref_peak = _peak_mib(read_back)
    started = time.perf_counter()
    reference = read_back()
    ref_seconds = time.perf_counter() - started
    peak = _peak_mib(streamed(None))
    started = time.perf_counter()
    streamed(None)()
    reading = time.perf_counter() - started
    started = time.perf_counter()
    streamed(1)()  # the real thing: the reports read are recorded as in the aggregate
    seconds = time.perf_counter() - started
    assert built == [reference] * 3, "the aggregates differ"
    assert store.window("r1", "canary", WINDOW) == [], "reports left open"
    return reading, seconds, peak, ref_seconds, ref_peak


def run(quick: bool) -> str:
    sizes = (10_000, 50_000) if quick else (10_000, 100_000, 500_000)
    rows: list[str] = []
    aggregated: list[str] = []
    loads = [os.getloadavg()[0]]
    with Progress() as progress, tempfile.TemporaryDirectory() as scratch:
        task = progress.add_task("rollout window", total=2 * len(sizes))
        for backend in ("SQLite", "PostgreSQL"):
            for devices in sizes:
                reports = _reports(devices)
                store: HealthReportStore = (
                    SQLiteHealthReportStore(Path(scratch) / f"health-{devices}.sqlite")
                    if backend == "SQLite"
                    else PostgresHealthReportStore(_database())
                )
                try:
                    started = time.perf_counter()
                    for start in range(0, len(reports), 20_000):  # bulk requests' size
                        store.add_many(reports[start : start + 20_000], WINDOW)
                    storing = (time.perf_counter() - started) / len(reports) * 1e6
                    by_store, read_back = _measure(store, reports)
                    reading, seconds, peak, ref_seconds, ref_peak = _aggregate(store)
                finally:
                    store.close()
                rows.append(
                    f"| {backend} | {devices:,} | {len(reports):,} | {storing:,.1f} "
                    f"| {by_store:,.2f} | {read_back:,.1f} | {read_back / by_store:,.0f}x |"
                )
                aggregated.append(
                    f"| {backend} | {len(reports):,} | {reading:,.2f} | {peak:,.1f} "
                    f"| {ref_seconds:,.2f} | {ref_peak:,.0f} | {seconds:,.2f} |"
                )
                progress.advance(task)
                loads.append(os.getloadavg()[0])
    with psycopg.connect(SERVER, autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    return "\n".join(
        [
            "## Rollout judged during an active window: tally kept by the store vs read back",
            "",
            "Time to count one ring's current window of bulk health reports, as the gateway "
            f"does after every bulk request; median of {REPEATS}, in milliseconds. "
            f"{'Quick' if quick else 'Full'} run; 1-minute load average "
            f"{', '.join(f'{x:.1f}' for x in loads)} (before, after each size) on "
            f"{os.cpu_count()} cores.",
            "",
            "| backend | devices | reports in the window | storing, µs per report (tally "
            "included) | judging: tally kept by the store (ms) | read back (ms), the reference "
            "| reference / store |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            "Storing is the wall time of `add_many` in bulks of 20,000 (one transaction "
            "each), the tally's upkeep included. "
            "The reference is the old way at its best (every device already known by digest, "
            "no envelope parsed); a replica that had not accepted the reports itself parsed "
            "each envelope as well.",
            "",
            "Once the window has closed, the leader logs its aggregate (counts and the Merkle "
            "root of the envelopes in digest order). Streamed: the store hands the reports over "
            "from one snapshot as the root is computed; read back (the reference, what the "
            "leader did before): every report read into a list, then built. Peak of the Python "
            "memory allocated meanwhile (tracemalloc, in a run of its own: it slows what it "
            "watches). The last column adds recording every report as in the aggregate (an "
            "update of each row, which the reference's way did as well, by a list of digests).",
            "",
            "| backend | reports | streamed (s) | streamed, peak (MiB) | read back (s), the "
            "reference | read back, peak (MiB) | streamed and recorded (s) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            *aggregated,
        ]
    )


if __name__ == "__main__":
    print(run("--full" not in sys.argv))

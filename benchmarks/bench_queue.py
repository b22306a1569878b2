"""The job queue on PostgreSQL: procrastinate beside the queue written by hand, one run.

Both implement :class:`clearance.gateway.queue.JobQueue` and run against the
same PostgreSQL server, one after the other, on the same number of jobs:

* **enqueue/s**: one handle enqueues the jobs one by one (one commit each);
* **claim+complete/s**: worker *processes* (1, then 4), each with its own
  handle, claim and complete until the queue is empty; the clock runs from the
  moment all of them are connected until the last one is done;
* **enqueue to start**: one worker polls every 10 ms while a producer enqueues
  a job every 20 ms; the delay from ``enqueue`` to the worker's ``claim``
  returning it, p50 and p99.

The queue written by hand was removed from the gateway once this benchmark
chose procrastinate; its last version is read from the git history
(``HANDWRITTEN_COMMIT``) so that the comparison can be run again.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from multiprocessing.synchronize import Event
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from clearance.gateway.queue import JobQueue

SERVER = os.environ.get("CLEARANCE_PG_DSN", "dbname=postgres")
DATABASE = "clearance_i13jobs_bench"
#: The last commit whose gateway/queue_postgres.py is the queue written by hand.
HANDWRITTEN_COMMIT = "d8f74faad6a55e753ae9496f223c12faf6ee147f"
HANDWRITTEN_PATH = "src/clearance/gateway/queue_postgres.py"
REPO = Path(__file__).resolve().parent.parent

IMPLEMENTATIONS = ("procrastinate", "by hand")


def _database() -> str:
    with psycopg.connect(SERVER, autocommit=True) as db:
        if not db.execute("SELECT 1 FROM pg_database WHERE datname=%s", (DATABASE,)).fetchone():
            db.execute(f"CREATE DATABASE {DATABASE}")
    return make_conninfo(SERVER, dbname=DATABASE)


def _handwritten_module() -> ModuleType:
    """The queue written by hand, as it was at ``HANDWRITTEN_COMMIT`` (it imports only
    ``clearance.gateway.errors`` and ``clearance.gateway.queue``, which keep those names)."""
    shown = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{HANDWRITTEN_COMMIT}:{HANDWRITTEN_PATH}"],
        capture_output=True,
    )
    if shown.returncode != 0:
        raise RuntimeError(
            f"bench_queue needs commit {HANDWRITTEN_COMMIT} (the hand-written queue) in the "
            f"git history of {REPO}: {shown.stderr.decode(errors='replace').strip()}"
        )
    source = shown.stdout
    folder = Path(tempfile.gettempdir()) / f"clearance-bench-queue-{os.getuid()}"
    folder.mkdir(exist_ok=True)
    path = folder / "handwritten_queue.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("handwritten_queue", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def open_queue(implementation: str, dsn: str, name: str) -> JobQueue:
    if implementation == "procrastinate":
        from clearance.gateway.queue_postgres import PostgresJobQueue

        return PostgresJobQueue(dsn, name)
    queue: JobQueue = _handwritten_module().PostgresJobQueue(dsn, name)
    return queue


def _drain(implementation: str, dsn: str, name: str, ready: Any, go: Event, out: Any) -> None:
    """A worker process: connect, wait for the start, claim and complete until empty."""
    queue = open_queue(implementation, dsn, name)
    ready.wait()
    go.wait()
    done = 0
    while (job := queue.claim("bench")) is not None:
        queue.complete(job.id, {"ok": True})
        done += 1
    out.put((done, time.monotonic()))
    queue.close()


def _claim_complete(implementation: str, dsn: str, name: str, jobs: int, workers: int) -> float:
    feeder = open_queue(implementation, dsn, name)
    for n in range(jobs):
        feeder.enqueue("bench", {"n": n})
    feeder.close()
    ctx = multiprocessing.get_context("spawn")
    ready, go, out = ctx.Barrier(workers + 1), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_drain, args=(implementation, dsn, name, ready, go, out))
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    ready.wait()
    start = time.monotonic()
    go.set()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    assert sum(n for n, _ in results) == jobs, results
    return jobs / (max(t for _, t in results) - start)


def _latency(implementation: str, dsn: str, name: str, jobs: int) -> list[float]:
    """Seconds from enqueue to the polling worker's claim returning the job."""
    producer, worker = open_queue(implementation, dsn, name), open_queue(implementation, dsn, name)
    delays: list[float] = []

    def work() -> None:
        while len(delays) < jobs:
            job = worker.claim("bench")
            if job is None:
                time.sleep(0.01)
                continue
            delays.append(time.time() - float(job.payload["at"]))
            worker.complete(job.id, {})

    thread = threading.Thread(target=work)
    thread.start()
    for _ in range(jobs):
        producer.enqueue("bench", {"at": time.time()})
        time.sleep(0.02)
    thread.join(timeout=600)
    producer.close()
    worker.close()
    return delays


def _timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _measure(implementation: str, dsn: str, jobs: int) -> dict[str, float]:
    run_id = uuid.uuid4().hex[:8]
    queue = open_queue(implementation, dsn, f"bench_{run_id}_enq")
    seconds = _timed(lambda: [queue.enqueue("bench", {"n": n}) for n in range(jobs)] and None)
    queue.close()
    one = _claim_complete(implementation, dsn, f"bench_{run_id}_w1", jobs, 1)
    four = _claim_complete(implementation, dsn, f"bench_{run_id}_w4", jobs, 4)
    delays = sorted(_latency(implementation, dsn, f"bench_{run_id}_lat", max(50, jobs // 10)))
    return {
        "enqueue": jobs / seconds,
        "one": one,
        "four": four,
        "p50": statistics.median(delays) * 1000,
        "p99": delays[min(len(delays) - 1, int(len(delays) * 0.99))] * 1000,
    }


def run(quick: bool) -> str:
    jobs = 1_000 if quick else 5_000
    dsn = _database()
    loads = [os.getloadavg()[0]]
    results = {}
    for implementation in IMPLEMENTATIONS:
        results[implementation] = _measure(implementation, dsn, jobs)
        loads.append(os.getloadavg()[0])
    rows = [
        f"| {name} | {r['enqueue']:,.0f} | {r['one']:,.0f} | {r['four']:,.0f} "
        f"| {r['p50']:.1f} | {r['p99']:.1f} |"
        for name, r in results.items()
    ]
    proc, hand = results["procrastinate"], results["by hand"]
    ratios = ", ".join(
        f"{label} {proc[key] / hand[key]:.2f}x"
        for key, label in (("enqueue", "enqueue"), ("one", "1 worker"), ("four", "4 workers"))
    )
    return "\n".join(
        [
            "## Job queue on PostgreSQL: procrastinate vs the queue written by hand",
            "",
            f"{jobs:,} jobs per measure, each queue in a fresh procrastinate queue / table of "
            f"database `{DATABASE}` on the local PostgreSQL; {'quick' if quick else 'full'} run. "
            f"1-minute load average {', '.join(f'{x:.1f}' for x in loads)} "
            "(before, after each queue) on 2 cores.",
            "",
            "| queue | enqueue/s | claim+complete/s, 1 worker | claim+complete/s, 4 workers "
            "| enqueue to start p50 (ms) | p99 (ms) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            f"procrastinate / by hand: {ratios}. Workers are processes with a handle each; "
            "the latency worker polls every 10 ms, so about 5 ms of the delay is the poll.",
        ]
    )


if __name__ == "__main__":
    print(run("--full" not in sys.argv))

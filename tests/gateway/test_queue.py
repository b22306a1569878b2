"""The JobQueue protocol on both backends: SQLite (embedded) and PostgreSQL (scale-out).

Each PostgreSQL test gets a procrastinate queue of its own in one scratch
database (``clearance_i13jobs_*`` on the server of ``$CLEARANCE_PG_DSN``, dropped afterwards).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from _postgres import scratch_database
from clearance.gateway.errors import GatewayInputError, JobQueueError
from clearance.gateway.queue import DONE, FAILED, QUEUED, RUNNING, JobQueue, SQLiteJobQueue

#: (backend, where, dsn): a fresh queue location; opening it twice reaches the same jobs.
Backend = tuple[str, str, str]


@pytest.fixture(scope="module")
def queue_dsn() -> Iterator[str]:
    """One scratch database for this module's PostgreSQL tests; each test has its own queue."""
    with scratch_database("clearance_i13jobs_") as dsn:
        yield dsn


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "q.sqlite"), ""
        return
    yield "postgres", f"jobs_{uuid.uuid4().hex[:12]}", request.getfixturevalue("queue_dsn")


def open_queue(backend: Backend, lease_seconds: float = 60.0) -> JobQueue:
    kind, where, dsn = backend
    if kind == "sqlite":
        return SQLiteJobQueue(Path(where), lease_seconds=lease_seconds)
    from clearance.gateway.queue_postgres import PostgresJobQueue

    return PostgresJobQueue(dsn, where, lease_seconds=lease_seconds)


def test_jobs_survive_reopen_and_run_in_order(backend: Backend) -> None:
    q = open_queue(backend)
    first = q.enqueue("inspect", {"release": "a"})
    second = q.enqueue("inspect", {"release": "b"})
    q.close()
    q = open_queue(backend)
    job = q.claim("w1")
    assert job is not None and job.id == first and job.state == RUNNING and job.attempts == 1
    assert job.kind == "inspect" and job.payload == {"release": "a"} and job.max_attempts == 3
    q.complete(job.id, {"verdict": "approved"})
    assert q.get(first).state == DONE and q.get(first).result == {"verdict": "approved"}
    nxt = q.claim("w1")
    assert nxt is not None and nxt.id == second and nxt.payload == {"release": "b"}
    with pytest.raises(JobQueueError, match="not running"):
        q.complete(first, {})
    assert q.counts() == {QUEUED: 0, RUNNING: 1, DONE: 1, FAILED: 0}
    with pytest.raises(JobQueueError, match="no job"):
        q.get(10**12)
    q.close()


def test_failure_retries_then_fails_with_error(backend: Backend) -> None:
    q = open_queue(backend)
    jid = q.enqueue("inspect", {}, max_attempts=2)
    job = q.claim("w")
    assert job is not None
    q.fail(jid, "boom 1")
    assert q.get(jid).state == QUEUED and q.get(jid).error == "boom 1"
    job = q.claim("w")
    assert job is not None and job.attempts == 2
    q.fail(jid, "boom 2")
    final = q.get(jid)
    assert final.state == FAILED and final.error == "boom 2" and final.attempts == 2
    assert q.claim("w") is None
    with pytest.raises(JobQueueError):
        q.fail(jid, "too late")
    with pytest.raises(JobQueueError, match="max_attempts"):
        q.enqueue("inspect", {}, max_attempts=0)
    q.close()


def test_two_workers_never_share_a_job(backend: Backend) -> None:
    a, b = open_queue(backend), open_queue(backend)
    ids = {a.enqueue("inspect", {"n": n}) for n in range(20)}
    taken: list[int] = []
    for _ in range(10):
        for q, name in ((a, "a"), (b, "b")):
            job = q.claim(name)
            assert job is not None
            taken.append(job.id)
    assert sorted(taken) == sorted(ids)
    assert a.claim("a") is None and a.counts()[RUNNING] == 20
    a.close()
    b.close()


def test_a_job_finished_twice_records_one_result(backend: Backend) -> None:
    """Racing finishers (threads on their own handles): exactly one result is kept."""
    handles = [open_queue(backend) for _ in range(4)]
    jid = handles[0].enqueue("inspect", {})
    assert handles[0].claim("w") is not None
    start = threading.Barrier(len(handles))
    outcomes: list[str] = []

    def finish(n: int) -> None:
        start.wait()
        try:
            handles[n].complete(jid, {"by": n})
            outcomes.append(f"done {n}")
        except JobQueueError:
            outcomes.append("refused")

    threads = [threading.Thread(target=finish, args=(n,)) for n in range(len(handles))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o.startswith("done")]
    assert len(winners) == 1 and outcomes.count("refused") == len(handles) - 1
    assert handles[0].get(jid).result == {"by": int(winners[0].split()[1])}
    with pytest.raises(JobQueueError):
        handles[1].fail(jid, "late failure")
    assert handles[0].get(jid).state == DONE
    for q in handles:
        q.close()


#: A worker process that claims one job and is killed with SIGKILL while "running" it.
CRASHER = """
import os, sys
from pathlib import Path
kind, where, dsn, lease = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
if kind == 'sqlite':
    from clearance.gateway.queue import SQLiteJobQueue
    q = SQLiteJobQueue(Path(where), lease_seconds=lease)
else:
    from clearance.gateway.queue_postgres import PostgresJobQueue
    q = PostgresJobQueue(dsn, where, lease_seconds=lease)
job = q.claim('doomed')
print(job.id if job else 'none', flush=True)
os.kill(os.getpid(), 9)
"""

LEASE = 1.0


def _crash_a_worker(backend: Backend) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", CRASHER, *backend, str(LEASE)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    return proc.stdout.strip()


def _claim_within(q: JobQueue, seconds: float) -> int | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = q.claim("w2")
        if job is not None:
            return job.id
        time.sleep(0.05)
    return None


def test_worker_killed_mid_job_loses_nothing_then_fails_for_good(backend: Backend) -> None:
    q = open_queue(backend, lease_seconds=LEASE)
    jid = q.enqueue("inspect", {"n": 1}, max_attempts=2)
    other = q.enqueue("inspect", {"n": 2})
    # A real worker process claims the job and is killed (SIGKILL) before finishing.
    assert _crash_a_worker(backend) == str(jid)
    assert q.get(jid).state == RUNNING
    # Its lease still holds: the next worker gets the other job, not the dead one's.
    nxt = q.claim("w2")
    assert nxt is not None and nxt.id == other
    q.complete(other, {"ok": True})
    # Once the lease runs out the job is claimed again, as its second attempt.
    assert _claim_within(q, 10 * LEASE) == jid
    again = q.get(jid)
    assert again.state == RUNNING and again.attempts == 2 and again.payload == {"n": 1}
    q.complete(jid, {"ok": True})
    assert q.get(jid).state == DONE and q.counts() == {QUEUED: 0, RUNNING: 0, DONE: 2, FAILED: 0}
    q.close()


def test_two_kills_spend_the_attempts(backend: Backend) -> None:
    q = open_queue(backend, lease_seconds=LEASE)
    jid = q.enqueue("inspect", {"n": 1}, max_attempts=2)
    assert _crash_a_worker(backend) == str(jid)
    time.sleep(LEASE * 1.5)
    assert _crash_a_worker(backend) == str(jid)  # the retry, claimed and killed again
    assert q.get(jid).state == RUNNING
    time.sleep(LEASE * 1.5)
    assert q.claim("w3") is None  # recovery fails it instead of handing it out again
    final = q.get(jid)
    assert final.state == FAILED and "worker stopped" in (final.error or "")
    assert q.counts()[FAILED] == 1
    q.close()


@pytest.mark.postgres
def test_a_live_worker_keeps_a_long_job(queue_dsn: str) -> None:
    """On PostgreSQL a claim lasts as long as its worker's heartbeat, not a fixed time."""
    backend = ("postgres", f"jobs_{uuid.uuid4().hex[:12]}", queue_dsn)
    worker, other = open_queue(backend, LEASE), open_queue(backend, LEASE)
    jid = worker.enqueue("inspect", {})
    assert worker.claim("long") is not None
    time.sleep(LEASE * 3)
    assert other.claim("thief") is None
    worker.complete(jid, {"ok": True})
    assert other.get(jid).state == DONE and other.get(jid).attempts == 1
    worker.close()
    other.close()


@pytest.mark.postgres
def test_bad_queue_location_is_refused(queue_dsn: str) -> None:
    from clearance.gateway.queue_postgres import PostgresJobQueue

    with pytest.raises(GatewayInputError, match="not a plain identifier"):
        PostgresJobQueue(queue_dsn, "jobs; DROP TABLE x")
    with pytest.raises(GatewayInputError, match="cannot connect"):
        PostgresJobQueue("host=127.0.0.1 port=1 connect_timeout=2", "jobs")

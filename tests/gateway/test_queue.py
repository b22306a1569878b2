"""The JobQueue protocol on both backends: SQLite (embedded) and PostgreSQL (scale-out)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from clearance.gateway.errors import JobQueueError
from clearance.gateway.queue import DONE, FAILED, QUEUED, RUNNING, JobQueue, SQLiteJobQueue

PG_DSN = os.environ.get("CLEARANCE_PG_DSN", "dbname=postgres")

Opener = Callable[[], JobQueue]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(backend, where): a fresh queue location; opening it twice reaches the same jobs."""
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "q.sqlite")
        return
    import psycopg

    table = f"jobs_{uuid.uuid4().hex[:12]}"
    yield "postgres", table
    with psycopg.connect(PG_DSN, autocommit=True) as db:
        db.execute(f"DROP TABLE IF EXISTS {table}")


def _open(backend: tuple[str, str]) -> JobQueue:
    kind, where = backend
    if kind == "sqlite":
        return SQLiteJobQueue(Path(where))
    from clearance.gateway.queue_postgres import PostgresJobQueue

    return PostgresJobQueue(PG_DSN, where)


def _close(q: JobQueue) -> None:
    q.close()


def test_jobs_survive_reopen_and_run_in_order(backend: tuple[str, str]) -> None:
    q = _open(backend)
    first = q.enqueue("inspect", {"release": "a"})
    second = q.enqueue("inspect", {"release": "b"})
    _close(q)
    q = _open(backend)
    job = q.claim("w1")
    assert job is not None and job.id == first and job.state == RUNNING and job.attempts == 1
    q.complete(job.id, {"verdict": "approved"})
    assert q.get(first).state == DONE and q.get(first).result == {"verdict": "approved"}
    nxt = q.claim("w1")
    assert nxt is not None and nxt.id == second and nxt.payload == {"release": "b"}
    with pytest.raises(JobQueueError):
        q.complete(first, {})
    _close(q)


def test_failure_retries_then_fails_with_error(backend: tuple[str, str]) -> None:
    q = _open(backend)
    jid = q.enqueue("inspect", {}, max_attempts=2)
    job = q.claim("w")
    assert job is not None
    q.fail(jid, "boom 1")
    assert q.get(jid).state == QUEUED
    job = q.claim("w")
    assert job is not None and job.attempts == 2
    q.fail(jid, "boom 2")
    final = q.get(jid)
    assert final.state == FAILED and final.error == "boom 2"
    assert q.claim("w") is None
    _close(q)


def test_two_workers_never_share_a_job(backend: tuple[str, str]) -> None:
    a, b = _open(backend), _open(backend)
    ids = {a.enqueue("inspect", {"n": n}) for n in range(20)}
    taken: list[int] = []
    for _ in range(10):
        for q, name in ((a, "a"), (b, "b")):
            job = q.claim(name)
            assert job is not None
            taken.append(job.id)
    assert sorted(taken) == sorted(ids)
    assert a.claim("a") is None and a.counts()[RUNNING] == 20
    _close(a)
    _close(b)


CRASHER = (
    "import os, sys\n"
    "from pathlib import Path\n"
    "kind, where, dsn = sys.argv[1:4]\n"
    "if kind == 'sqlite':\n"
    "    from clearance.gateway.queue import SQLiteJobQueue\n"
    "    q = SQLiteJobQueue(Path(where))\n"
    "else:\n"
    "    from clearance.gateway.queue_postgres import PostgresJobQueue\n"
    "    q = PostgresJobQueue(dsn, where)\n"
    "job = q.claim('doomed', lease_seconds=0.5)\n"
    "print(job.id, flush=True)\n"
    "os.kill(os.getpid(), 9)\n"
)


def test_crashed_worker_job_is_retried_then_failed(backend: tuple[str, str]) -> None:
    q = _open(backend)
    jid = q.enqueue("inspect", {"n": 1}, max_attempts=2)
    # A real worker process claims the job and is killed before finishing.
    proc = subprocess.run(
        [sys.executable, "-c", CRASHER, *backend, PG_DSN], capture_output=True, text=True
    )
    assert proc.returncode == -9 and proc.stdout.strip() == str(jid), proc.stderr
    assert q.get(jid).state == RUNNING
    assert q.claim("w2") is None  # lease still held
    time.sleep(0.6)
    again = q.claim("w2", lease_seconds=0.2)
    assert again is not None and again.id == jid and again.attempts == 2
    time.sleep(0.3)  # this worker "crashes" too: out of attempts -> failed with an error
    assert q.claim("w3") is None
    assert q.get(jid).state == FAILED
    assert "worker stopped" in (q.get(jid).error or "")
    assert q.counts()[FAILED] == 1
    _close(q)

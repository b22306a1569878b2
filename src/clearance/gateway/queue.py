"""The persistent job queue that feeds inspection workers.

:class:`JobQueue` is the interface; :class:`SQLiteJobQueue` is the embedded
implementation in the gateway's store; the PostgreSQL queue
(:mod:`clearance.gateway.queue_postgres`) implements the same protocol for
workers on other machines.  A claimed job holds a lease: if its worker dies,
the lease runs out and the job is claimed again; after ``max_attempts`` claims
it is marked failed with the last error, so a job that crashes its worker
cannot loop forever.  How long a lease lasts is the queue's (``lease_seconds``
when it is opened): on SQLite from the claim, on PostgreSQL from the worker's
last heartbeat.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from clearance._sqlite import open_wal
from clearance.gateway.errors import JobQueueError

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: Mapping[str, Any]
    state: str
    attempts: int
    max_attempts: int
    error: str | None
    result: Mapping[str, Any] | None


class JobQueue(Protocol):
    def enqueue(self, kind: str, payload: Mapping[str, Any], *, max_attempts: int = 3) -> int: ...

    def claim(self, worker: str) -> Job | None: ...

    def complete(self, job_id: int, result: Mapping[str, Any]) -> None: ...

    def fail(self, job_id: int, error: str) -> None: ...

    def get(self, job_id: int) -> Job: ...

    def counts(self) -> dict[str, int]: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    lease_until REAL,
    worker TEXT,
    error TEXT,
    result TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, id);
"""


def record_failure(
    job: Job, requeue: Callable[[], None], fail_for_good: Callable[[], None]
) -> None:
    """The retry rule of every backend: a failed attempt of a running job goes back to the
    queue until its attempts are spent, then the job fails for good."""
    if job.state != RUNNING:
        raise JobQueueError(f"job {job.id} is {job.state}, not running")
    if job.attempts < job.max_attempts:
        requeue()
    else:
        fail_for_good()


def run_one_job(
    queue: JobQueue,
    worker: str,
    run: Callable[[Job], Mapping[str, Any]],
    expected_errors: tuple[type[BaseException], ...],
    on_failed_for_good: Callable[[Job, str], None] | None = None,
) -> bool:
    """Claim one job, run it, and record the outcome; False when the queue was empty.

    An error of ``expected_errors`` is a failed attempt (retried until the
    job's attempts are spent, then failed for good with its message); any other
    exception escapes and leaves the lease to expire, so the job is retried.
    """
    job = queue.claim(worker)
    if job is None:
        return False
    try:
        result = run(job)
    except expected_errors as exc:
        message = f"{type(exc).__name__}: {exc}"
        _log.warning("job %d failed: %s", job.id, message)
        queue.fail(job.id, message)
        if queue.get(job.id).state == FAILED:
            _log.error("job %d failed for good: %s", job.id, message)
            if on_failed_for_good is not None:
                on_failed_for_good(job, message)
        return True
    queue.complete(job.id, result)
    return True


class SQLiteJobQueue:
    """Jobs in one SQLite file (WAL mode, synchronous=FULL: an enqueued job survives a crash).

    ``path`` may be ``":memory:"`` for a queue that lives as long as the object.  A claim
    lasts ``lease_seconds`` from the moment it is made (long enough for an inspection: the
    embedded workers are threads of the gateway, which restarts them all at once).
    """

    def __init__(self, path: Path | str, *, lease_seconds: float = 600.0) -> None:
        if lease_seconds <= 0:
            raise JobQueueError(f"lease_seconds must be positive, not {lease_seconds}")
        self._lease = lease_seconds
        self._lock = threading.Lock()
        self._db = open_wal(path, _SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def enqueue(self, kind: str, payload: Mapping[str, Any], *, max_attempts: int = 3) -> int:
        if max_attempts < 1:
            raise JobQueueError("max_attempts must be at least 1")
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO jobs(kind, payload, state, max_attempts, created, updated) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (kind, json.dumps(dict(payload), sort_keys=True), QUEUED, max_attempts, now, now),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def claim(self, worker: str) -> Job | None:
        """Take the oldest queued job, or one whose worker's lease ran out (it crashed)."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # Crashed jobs that used up their attempts are failed, not retried again.
                self._db.execute(
                    "UPDATE jobs SET state=?, updated=?, "
                    "error=COALESCE(error, 'worker stopped while running the job') "
                    "WHERE state=? AND lease_until < ? AND attempts >= max_attempts",
                    (FAILED, now, RUNNING, now),
                )
                row = self._db.execute(
                    "SELECT id FROM jobs WHERE state=? OR (state=? AND lease_until < ?) "
                    "ORDER BY id LIMIT 1",
                    (QUEUED, RUNNING, now),
                ).fetchone()
                if row is None:
                    self._db.execute("COMMIT")
                    return None
                self._db.execute(
                    "UPDATE jobs SET state=?, attempts=attempts+1, lease_until=?, worker=?, "
                    "updated=? WHERE id=?",
                    (RUNNING, now + self._lease, worker, now, row[0]),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(row[0])

    def complete(self, job_id: int, result: Mapping[str, Any]) -> None:
        self._finish(job_id, DONE, None, json.dumps(dict(result), sort_keys=True))

    def fail(self, job_id: int, error: str) -> None:
        """Record a failed attempt: back to the queue, or failed for good after the last one."""

        def requeue() -> None:
            with self._lock:
                self._db.execute(
                    "UPDATE jobs SET state=?, lease_until=NULL, error=?, updated=? WHERE id=?",
                    (QUEUED, error, time.time(), job_id),
                )

        record_failure(self.get(job_id), requeue, lambda: self._finish(job_id, FAILED, error, None))

    def _finish(self, job_id: int, state: str, error: str | None, result: str | None) -> None:
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET state=?, error=?, result=?, lease_until=NULL, updated=? "
                "WHERE id=? AND state=?",
                (state, error, result, time.time(), job_id, RUNNING),
            )
            if cur.rowcount != 1:
                raise JobQueueError(f"job {job_id} is not running (unknown or already finished)")

    def get(self, job_id: int) -> Job:
        with self._lock:
            row = self._db.execute(
                "SELECT id, kind, payload, state, attempts, max_attempts, error, result "
                "FROM jobs WHERE id=?",
                (job_id,),
            ).fetchone()
        if row is None:
            raise JobQueueError(f"no job {job_id}")
        return Job(
            id=row[0],
            kind=row[1],
            payload=json.loads(row[2]),
            state=row[3],
            attempts=row[4],
            max_attempts=row[5],
            error=row[6],
            result=None if row[7] is None else json.loads(row[7]),
        )

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        out = {QUEUED: 0, RUNNING: 0, DONE: 0, FAILED: 0}
        out.update({str(s): int(n) for s, n in rows})
        return out

"""The job queue on PostgreSQL through procrastinate, for workers on many machines.

Same :class:`~clearance.gateway.queue.JobQueue` protocol as the SQLite queue.
procrastinate owns the jobs: its schema (applied once per database, under an
advisory lock so replicas starting together do not race), its ``defer``,
``fetch`` (``FOR UPDATE SKIP LOCKED``), ``retry`` and ``finish`` functions,
and its worker heartbeats.  This module adds what the gateway needs and
procrastinate does not keep: the ``max_attempts`` of a job (in its args), and
its result or last error (table ``clearance_job_outcomes``, written in the
same statement that finishes the job, so a job finished twice cannot record
two results).

Liveness is procrastinate's: each queue handle registers as a procrastinate
worker and sends a heartbeat every ``lease_seconds / 4``.  A running job whose
worker's heartbeat is older than ``lease_seconds`` (a process killed with
``kill -9``, a machine gone) is retried, or failed with
``worker stopped while running the job`` once its attempts are spent.  A long
inspection is never taken from a worker that is alive.

The gateway's callers are synchronous, so the handle uses the synchronous side
of procrastinate's ``PsycopgConnector`` (its ``SyncPsycopgConnector``, a psycopg 3
connection pool, autocommit, one round trip per operation) and procrastinate's SQL
queries and functions directly.  A first version ran procrastinate's asynchronous
job manager on an event loop in a thread of its own, over a pool that checked each
connection on checkout and committed separately: it had about half the throughput
and ten times the latency (docs/gateway.md, *Why procrastinate, measured*).

:class:`LeaderLease` (the replicas' advisory lock for background work) lives here too.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Mapping
from typing import Any, cast

import procrastinate
import psycopg
import psycopg_pool
from procrastinate import exceptions as procrastinate_errors
from procrastinate import jobs as procrastinate_jobs
from procrastinate.schema import SchemaManager
from procrastinate.sql import queries as procrastinate_queries
from procrastinate.sync_psycopg_connector import SyncPsycopgConnector
from psycopg.types.json import Jsonb

from clearance.gateway._pg import SCHEMA_LOCK as GATEWAY_SCHEMA_LOCK
from clearance.gateway.errors import GatewayInputError, JobQueueError
from clearance.gateway.queue import DONE, FAILED, QUEUED, RUNNING, Job, record_failure

_QUEUE_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: pg_advisory_lock key serialising schema creation ("clr-prq1" as an int64).
_SCHEMA_LOCK = int.from_bytes(b"clr-prq1", "big") & 0x7FFF_FFFF_FFFF_FFFF
STOPPED = "worker stopped while running the job"

_OUTCOMES = """
CREATE TABLE IF NOT EXISTS clearance_job_outcomes (
    job_id BIGINT PRIMARY KEY REFERENCES procrastinate_jobs(id) ON DELETE CASCADE,
    result JSONB,
    error TEXT
)
"""
# Finishing and recording happen in one statement, so both or neither: procrastinate's
# finish moves a job out of 'doing' once (a second finisher waits on the row, then raises).
_FINISH = """
WITH finished AS (
    SELECT procrastinate_finish_job_v1(id, %(status)s::procrastinate_job_status, false)
      FROM procrastinate_jobs WHERE id = %(job_id)s AND status = 'doing'
)
INSERT INTO clearance_job_outcomes(job_id, result, error)
SELECT %(job_id)s, %(result)s, %(error)s FROM finished
ON CONFLICT (job_id) DO UPDATE
   SET result = EXCLUDED.result, error = COALESCE(EXCLUDED.error, clearance_job_outcomes.error)
"""
# procrastinate's fetch (oldest first, FOR UPDATE SKIP LOCKED) and the previous error, in one trip.
_FETCH = """
SELECT f.id, f.task_name, f.args, f.status::text, f.attempts, NULL::jsonb, o.error
  FROM procrastinate_fetch_job_v2(%(queues)s::varchar[], %(worker_id)s) f
  LEFT JOIN clearance_job_outcomes o ON o.job_id = f.id
 WHERE f.id IS NOT NULL
"""
# procrastinate's retry, due at the database's clock (a worker's skewed clock must not delay it).
_RETRY = "SELECT procrastinate_retry_job_v2(%(job_id)s, now(), NULL, NULL, NULL)"
_RECORD_ERROR = """
INSERT INTO clearance_job_outcomes(job_id, error) VALUES (%(job_id)s, %(error)s)
ON CONFLICT (job_id) DO UPDATE SET error = EXCLUDED.error
"""
_GET = """
SELECT j.id, j.task_name, j.args, j.status::text, j.attempts, o.result, o.error
  FROM procrastinate_jobs j LEFT JOIN clearance_job_outcomes o ON o.job_id = j.id
 WHERE j.id = %(job_id)s AND j.queue_name = %(queue)s
"""
_COUNTS = """
SELECT status::text, COUNT(*) FROM procrastinate_jobs WHERE queue_name = %(queue)s GROUP BY status
"""
_STATES = {
    "todo": QUEUED,
    "doing": RUNNING,
    "succeeded": DONE,
    "failed": FAILED,
    "cancelled": FAILED,
    "aborted": FAILED,
}


class PostgresJobQueue:
    """Jobs of one procrastinate queue (``queue_name``) in the database of ``dsn``."""

    def __init__(
        self, dsn: str, queue_name: str = "clearance_jobs", *, lease_seconds: float = 30.0
    ) -> None:
        if not _QUEUE_NAME_RE.match(queue_name):
            raise GatewayInputError(f"job queue name {queue_name!r} is not a plain identifier")
        if lease_seconds <= 0:
            raise GatewayInputError(f"lease_seconds must be positive, not {lease_seconds}")
        self._queue = queue_name
        self._lease = lease_seconds
        self._next_recovery = 0.0
        _apply_schema(dsn)
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))
        self._manager = app.job_manager
        self._db = cast(SyncPsycopgConnector, app.connector.get_sync_connector())
        # Our own pool, handed to procrastinate: autocommit (every query is one statement,
        # so no COMMIT round trip) and no liveness check on checkout (another round trip);
        # a broken connection is dropped by the pool when it is given back.
        self._pool = psycopg_pool.ConnectionPool(
            dsn, min_size=1, max_size=4, kwargs={"autocommit": True}, open=True
        )
        self._db.open(self._pool)
        row = self._db.execute_query_one(query=procrastinate_queries["register_worker"])
        self._worker_id = int(row["worker_id"])
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(
            target=self._beat, name=f"jobs-heartbeat-{queue_name}", daemon=True
        )
        self._heartbeat.start()

    def _beat(self) -> None:
        while not self._stop.wait(self._lease / 4):
            # A missed beat (database restarting) is retried at the next one.
            with contextlib.suppress(procrastinate_errors.ConnectorException):
                self._db.execute_query(
                    query=procrastinate_queries["update_heartbeat"], worker_id=self._worker_id
                )

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._heartbeat.join()
        with contextlib.suppress(procrastinate_errors.ConnectorException):
            self._db.execute_query(
                query=procrastinate_queries["unregister_worker"], worker_id=self._worker_id
            )
        self._pool.close()

    def _execute(self, query: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        with self._pool.connection() as conn:
            cur = conn.execute(cast(Any, query), params)
            return cur.fetchall() if cur.description else [(cur.rowcount,)]

    # --- the JobQueue protocol ---------------------------------------------------------

    def enqueue(self, kind: str, payload: Mapping[str, Any], *, max_attempts: int = 3) -> int:
        if max_attempts < 1:
            raise JobQueueError("max_attempts must be at least 1")
        job = procrastinate_jobs.Job(
            id=None,
            queue=self._queue,
            lock=None,
            queueing_lock=None,
            task_name=kind,
            task_kwargs={"payload": dict(payload), "max_attempts": max_attempts},
        )
        deferred = self._manager.defer_job(job)
        assert deferred.id is not None
        return deferred.id

    def claim(self, worker: str) -> Job | None:
        """Take the oldest queued job (after retrying those of workers that stopped)."""
        if time.monotonic() >= self._next_recovery:
            # Recovery scans every running job: once per quarter lease is often enough.
            self._next_recovery = time.monotonic() + self._lease / 4
            self._recover_stalled()
        rows = self._execute(_FETCH, {"queues": [self._queue], "worker_id": self._worker_id})
        return _job(rows[0]) if rows else None

    def _recover_stalled(self) -> None:
        rows = self._db.execute_query_all(
            query=procrastinate_queries["select_stalled_jobs_by_heartbeat"],
            queue=self._queue,
            task_name=None,
            seconds_since_heartbeat=self._lease,
        )
        for job in map(procrastinate_jobs.Job.from_row, rows):
            assert job.id is not None
            # procrastinate counts finished attempts; the stalled one has not finished.
            if job.attempts + 1 >= int(str(job.task_kwargs.get("max_attempts", 1))):
                self._finish(job.id, "failed", None, STOPPED)
                continue
            # Another claimer may retry it first: then it is no longer 'doing'.
            with contextlib.suppress(psycopg.errors.RaiseException):
                self._execute(_RETRY, {"job_id": job.id})

    def complete(self, job_id: int, result: Mapping[str, Any]) -> None:
        if not self._finish(job_id, "succeeded", dict(result), None):
            raise JobQueueError(f"job {job_id} is not running (unknown or already finished)")

    def _finish(
        self, job_id: int, status: str, result: dict[str, Any] | None, error: str | None
    ) -> bool:
        params = {
            "job_id": job_id,
            "status": status,
            "result": None if result is None else Jsonb(result),
            "error": error,
        }
        try:
            rows = self._execute(_FINISH, params)
        except psycopg.errors.RaiseException:
            return False  # finished by another worker meanwhile
        return bool(rows[0][0])

    def fail(self, job_id: int, error: str) -> None:
        """Record a failed attempt: back to the queue, or failed for good after the last one."""

        def requeue() -> None:
            self._execute(_RECORD_ERROR, {"job_id": job_id, "error": error})
            self._execute(_RETRY, {"job_id": job_id})

        def fail_for_good() -> None:
            if not self._finish(job_id, "failed", None, error):
                raise JobQueueError(f"job {job_id} is not running (unknown or already finished)")

        record_failure(self.get(job_id), requeue, fail_for_good)

    def get(self, job_id: int) -> Job:
        rows = self._execute(_GET, {"job_id": job_id, "queue": self._queue})
        if not rows:
            raise JobQueueError(f"no job {job_id}")
        return _job(rows[0])

    def counts(self) -> dict[str, int]:
        out = {QUEUED: 0, RUNNING: 0, DONE: 0, FAILED: 0}
        for status, n in self._execute(_COUNTS, {"queue": self._queue}):
            out[_STATES[str(status)]] += int(n)
        return out


def _apply_schema(dsn: str) -> None:
    """procrastinate's schema, once per database; our outcomes table beside it."""
    try:
        # Fail fast on a bad DSN instead of the pool's endless reconnect attempts.
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise GatewayInputError(f"cannot connect to PostgreSQL ({dsn!r}): {exc}") from None
    with conn:
        # Replicas start together: without the lock two would both see no schema.
        conn.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
        try:
            row = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
            if not (row and row[0]):
                conn.execute(cast(Any, SchemaManager.get_schema()))
            conn.execute(_OUTCOMES)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))


def _job(row: tuple[Any, ...]) -> Job:
    id_, kind, args, status, attempts, result, error = row
    state = _STATES[status]
    return Job(
        id=int(id_),
        kind=str(kind),
        payload=dict(args["payload"]),
        state=state,
        # procrastinate counts finished attempts; the gateway counts claims.
        attempts=int(attempts) + (1 if state == RUNNING else 0),
        max_attempts=int(args["max_attempts"]),
        error=error,
        result=None if result is None else dict(result),
    )


#: Where the leader (the replicas' sequencer) is reached; written by the leader only.
_SEQUENCER_TABLE = """CREATE TABLE IF NOT EXISTS clr_gw_sequencer (
    id integer PRIMARY KEY CHECK (id = 1), url text NOT NULL, holder text NOT NULL,
    since timestamptz NOT NULL DEFAULT now())"""

#: pg_advisory_lock key of the background leader ("clr-bg01" as an int64).
LEADER_KEY = int.from_bytes(b"clr-bg01", "big") & 0x7FFF_FFFF_FFFF_FFFF


class LeaderLease:
    """Try to hold the background-leader advisory lock; :meth:`poll` keeps trying.

    The leader is also the replicas' sequencer (``clearance.gateway._forwarding``): it
    writes the address given to :meth:`advertise` into ``clr_gw_sequencer`` once it holds
    the lock, and every other replica reads that address at each poll."""

    def __init__(self, dsn: str, name: str) -> None:
        self._dsn = dsn
        self._name = name
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._leader = False
        self._lock = threading.Lock()
        self._advertised: str | None = None
        self._written: str | None = None  # what this leader last wrote as the address
        self._sequencer: str | None = None  # the leader's address, read by a follower

    @property
    def is_leader(self) -> bool:
        return self._leader

    @property
    def sequencer_url(self) -> str | None:
        """The leader's advertised address, as last read (None: none advertised)."""
        return self._sequencer

    def advertise(self, url: str) -> None:
        """Where other replicas reach this one: written while this replica leads."""
        with self._lock:
            self._advertised = url

    def poll(self) -> bool:
        """Take the lease if free; check it is still held if taken. True on becoming leader."""
        with self._lock:
            try:
                if self._conn is None or self._conn.closed or self._conn.broken:
                    self._leader = False
                    self._conn = psycopg.connect(
                        self._dsn,
                        autocommit=True,
                        application_name=self._name + "/leader",
                        connect_timeout=5,
                    )
                    with self._conn.transaction():
                        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (GATEWAY_SCHEMA_LOCK,))
                        self._conn.execute(_SEQUENCER_TABLE)
                became = False
                if not self._leader:
                    row = self._conn.execute(
                        "SELECT pg_try_advisory_lock(%s)", (LEADER_KEY,)
                    ).fetchone()
                    self._leader = became = bool(row and row[0])
                    self._written = None
                if self._leader:
                    self._sequencer = self._advertised
                    if self._advertised is not None and self._written != self._advertised:
                        self._conn.execute(
                            "INSERT INTO clr_gw_sequencer (id, url, holder) VALUES (1, %s, %s) "
                            "ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, "
                            "holder = EXCLUDED.holder, since = now()",
                            (self._advertised, self._name),
                        )
                        self._written = self._advertised
                    else:
                        self._conn.execute("SELECT 1")  # a dead connection means a lost lease
                    return became
                found = self._conn.execute(
                    "SELECT url FROM clr_gw_sequencer WHERE id = 1"
                ).fetchone()
                self._sequencer = None if found is None else str(found[0])
                return False
            except psycopg.Error as exc:
                if self._leader:
                    logging.getLogger("clearance.gateway").warning(
                        "replica %s lost the leader lease: %s", self._name, exc
                    )
                self._leader = False
                self._sequencer = None
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                return False

    def close(self) -> None:
        """Give up the lease; a leader first withdraws its address, so the followers stop
        forwarding to it at their next poll instead of failing to reach it until another
        replica leads (the row is only this holder's while it holds the lock)."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(psycopg.Error):
                    if self._leader and self._written is not None:
                        self._conn.execute(
                            "DELETE FROM clr_gw_sequencer WHERE id = 1 AND holder = %s",
                            (self._name,),
                        )
                    self._conn.close()
                self._conn = None
            self._leader = False
            self._sequencer = None

"""The job queue on PostgreSQL, for the scale-out shape: workers on many machines.

Same :class:`~clearance.gateway.queue.JobQueue` protocol and semantics as the
SQLite queue (leases, retries, failed with the last error).  Claims use
``FOR UPDATE SKIP LOCKED`` so that concurrent workers never take the same job,
and every time comparison uses the database's clock, so workers with skewed
clocks agree on whose lease ran out.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from clearance.gateway.errors import GatewayInputError, JobQueueError
from clearance.gateway.queue import DONE, FAILED, QUEUED, RUNNING, Job, record_failure

_TABLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_NOW = "extract(epoch from clock_timestamp())"


#: pg_advisory_xact_lock key serialising schema creation ("clr-jobq" as an int64).
_SCHEMA_LOCK = int.from_bytes(b"clr-jobq", "big") & 0x7FFF_FFFF_FFFF_FFFF


class PostgresJobQueue:
    """Jobs in one PostgreSQL table (``dsn``: a libpq connection string)."""

    def __init__(
        self, dsn: str, table: str = "clearance_jobs", *, lease_seconds: float = 600.0
    ) -> None:
        self._lease = lease_seconds
        if not _TABLE_RE.match(table):
            raise GatewayInputError(f"job table name {table!r} is not a plain identifier")
        self._table = sql.Identifier(table)
        self._index = sql.Identifier(f"{table}_state")
        self._lock = threading.Lock()
        try:
            self._db = psycopg.connect(dsn, autocommit=True)
        except psycopg.Error as exc:
            raise GatewayInputError(f"cannot connect to PostgreSQL ({dsn!r}): {exc}") from None
        # Replicas start at the same time: IF NOT EXISTS alone races in the catalog, so
        # the schema is created under a transaction-scoped advisory lock.
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            self._create_schema()

    def _create_schema(self) -> None:
        self._db.execute(
            self._q(
                "CREATE TABLE IF NOT EXISTS {t} ("
                "id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, payload JSONB NOT NULL,"
                " state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
                " max_attempts INTEGER NOT NULL, lease_until DOUBLE PRECISION, worker TEXT,"
                " error TEXT, result JSONB,"
                " created DOUBLE PRECISION NOT NULL DEFAULT {now},"
                " updated DOUBLE PRECISION NOT NULL DEFAULT {now})"
            )
        )
        self._db.execute(self._q("CREATE INDEX IF NOT EXISTS {index} ON {t}(state, id)"))

    def _q(self, text: str) -> sql.Composed:
        # Identifiers are quoted by psycopg; values always travel as parameters.
        return sql.SQL(text).format(t=self._table, now=sql.SQL(_NOW), index=self._index)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def enqueue(self, kind: str, payload: Mapping[str, Any], *, max_attempts: int = 3) -> int:
        if max_attempts < 1:
            raise JobQueueError("max_attempts must be at least 1")
        with self._lock:
            row = self._db.execute(
                self._q(
                    "INSERT INTO {t}(kind, payload, state, max_attempts) "
                    "VALUES (%s, %s, %s, %s) RETURNING id"
                ),
                (kind, json.dumps(dict(payload), sort_keys=True), QUEUED, max_attempts),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def claim(self, worker: str) -> Job | None:
        with self._lock, self._db.transaction():
            self._db.execute(
                self._q(
                    "UPDATE {t} SET state=%s, updated={now}, "
                    "error=COALESCE(error, 'worker stopped while running the job') "
                    "WHERE state=%s AND lease_until < {now} AND attempts >= max_attempts"
                ),
                (FAILED, RUNNING),
            )
            row = self._db.execute(
                self._q(
                    "WITH next AS (SELECT id FROM {t} WHERE state=%s "
                    "OR (state=%s AND lease_until < {now}) ORDER BY id "
                    "FOR UPDATE SKIP LOCKED LIMIT 1) "
                    "UPDATE {t} AS j SET state=%s, attempts=j.attempts+1, "
                    "lease_until={now} + %s, worker=%s, updated={now} "
                    "FROM next WHERE j.id = next.id RETURNING j.id"
                ),
                (QUEUED, RUNNING, RUNNING, self._lease, worker),
            ).fetchone()
        return None if row is None else self.get(int(row[0]))

    def complete(self, job_id: int, result: Mapping[str, Any]) -> None:
        self._finish(job_id, DONE, None, json.dumps(dict(result), sort_keys=True))

    def fail(self, job_id: int, error: str) -> None:
        def requeue() -> None:
            with self._lock:
                self._db.execute(
                    self._q(
                        "UPDATE {t} SET state=%s, lease_until=NULL, error=%s, "
                        "updated={now} WHERE id=%s"
                    ),
                    (QUEUED, error, job_id),
                )

        record_failure(self.get(job_id), requeue, lambda: self._finish(job_id, FAILED, error, None))

    def _finish(self, job_id: int, state: str, error: str | None, result: str | None) -> None:
        with self._lock:
            cur = self._db.execute(
                self._q(
                    "UPDATE {t} SET state=%s, error=%s, result=%s, lease_until=NULL, "
                    "updated={now} WHERE id=%s AND state=%s"
                ),
                (state, error, result, job_id, RUNNING),
            )
            if cur.rowcount != 1:
                raise JobQueueError(f"job {job_id} is not running (unknown or already finished)")

    def get(self, job_id: int) -> Job:
        with self._lock:
            row = self._db.execute(
                self._q(
                    "SELECT id, kind, payload, state, attempts, max_attempts, error, result "
                    "FROM {t} WHERE id=%s"
                ),
                (job_id,),
            ).fetchone()
        if row is None:
            raise JobQueueError(f"no job {job_id}")
        return Job(
            id=int(row[0]),
            kind=str(row[1]),
            payload=dict(row[2]),
            state=str(row[3]),
            attempts=int(row[4]),
            max_attempts=int(row[5]),
            error=row[6],
            result=None if row[7] is None else dict(row[7]),
        )

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                self._q("SELECT state, COUNT(*) FROM {t} GROUP BY state")
            ).fetchall()
        out = {QUEUED: 0, RUNNING: 0, DONE: 0, FAILED: 0}
        out.update({str(s): int(n) for s, n in rows})
        return out


#: pg_advisory_lock key of the background leader ("clr-bg01" as an int64).
LEADER_KEY = int.from_bytes(b"clr-bg01", "big") & 0x7FFF_FFFF_FFFF_FFFF


class LeaderLease:
    """Try to hold the background-leader advisory lock; :meth:`poll` keeps trying."""

    def __init__(self, dsn: str, name: str) -> None:
        self._dsn = dsn
        self._name = name
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._leader = False
        self._lock = threading.Lock()

    @property
    def is_leader(self) -> bool:
        return self._leader

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
                if self._leader:
                    self._conn.execute("SELECT 1")  # a dead connection means a lost lease
                    return False
                row = self._conn.execute(
                    "SELECT pg_try_advisory_lock(%s)", (LEADER_KEY,)
                ).fetchone()
            except psycopg.Error as exc:
                if self._leader:
                    logging.getLogger("clearance.gateway").warning(
                        "replica %s lost the leader lease: %s", self._name, exc
                    )
                self._leader = False
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                return False
            self._leader = bool(row and row[0])
            return self._leader

    def close(self) -> None:
        with self._lock:
            self._leader = False
            if self._conn is not None:
                with contextlib.suppress(psycopg.Error):
                    self._conn.close()
                self._conn = None

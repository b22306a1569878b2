"""Health-report stores: the individual reports of bulk requests, and their aggregates.

:class:`SQLiteHealthReportStore` is ``health.sqlite`` in the data directory;
:class:`PostgresHealthReportStore` keeps the same rows in the gateway's
PostgreSQL database, so that reports posted to any replica are aggregated by
whichever replica leads.  Each class is the only holder of its backend's SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from clearance.gateway._pg import Pool, database_error, open_pool
from clearance.gateway.health_batch import AcceptedReport
from clearance.gateway.store_sqlite import SQLiteFile

_HEALTH_SCHEMA = """
CREATE TABLE IF NOT EXISTS health_reports (
    sha256 TEXT PRIMARY KEY,
    release TEXT NOT NULL,
    customer TEXT NOT NULL,
    ring TEXT NOT NULL,
    status TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    aggregate_index INTEGER
);
CREATE INDEX IF NOT EXISTS health_reports_open
    ON health_reports(aggregate_index, window_start, release, ring);
"""


class SQLiteHealthReportStore(SQLiteFile):
    """``health.sqlite``: individual reports and which aggregate (log index) holds them.

    WAL and ``BEGIN IMMEDIATE``: replicas sharing the data directory write to
    it safely; a bulk request is one transaction.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, _HEALTH_SCHEMA, "FULL")  # accepted reports survive a power cut

    def add_many(
        self, reports: Sequence[AcceptedReport], window_start: int
    ) -> list[AcceptedReport]:
        """Store the reports; returns those that were new (a resent report counts once)."""
        new: list[AcceptedReport] = []
        with self._transaction() as db:
            for r in reports:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO health_reports VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                    (r.sha256, r.release, r.customer, r.ring, r.status, window_start, r.envelope),
                )
                if cursor.rowcount == 1:
                    new.append(r)
        return new

    def closed_windows(self, before: int) -> list[tuple[str, str, int]]:
        """(release, ring, window_start) with reports not yet aggregated, windows before ``before``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT release, ring, window_start FROM health_reports "
                "WHERE aggregate_index IS NULL AND window_start < ? ORDER BY window_start",
                (before,),
            ).fetchall()
        return [(str(a), str(b), int(c)) for a, b, c in rows]

    def window(self, release: str, ring: str, window_start: int) -> list[tuple[str, str, bytes]]:
        """The reports of a window not yet in any aggregate."""
        with self._lock:
            rows = self._db.execute(
                "SELECT sha256, status, envelope FROM health_reports WHERE release = ? AND "
                "ring = ? AND window_start = ? AND aggregate_index IS NULL ORDER BY sha256",
                (release, ring, window_start),
            ).fetchall()
        return [(str(s), str(t), bytes(e)) for s, t, e in rows]

    def mark(self, sha256s: Sequence[str], log_index: int) -> None:
        """Record that these reports are in the aggregate at ``log_index`` (late ones are not)."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE health_reports SET aggregate_index = ? WHERE sha256 = ?",
                [(log_index, s) for s in sha256s],
            )

    def in_aggregate(self, log_index: int) -> list[tuple[str, str, bytes]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT sha256, status, envelope FROM health_reports "
                "WHERE aggregate_index = ? ORDER BY sha256",
                (log_index,),
            ).fetchall()
        return [(str(s), str(t), bytes(e)) for s, t, e in rows]

    def counts(self) -> tuple[int, int]:
        """(reports stored, reports already in a logged aggregate)."""
        with self._lock:
            row = self._db.execute(
                "SELECT count(*), count(aggregate_index) FROM health_reports"
            ).fetchone()
        return int(row[0]), int(row[1])


_PG_HEALTH_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS clr_gw_health_reports (
        sha256 text PRIMARY KEY, release text NOT NULL, customer text NOT NULL,
        ring text NOT NULL, status text NOT NULL, window_start bigint NOT NULL,
        envelope bytea NOT NULL, aggregate_index bigint)""",
    """CREATE INDEX IF NOT EXISTS clr_gw_health_reports_open
        ON clr_gw_health_reports(aggregate_index, window_start, release, ring)""",
)


class PostgresHealthReportStore:
    """The same rows as :class:`SQLiteHealthReportStore`, in the gateway's PostgreSQL
    database: every replica accepts bulk reports, the leader aggregates them all."""

    def __init__(self, dsn: str, *, name: str = "clearance-health", pool_size: int = 4) -> None:
        self._dsn = dsn
        self._pool: Pool = open_pool(dsn, name, _PG_HEALTH_SCHEMA, max_size=pool_size)

    def close(self) -> None:
        self._pool.close()

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            with self._pool.connection() as conn:
                return conn.execute(sql, params).fetchall()
        except psycopg.OperationalError as exc:
            raise database_error(self._dsn, exc) from None

    def add_many(
        self, reports: Sequence[AcceptedReport], window_start: int
    ) -> list[AcceptedReport]:
        """Store the reports in one statement; returns those that were new."""
        if not reports:
            return []
        inserted = self._query(
            "INSERT INTO clr_gw_health_reports "
            "(sha256, release, customer, ring, status, window_start, envelope) "
            "SELECT s, r, c, g, t, %s, e FROM unnest("
            "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::bytea[]) "
            "AS u(s, r, c, g, t, e) ON CONFLICT (sha256) DO NOTHING RETURNING sha256",
            (
                window_start,
                [r.sha256 for r in reports],
                [r.release for r in reports],
                [r.customer for r in reports],
                [r.ring for r in reports],
                [r.status for r in reports],
                [r.envelope for r in reports],
            ),
        )
        fresh = {str(row[0]) for row in inserted}
        new: list[AcceptedReport] = []
        for r in reports:  # a report sent twice in one request counts once
            if r.sha256 in fresh:
                fresh.discard(r.sha256)
                new.append(r)
        return new

    def closed_windows(self, before: int) -> list[tuple[str, str, int]]:
        rows = self._query(
            "SELECT DISTINCT release, ring, window_start FROM clr_gw_health_reports "
            "WHERE aggregate_index IS NULL AND window_start < %s "
            "ORDER BY window_start, release, ring",
            (before,),
        )
        return [(str(a), str(b), int(c)) for a, b, c in rows]

    def window(self, release: str, ring: str, window_start: int) -> list[tuple[str, str, bytes]]:
        rows = self._query(
            "SELECT sha256, status, envelope FROM clr_gw_health_reports WHERE release = %s AND "
            "ring = %s AND window_start = %s AND aggregate_index IS NULL ORDER BY sha256",
            (release, ring, window_start),
        )
        return [(str(s), str(t), bytes(e)) for s, t, e in rows]

    def mark(self, sha256s: Sequence[str], log_index: int) -> None:
        self._query(
            "UPDATE clr_gw_health_reports SET aggregate_index = %s "
            "WHERE sha256 = ANY(%s::text[]) RETURNING 1",
            (log_index, list(sha256s)),
        )

    def in_aggregate(self, log_index: int) -> list[tuple[str, str, bytes]]:
        rows = self._query(
            "SELECT sha256, status, envelope FROM clr_gw_health_reports "
            "WHERE aggregate_index = %s ORDER BY sha256",
            (log_index,),
        )
        return [(str(s), str(t), bytes(e)) for s, t, e in rows]

    def counts(self) -> tuple[int, int]:
        rows = self._query("SELECT count(*), count(aggregate_index) FROM clr_gw_health_reports", ())
        return int(rows[0][0]), int(rows[0][1])

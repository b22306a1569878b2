"""The embedded health-report store: the individual reports of bulk requests, and
which logged aggregate holds each, in ``health.sqlite``.

:class:`SQLiteHealthReportStore` is the only holder of this backend's SQL;
:class:`~clearance.gateway.health_store_postgres.PostgresHealthReportStore`
keeps the same rows in PostgreSQL for replicas.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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

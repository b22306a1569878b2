"""The health-report store in PostgreSQL: reports posted to any replica, aggregated by
whichever replica leads.  :class:`PostgresHealthReportStore` is the only holder of
this backend's SQL (the interface is :class:`~clearance.gateway.store.HealthReportStore`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg

from clearance.gateway._pg import Pool, database_error, open_pool
from clearance.gateway.health_batch import AcceptedReport

_PG_HEALTH_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS clr_gw_health_reports (
        sha256 text PRIMARY KEY, release text NOT NULL, customer text NOT NULL,
        ring text NOT NULL, status text NOT NULL, window_start bigint NOT NULL,
        envelope bytea NOT NULL, aggregate_index bigint)""",
    """CREATE INDEX IF NOT EXISTS clr_gw_health_reports_open
        ON clr_gw_health_reports(aggregate_index, window_start, release, ring)""",
)


#: Where a bulk request's rows are copied before they are inserted: one per session,
#: emptied at every commit.
_STAGING_TABLE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS clr_gw_health_incoming (sha256 text, release text, "
    "customer text, ring text, status text, envelope bytea) ON COMMIT DELETE ROWS"
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
        """Store the reports in one transaction; returns those that were new."""
        if not reports:
            return []
        # Binary COPY into a session's staging table, then one INSERT from it: psycopg
        # writes COPY rows in C, where a JSON document or arrays of parameters cost several
        # microseconds per row in Python (measured: 2.7 against 11 per row), and the bulk
        # path is the gateway's high-volume write.
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                cur.execute(_STAGING_TABLE)
                with cur.copy(
                    "COPY clr_gw_health_incoming (sha256, release, customer, ring, status, "
                    "envelope) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["text", "text", "text", "text", "text", "bytea"])
                    for r in reports:
                        copy.write_row(
                            (r.sha256, r.release, r.customer, r.ring, r.status, r.envelope)
                        )
                inserted = cur.execute(
                    "INSERT INTO clr_gw_health_reports "
                    "(sha256, release, customer, ring, status, window_start, envelope) "
                    "SELECT sha256, release, customer, ring, status, %s, envelope "
                    "FROM clr_gw_health_incoming ON CONFLICT (sha256) DO NOTHING RETURNING sha256",
                    (window_start,),
                ).fetchall()
        except psycopg.OperationalError as exc:
            raise database_error(self._dsn, exc) from None
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
            "UPDATE clr_gw_health_reports SET aggregate_index = %s WHERE sha256 IN "
            "(SELECT json_array_elements_text(%s::json)) RETURNING 1",
            (log_index, json.dumps(list(sha256s))),
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

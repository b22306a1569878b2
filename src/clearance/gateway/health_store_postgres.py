"""The health-report store in PostgreSQL: reports posted to any replica, aggregated by
whichever replica leads.  :class:`PostgresHealthReportStore` is the only holder of
this backend's SQL (the interface is :class:`~clearance.gateway.store.HealthReportStore`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import psycopg

from clearance.gateway._pg import Pool, database_error, open_pool
from clearance.gateway.health_batch import AcceptedReport
from clearance.gateway.store import WindowTally

#: Each window's tally, kept beside the reports in the same transactions: the latest
#: report (greatest digest) of each device, and the number of devices per status; made
#: and filled from the open reports when a database made before them is opened.
_TALLY_TABLES = """DO $$ BEGIN
    IF to_regclass('clr_gw_health_tallies') IS NULL THEN
        CREATE TABLE clr_gw_health_devices (
            release text NOT NULL, ring text NOT NULL, window_start bigint NOT NULL,
            device text NOT NULL, sha256 text NOT NULL, status text NOT NULL,
            -- The device first: looked up by a list of devices, the key must be the
            -- index's condition even before the table has statistics (with the window
            -- first the planner scanned the whole window and filtered the list).
            PRIMARY KEY (device, release, ring, window_start));
        CREATE TABLE clr_gw_health_tallies (
            release text NOT NULL, ring text NOT NULL, window_start bigint NOT NULL,
            status text NOT NULL, devices bigint NOT NULL,
            PRIMARY KEY (release, ring, window_start, status));
        INSERT INTO clr_gw_health_devices
            SELECT DISTINCT ON (release, ring, window_start, device)
                release, ring, window_start, device, sha256, status
            FROM clr_gw_health_reports WHERE aggregate_index IS NULL
            ORDER BY release, ring, window_start, device, sha256 DESC;
        INSERT INTO clr_gw_health_tallies
            SELECT release, ring, window_start, status, count(*) FROM clr_gw_health_devices
            GROUP BY release, ring, window_start, status;
    END IF;
END $$"""

_PG_HEALTH_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS clr_gw_health_reports (
        sha256 text PRIMARY KEY, release text NOT NULL, customer text NOT NULL,
        ring text NOT NULL, status text NOT NULL, window_start bigint NOT NULL,
        envelope bytea NOT NULL, aggregate_index bigint, device text NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS clr_gw_health_reports_open
        ON clr_gw_health_reports(aggregate_index, window_start, release, ring)""",
    # An aggregate's reports in digest order, a page at a time; only aggregated reports
    # (partial: storing a bulk does not pay for it).
    """CREATE INDEX IF NOT EXISTS clr_gw_health_reports_in_aggregate
        ON clr_gw_health_reports(aggregate_index, sha256) WHERE aggregate_index IS NOT NULL""",
    # A database made before reports kept their device: the column added and filled from
    # the envelopes (the first signature's key id, else the digest, as reports are counted).
    """DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid =
                'clr_gw_health_reports'::regclass AND attname = 'device' AND NOT attisdropped)
        THEN
            ALTER TABLE clr_gw_health_reports ADD COLUMN device text;
            UPDATE clr_gw_health_reports SET device = coalesce(
                convert_from(envelope, 'UTF8')::jsonb #>> '{signatures,0,keyid}', sha256);
            ALTER TABLE clr_gw_health_reports ALTER COLUMN device SET NOT NULL;
        END IF;
    END $$""",
    _TALLY_TABLES,
)

#: Bulk requests change tallies one at a time (the rows they read are the rows they
#: write); their reports are copied and inserted before, in parallel.
_TALLY_LOCK = 0x636C7274616C6C79  # "clrtally"

_WINDOW_TALLY = """
SELECT 0, status, devices FROM clr_gw_health_tallies
WHERE release = %(release)s AND ring = %(ring)s AND window_start = %(start)s AND devices > 0
UNION ALL
SELECT 1, q.device, 0 FROM unnest(%(among)s::text[]) AS q(device) CROSS JOIN LATERAL (
    SELECT 1 FROM clr_gw_health_devices
    WHERE device = q.device AND release = %(release)s AND ring = %(ring)s
        AND window_start = %(start)s
    LIMIT 1) AS found
"""
# (One key lookup per device asked about, whatever plan psycopg's prepared statement gets:
# a generic plan of "device = ANY(...)" made while the table was small can scan all of it.)


#: Where a bulk request's rows are copied before they are inserted: one per session,
#: emptied at every commit.
_STAGING_TABLE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS clr_gw_health_incoming (sha256 text, release text, "
    "customer text, ring text, status text, envelope bytea, device text) "
    "ON COMMIT DELETE ROWS"
)
#: The reports a bulk request added (not those stored before): what its tally counts.
_NEW_TABLE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS clr_gw_health_new (sha256 text, release text, "
    "ring text, status text, device text) ON COMMIT DELETE ROWS"
)

_INSERT_REPORTS = """
WITH new AS (
    INSERT INTO clr_gw_health_reports
        (sha256, release, customer, ring, status, window_start, envelope, device)
    SELECT sha256, release, customer, ring, status, %s, envelope, device
    FROM clr_gw_health_incoming ON CONFLICT (sha256) DO NOTHING
    RETURNING sha256, release, ring, status, device
)
INSERT INTO clr_gw_health_new SELECT * FROM new RETURNING sha256
"""

#: The window's tally brought up to date with the new reports, in the database: each
#: device's newest report replaces its older one (greatest digest), and the counts per
#: status move with it.  Under ``_TALLY_LOCK``: the rows read are the rows written.
_COUNT_NEW = """
WITH best AS (
    SELECT DISTINCT ON (device, release, ring) device, release, ring, sha256, status
    FROM clr_gw_health_new ORDER BY device, release, ring, sha256 DESC
), changed AS (
    SELECT b.device, b.release, b.ring, b.sha256, b.status,
        d.sha256 AS old_sha256, d.status AS old_status
    FROM best b LEFT JOIN LATERAL (
        -- One key looked up per device (LIMIT keeps it a lookup): joined as tables, the
        -- planner scanned every open window's devices when the table had no statistics.
        SELECT sha256, status FROM clr_gw_health_devices WHERE device = b.device
            AND release = b.release AND ring = b.ring AND window_start = %(start)s LIMIT 1
    ) d ON true
    WHERE d.sha256 IS NULL OR b.sha256 > d.sha256
), written AS (
    INSERT INTO clr_gw_health_devices (device, release, ring, window_start, sha256, status)
    SELECT device, release, ring, %(start)s, sha256, status FROM changed
    ON CONFLICT (device, release, ring, window_start)
    DO UPDATE SET sha256 = EXCLUDED.sha256, status = EXCLUDED.status
), moves AS (
    SELECT release, ring, status, 1 AS n FROM changed
    UNION ALL
    SELECT release, ring, old_status, -1 FROM changed WHERE old_sha256 IS NOT NULL
)
INSERT INTO clr_gw_health_tallies (release, ring, window_start, status, devices)
SELECT release, ring, %(start)s, status, sum(n) FROM moves
GROUP BY release, ring, status HAVING sum(n) <> 0
ON CONFLICT (release, ring, window_start, status)
DO UPDATE SET devices = clr_gw_health_tallies.devices + EXCLUDED.devices
"""


class PostgresHealthReportStore:
    """The same rows as :class:`SQLiteHealthReportStore`, in the gateway's PostgreSQL
    database: every replica accepts bulk reports, the leader aggregates them all."""

    def __init__(self, dsn: str, *, name: str = "clearance-health", pool_size: int = 4) -> None:
        self._dsn = dsn
        self._pool: Pool = open_pool(dsn, name, _PG_HEALTH_SCHEMA, max_size=pool_size)

    def close(self) -> None:
        self._pool.close()

    def _query(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
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
                    "envelope, device) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["text", "text", "text", "text", "text", "bytea", "text"])
                    for r in reports:
                        copy.write_row(
                            (r.sha256, r.release, r.customer, r.ring, r.status, r.envelope, r.device)
                        )
                cur.execute(_NEW_TABLE)
                inserted = cur.execute(_INSERT_REPORTS, (window_start,)).fetchall()
                fresh = {str(row[0]) for row in inserted}
                new: list[AcceptedReport] = []
                for r in reports:  # a report sent twice in one request counts once
                    if r.sha256 in fresh:
                        fresh.discard(r.sha256)
                        new.append(r)
                if new:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_TALLY_LOCK,))
                    cur.execute(_COUNT_NEW, {"start": window_start})
        except psycopg.OperationalError as exc:
            raise database_error(self._dsn, exc) from None
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

    def window_tally(
        self, release: str, ring: str, window_start: int, among: Sequence[str]
    ) -> WindowTally:
        rows = self._query(
            _WINDOW_TALLY,
            {"release": release, "ring": ring, "start": window_start, "among": list(among)},
        )
        return WindowTally.from_rows(rows)

    def aggregate_window(
        self,
        release: str,
        ring: str,
        window_start: int,
        log: Callable[[Iterator[tuple[str, str, bytes]]], int | None],
    ) -> int | None:
        window = (release, ring, window_start)
        try:
            with self._pool.connection() as conn:
                # One snapshot for the read and the update: the update then records exactly
                # the reports read, not one a late bulk stored meanwhile.
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                with conn.cursor(name="clr_gw_health_window") as rows:  # streamed, not fetched
                    rows.itersize = 2_000
                    rows.execute(
                        "SELECT sha256, status, envelope FROM clr_gw_health_reports "
                        "WHERE release = %s AND ring = %s AND window_start = %s "
                        "AND aggregate_index IS NULL ORDER BY sha256",
                        window,
                    )
                    index = log((str(s), str(t), bytes(e)) for s, t, e in rows)
                if index is None:
                    return None
                conn.execute(
                    "UPDATE clr_gw_health_reports SET aggregate_index = %s WHERE release = %s "
                    "AND ring = %s AND window_start = %s AND aggregate_index IS NULL",
                    (index, *window),
                )
            # Apart: a late bulk may still be moving this window's tally.
            with self._pool.connection() as conn:
                for table in ("clr_gw_health_devices", "clr_gw_health_tallies"):
                    conn.execute(
                        f"DELETE FROM {table} WHERE release = %s AND ring = %s "  # noqa: S608
                        "AND window_start = %s",
                        window,
                    )
        except psycopg.OperationalError as exc:
            raise database_error(self._dsn, exc) from None
        return index

    def in_aggregate(
        self, log_index: int, after: str = "", limit: int | None = None
    ) -> list[tuple[str, str, bytes]]:
        rows = self._query(
            "SELECT sha256, status, envelope FROM clr_gw_health_reports "
            "WHERE aggregate_index = %s AND sha256 > %s ORDER BY sha256 LIMIT %s",
            (log_index, after, limit),
        )
        return [(str(s), str(t), bytes(e)) for s, t, e in rows]

    def counts(self) -> tuple[int, int]:
        rows = self._query("SELECT count(*), count(aggregate_index) FROM clr_gw_health_reports", ())
        return int(rows[0][0]), int(rows[0][1])

"""The embedded health-report store: the individual reports of bulk requests, and
which logged aggregate holds each, in ``health.sqlite``.

:class:`SQLiteHealthReportStore` is the only holder of this backend's SQL;
:class:`~clearance.gateway.health_store_postgres.PostgresHealthReportStore`
keeps the same rows in PostgreSQL for replicas.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from clearance._sqlite import open_wal
from clearance.gateway.health_batch import AcceptedReport
from clearance.gateway.store import WindowTally
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
    aggregate_index INTEGER,
    device TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS health_reports_open
    ON health_reports(aggregate_index, window_start, release, ring);
-- An aggregate's reports in digest order, a page at a time (only aggregated reports).
CREATE INDEX IF NOT EXISTS health_reports_in_aggregate
    ON health_reports(aggregate_index, sha256) WHERE aggregate_index IS NOT NULL;
"""

#: A store made before reports kept their device: the column added and filled from the
#: envelopes (the first signature's key id, else the digest, as reports are counted).
_ADD_DEVICE = (
    "ALTER TABLE health_reports ADD COLUMN device TEXT",
    "UPDATE health_reports SET device = coalesce("
    "json_extract(CAST(envelope AS TEXT), '$.signatures[0].keyid'), sha256) "
    "WHERE device IS NULL",
)

#: Each window's tally, kept beside the reports in the same transactions: the latest
#: report (greatest digest) of each device, and the number of devices per status.  Made
#: and filled from the open reports when a store made before them is opened.
_TALLY_TABLES = (
    """CREATE TABLE health_devices (
        release TEXT NOT NULL, ring TEXT NOT NULL, window_start INTEGER NOT NULL,
        device TEXT NOT NULL, sha256 TEXT NOT NULL, status TEXT NOT NULL,
        PRIMARY KEY (release, ring, window_start, device))""",
    """CREATE TABLE health_tallies (
        release TEXT NOT NULL, ring TEXT NOT NULL, window_start INTEGER NOT NULL,
        status TEXT NOT NULL, devices INTEGER NOT NULL,
        PRIMARY KEY (release, ring, window_start, status))""",
    # SQLite takes the bare column (status) from the row holding the max().
    """INSERT INTO health_devices
        SELECT release, ring, window_start, device, max(sha256), status FROM health_reports
        WHERE aggregate_index IS NULL GROUP BY release, ring, window_start, device""",
    """INSERT INTO health_tallies SELECT release, ring, window_start, status, count(*)
        FROM health_devices GROUP BY release, ring, window_start, status""",
)

_WINDOW_TALLY = """
SELECT 0, status, devices FROM health_tallies
WHERE release = ? AND ring = ? AND window_start = ? AND devices > 0
UNION ALL
SELECT 1, device, 0 FROM health_devices WHERE release = ? AND ring = ? AND window_start = ?
    AND device IN (SELECT value FROM json_each(?))
"""


#: The devices whose latest report a bulk request's new reports (a JSON array of their
#: digests) replace in their window, with the report they replace: the tally moves from
#: the old status to the new one.  A connection's own table, emptied before each use.
_CHANGED_TABLE = """CREATE TEMPORARY TABLE IF NOT EXISTS health_changed (device TEXT,
    release TEXT, ring TEXT, sha256 TEXT, status TEXT, old_sha256 TEXT, old_status TEXT)"""

_COUNT_NEW = (
    # SQLite takes the bare column (status) from the row holding the max().
    """INSERT INTO temp.health_changed
    WITH best AS (
        SELECT device, release, ring, max(sha256) AS sha256, status FROM health_reports
        WHERE sha256 IN (SELECT value FROM json_each(:new)) GROUP BY device, release, ring
    )
    SELECT b.device, b.release, b.ring, b.sha256, b.status, d.sha256, d.status
    FROM best b LEFT JOIN health_devices d ON d.release = b.release AND d.ring = b.ring
        AND d.window_start = :start AND d.device = b.device
    WHERE d.sha256 IS NULL OR b.sha256 > d.sha256""",
    """INSERT INTO health_devices (release, ring, window_start, device, sha256, status)
    SELECT release, ring, :start, device, sha256, status FROM temp.health_changed WHERE true
    ON CONFLICT (release, ring, window_start, device)
    DO UPDATE SET sha256 = excluded.sha256, status = excluded.status""",
    """INSERT INTO health_tallies (release, ring, window_start, status, devices)
    SELECT release, ring, :start, status, sum(n) FROM (
        SELECT release, ring, status, 1 AS n FROM temp.health_changed
        UNION ALL
        SELECT release, ring, old_status, -1 FROM temp.health_changed
        WHERE old_sha256 IS NOT NULL
    ) WHERE true GROUP BY release, ring, status HAVING sum(n) <> 0
    ON CONFLICT (release, ring, window_start, status)
    DO UPDATE SET devices = devices + excluded.devices""",
)


class SQLiteHealthReportStore(SQLiteFile):
    """``health.sqlite``: individual reports and which aggregate (log index) holds them.

    WAL and ``BEGIN IMMEDIATE``: replicas sharing the data directory write to
    it safely; a bulk request is one transaction.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, _HEALTH_SCHEMA, "FULL")  # accepted reports survive a power cut
        self._path = path
        with self._transaction() as db:  # replicas sharing the directory: one of them adds it
            columns = {str(row[1]) for row in db.execute("PRAGMA table_info(health_reports)")}
            if "device" not in columns:
                for statement in _ADD_DEVICE:
                    db.execute(statement)
            tables = {str(row[0]) for row in db.execute("SELECT name FROM sqlite_master")}
            if "health_tallies" not in tables:
                for statement in _TALLY_TABLES:
                    db.execute(statement)
            db.execute(_CHANGED_TABLE)

    def add_many(
        self, reports: Sequence[AcceptedReport], window_start: int
    ) -> list[AcceptedReport]:
        """Store the reports; returns those that were new (a resent report counts once)."""
        new: list[AcceptedReport] = []
        with self._transaction() as db:
            for r in reports:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO health_reports (sha256, release, customer, ring, "
                    "status, window_start, envelope, device) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        r.sha256,
                        r.release,
                        r.customer,
                        r.ring,
                        r.status,
                        window_start,
                        r.envelope,
                        r.device,
                    ),
                )
                if cursor.rowcount == 1:
                    new.append(r)
            if new:  # the window's tally brought up to date in the same transaction
                values = {"new": json.dumps([r.sha256 for r in new]), "start": window_start}
                db.execute("DELETE FROM temp.health_changed")
                for statement in _COUNT_NEW:
                    db.execute(statement, values)
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

    def window_tally(
        self, release: str, ring: str, window_start: int, among: Sequence[str]
    ) -> WindowTally:
        window = (release, ring, window_start)
        with self._lock:
            rows = self._db.execute(
                _WINDOW_TALLY, (*window, *window, json.dumps(list(among)))
            ).fetchall()
        return WindowTally.from_rows(rows)

    def aggregate_window(
        self,
        release: str,
        ring: str,
        window_start: int,
        log: Callable[[Iterator[tuple[str, str, bytes]]], int | None],
    ) -> int | None:
        window = (release, ring, window_start)
        # A connection of its own in a read transaction: one WAL snapshot, streamed in
        # digest order while bulk requests keep writing through the store's connection.
        reader = open_wal(self._path, "")
        try:
            reader.execute("BEGIN")
            # Reports are only ever added, each with a greater rowid than every earlier
            # one: those of the snapshot are those up to its greatest rowid.
            (last,) = reader.execute(
                "SELECT coalesce(max(rowid), 0) FROM health_reports"
            ).fetchone()
            rows = reader.execute(
                "SELECT sha256, status, envelope FROM health_reports WHERE release = ? AND "
                "ring = ? AND window_start = ? AND aggregate_index IS NULL ORDER BY sha256",
                window,
            )
            index = log((str(s), str(t), bytes(e)) for s, t, e in rows)
        finally:
            reader.close()
        if index is None:
            return None
        with self._transaction() as db:
            db.execute(
                "UPDATE health_reports SET aggregate_index = ? WHERE release = ? AND ring = ? "
                "AND window_start = ? AND aggregate_index IS NULL AND rowid <= ?",
                (index, *window, int(last)),
            )
            for table in ("health_devices", "health_tallies"):
                db.execute(
                    f"DELETE FROM {table} WHERE release = ? AND ring = ? AND window_start = ?",  # noqa: S608
                    window,
                )
        return index

    def in_aggregate(
        self, log_index: int, after: str = "", limit: int | None = None
    ) -> list[tuple[str, str, bytes]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT sha256, status, envelope FROM health_reports "
                "WHERE aggregate_index = ? AND sha256 > ? ORDER BY sha256 LIMIT ?",
                (log_index, after, -1 if limit is None else limit),
            ).fetchall()
        return [(str(s), str(t), bytes(e)) for s, t, e in rows]

    def counts(self) -> tuple[int, int]:
        """(reports stored, reports already in a logged aggregate)."""
        with self._lock:
            row = self._db.execute(
                "SELECT count(*), count(aggregate_index) FROM health_reports"
            ).fetchone()
        return int(row[0]), int(row[1])

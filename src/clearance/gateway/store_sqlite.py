"""The embedded metadata store: one SQLite file (WAL) in the data directory.

:class:`SQLiteMetadataStore` is the only holder of this backend's SQL; the
interface and rows are in :mod:`clearance.gateway.store`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clearance._sqlite import open_wal
from clearance.gateway.states import ReleaseState
from clearance.gateway.store import (
    LAST_LOG_INDEX,
    RECORD_TABLES,
    IndexRecord,
    ReleaseRow,
    entry_row,
    record_rows,
    release_artifact_rows,
    release_from_row,
    verdict_dict,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    log_index INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    indexed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_sha ON entries(sha256);
CREATE TABLE IF NOT EXISTS releases (
    sha256 TEXT PRIMARY KEY,
    log_index INTEGER NOT NULL,
    product TEXT NOT NULL,
    version TEXT NOT NULL,
    channel TEXT NOT NULL,
    vendor TEXT NOT NULL,
    artifacts TEXT NOT NULL,
    state TEXT NOT NULL,
    job_id INTEGER,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS releases_channel ON releases(product, channel, state, log_index);
CREATE TABLE IF NOT EXISTS verdicts (
    sha256 TEXT PRIMARY KEY,
    log_index INTEGER NOT NULL,
    release_sha256 TEXT NOT NULL,
    inspector TEXT NOT NULL,
    decision TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_release ON verdicts(release_sha256);
CREATE TABLE IF NOT EXISTS policies (
    log_index INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entitlements (
    log_index INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    customer TEXT NOT NULL,
    product TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entitlements_customer ON entitlements(customer);
CREATE TABLE IF NOT EXISTS rollouts (
    release_sha256 TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS rollouts_status ON rollouts(json_extract(state, '$.status'));
CREATE TABLE IF NOT EXISTS transitions (
    log_index INTEGER PRIMARY KEY,
    release_sha256 TEXT NOT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS health (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT UNIQUE NOT NULL,
    release_sha256 TEXT NOT NULL,
    customer TEXT NOT NULL,
    status TEXT NOT NULL,
    received REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS health_votes (
    log_index INTEGER PRIMARY KEY,
    release_sha256 TEXT NOT NULL,
    ring TEXT NOT NULL,
    device TEXT NOT NULL,
    status TEXT NOT NULL,
    received REAL NOT NULL DEFAULT (strftime('%s','now'))
);
CREATE INDEX IF NOT EXISTS health_votes_release ON health_votes(release_sha256, ring);
CREATE TABLE IF NOT EXISTS artifacts (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    received REAL NOT NULL
);
-- Which releases name which artifact digest: an upload's lookup (see store_postgres).
CREATE TABLE IF NOT EXISTS release_artifacts (
    artifact_sha256 TEXT NOT NULL,
    release_sha256 TEXT NOT NULL,
    PRIMARY KEY (artifact_sha256, release_sha256)
) WITHOUT ROWID;
INSERT OR IGNORE INTO release_artifacts
    SELECT json_extract(a.value, '$.sha256'), r.sha256 FROM releases r, json_each(r.artifacts) a
    WHERE NOT EXISTS (
        SELECT 1 FROM release_artifacts x
        WHERE x.artifact_sha256 = json_extract(a.value, '$.sha256')
        AND x.release_sha256 = r.sha256);
"""


_SELECT_RELEASES = (
    "SELECT sha256, log_index, product, version, channel, vendor, artifacts, state, job_id, "
    "detail FROM releases"
)

_PUT_ROLLOUT = (
    "INSERT INTO rollouts(release_sha256, state, updated) VALUES (?, ?, ?) "
    "ON CONFLICT(release_sha256) DO UPDATE SET state=excluded.state, updated=excluded.updated"
)

#: The INSERT of each table an index record writes (parameters: ``store.record_rows``).
_INSERT_ROW = {
    "releases": "INSERT OR IGNORE INTO releases(sha256, log_index, product, version, channel,"
    " vendor, artifacts, state, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "verdicts": "INSERT OR IGNORE INTO verdicts VALUES (?, ?, ?, ?, ?)",
    "policies": "INSERT OR IGNORE INTO policies VALUES (?, ?, ?, ?)",
    "entitlements": "INSERT OR IGNORE INTO entitlements VALUES (?, ?, ?, ?, ?)",
    "transitions": "INSERT OR IGNORE INTO transitions VALUES (?, ?, ?, ?)",
    "rollouts": _PUT_ROLLOUT,
    "health_votes": "INSERT OR IGNORE INTO health_votes(log_index, release_sha256, ring, device, "
    "status, received) VALUES (?, ?, ?, ?, ?, ?)",
}


class SQLiteFile:
    """One SQLite (WAL) connection guarded by a lock, safe to share between threads, with
    ``BEGIN IMMEDIATE`` transactions: replicas sharing the data directory write safely."""

    def __init__(self, path: Path | str, schema: str, synchronous: str) -> None:
        self._lock = threading.RLock()
        # Replicas sharing the data directory open it at the same time.
        self._db = open_wal(path, schema, synchronous=synchronous)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")


class SQLiteMetadataStore(SQLiteFile):
    """SQLite (WAL) index; one connection guarded by a lock, safe to share between threads.

    ``path`` may be ``":memory:"`` for a store that lives as long as the object.
    """

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, _SCHEMA, "NORMAL")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _query_in(self, sql: str, values: Sequence[str]) -> list[tuple[Any, ...]]:
        """``sql`` with ``{}`` for the list of an ``IN``, over distinct ``values`` in parts
        small enough for SQLite's limit on bound parameters."""
        wanted = list(dict.fromkeys(values))
        rows: list[tuple[Any, ...]] = []
        for n in range(0, len(wanted), 500):
            part = wanted[n : n + 500]
            rows += self._query(sql.format(",".join("?" * len(part))), part)
        return rows

    # -- entries ---------------------------------------------------------------

    def indexed(self, start: int = 0, stop: int | None = None) -> set[int]:
        rows = self._query(
            "SELECT log_index FROM entries WHERE log_index >= ? AND log_index < ?",
            (start, LAST_LOG_INDEX + 1 if stop is None else stop),
        )
        return {int(r[0]) for r in rows}

    def add_entries(self, records: Sequence[IndexRecord]) -> list[bool]:
        now = time.time()
        written: list[bool] = []
        with self._transaction() as db:
            for record in records:
                if db.execute(
                    "SELECT 1 FROM entries WHERE log_index=?", (record.log_index,)
                ).fetchone():
                    written.append(False)
                    continue
                rows = record_rows(record, now)
                for table in RECORD_TABLES:
                    if table in rows:
                        db.execute(_INSERT_ROW[table], rows[table])
                db.executemany(
                    "INSERT OR IGNORE INTO release_artifacts VALUES (?, ?)",
                    release_artifact_rows(record),
                )
                db.execute("INSERT INTO entries VALUES (?, ?, ?, ?, ?)", entry_row(record, now))
                written.append(True)
        return written

    def entry_by_sha(self, sha256: str) -> tuple[int, str, dict[str, Any]] | None:
        rows = self._query(
            "SELECT log_index, kind, summary FROM entries WHERE sha256=? ORDER BY log_index "
            "LIMIT 1",
            (sha256,),
        )
        if not rows:
            return None
        return int(rows[0][0]), str(rows[0][1]), json.loads(rows[0][2])

    def entries_by_sha(self, sha256s: Sequence[str]) -> dict[str, int]:
        rows = self._query_in(
            "SELECT sha256, MIN(log_index) FROM entries WHERE sha256 IN ({}) GROUP BY sha256",
            sha256s,
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def entries_of_kind(self, kind: str) -> list[tuple[int, str, dict[str, Any], str]]:
        rows = self._query(
            "SELECT log_index, kind, summary, sha256 FROM entries WHERE kind=? ORDER BY log_index",
            (kind,),
        )
        return [(int(r[0]), str(r[1]), json.loads(r[2]), str(r[3])) for r in rows]

    def kinds(self) -> dict[str, int]:
        return {
            str(k): int(n)
            for k, n in self._query("SELECT kind, COUNT(*) FROM entries GROUP BY kind")
        }

    def recent_entries(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT log_index, sha256, kind, summary FROM entries ORDER BY log_index DESC LIMIT ?",
            (limit,),
        )
        return [
            {"log_index": r[0], "sha256": r[1], "kind": r[2], "summary": json.loads(r[3])}
            for r in rows
        ]

    # -- releases ----------------------------------------------------------------

    @staticmethod
    def _release(row: tuple[Any, ...]) -> ReleaseRow:
        return release_from_row(row)

    def release(self, sha256: str) -> ReleaseRow | None:
        rows = self._query(_SELECT_RELEASES + " WHERE sha256=?", (sha256,))
        return self._release(rows[0]) if rows else None

    def releases(self, state: str | None = None) -> list[ReleaseRow]:
        if state is None:
            rows = self._query(_SELECT_RELEASES + " ORDER BY log_index")
        else:
            rows = self._query(_SELECT_RELEASES + " WHERE state=? ORDER BY log_index", (state,))
        return [self._release(r) for r in rows]

    def approved_releases(self, product: str, channel: str, limit: int = 50) -> list[ReleaseRow]:
        """The newest approved releases of a channel, newest first."""
        rows = self._query(
            _SELECT_RELEASES + " WHERE product=? AND channel=? AND state=? "
            "ORDER BY log_index DESC LIMIT ?",
            (product, channel, ReleaseState.APPROVED.value, limit),
        )
        return [self._release(r) for r in rows]

    def channel_releases(self, product: str, channel: str) -> list[ReleaseRow]:
        rows = self._query(
            _SELECT_RELEASES + " WHERE product=? AND channel=? ORDER BY log_index",
            (product, channel),
        )
        return [self._release(r) for r in rows]

    def set_release_state(
        self, sha256: str, state: str, detail: str = "", job_id: int | None = None
    ) -> None:
        with self._transaction() as db:
            if job_id is None:
                db.execute(
                    "UPDATE releases SET state=?, detail=? WHERE sha256=?",
                    (str(state), detail, sha256),
                )
            else:
                db.execute(
                    "UPDATE releases SET state=?, detail=?, job_id=? WHERE sha256=?",
                    (str(state), detail, job_id, sha256),
                )

    def set_awaiting_details(self, details: Sequence[tuple[str, str]]) -> None:
        if not details:
            return
        with self._transaction() as db:
            db.executemany(
                "UPDATE releases SET detail=? WHERE sha256=? AND state=?",
                [(d, sha, ReleaseState.AWAITING_ARTIFACTS.value) for sha, d in details],
            )

    def move_release_state(self, sha256: str, old: str, new: str, detail: str) -> bool:
        with self._transaction() as db:
            cur = db.execute(
                "UPDATE releases SET state=?, detail=? WHERE sha256=? AND state=?",
                (str(new), detail, sha256, str(old)),
            )
            return cur.rowcount == 1

    def verdicts(self, release_sha256: str) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT sha256, log_index, inspector, decision FROM verdicts WHERE release_sha256=? "
            "ORDER BY log_index",
            (release_sha256,),
        )
        return [verdict_dict(str(r[0]), int(r[1]), str(r[2]), str(r[3])) for r in rows]

    # -- policies, entitlements, rollouts, health -------------------------------------

    def latest_policy(self) -> tuple[int, dict[str, Any]] | None:
        rows = self._query("SELECT log_index, body FROM policies ORDER BY log_index DESC LIMIT 1")
        return (int(rows[0][0]), json.loads(rows[0][1])) if rows else None

    def entitlements(self, customer: str | None = None) -> list[tuple[int, dict[str, Any]]]:
        if customer is None:
            rows = self._query("SELECT log_index, body FROM entitlements ORDER BY log_index")
        else:
            rows = self._query(
                "SELECT log_index, body FROM entitlements WHERE customer=? ORDER BY log_index",
                (customer,),
            )
        return [(int(r[0]), json.loads(r[1])) for r in rows]

    def entitlements_version(self, customer: str) -> tuple[int, int]:
        rows = self._query(
            "SELECT count(*), coalesce(max(log_index), -1) FROM entitlements WHERE customer=?",
            (customer,),
        )
        return int(rows[0][0]), int(rows[0][1])

    def rollout(self, release_sha256: str) -> dict[str, Any] | None:
        rows = self._query("SELECT state FROM rollouts WHERE release_sha256=?", (release_sha256,))
        return json.loads(rows[0][0]) if rows else None

    def rollouts(self, status: str | None = None) -> list[dict[str, Any]]:
        if status is None:
            rows = self._query("SELECT state FROM rollouts ORDER BY release_sha256")
        else:
            rows = self._query(
                "SELECT state FROM rollouts WHERE json_extract(state, '$.status') = ? "
                "ORDER BY release_sha256",
                (status,),
            )
        return [json.loads(r[0]) for r in rows]

    def put_rollout(self, release_sha256: str, state: dict[str, Any]) -> None:
        with self._transaction() as db:
            db.execute(
                _PUT_ROLLOUT, (release_sha256, json.dumps(state, sort_keys=True), time.time())
            )

    def transitions(self, release_sha256: str) -> list[tuple[int, dict[str, Any]]]:
        rows = self._query(
            "SELECT log_index, body FROM transitions WHERE release_sha256=? ORDER BY log_index",
            (release_sha256,),
        )
        return [(int(r[0]), json.loads(r[1])) for r in rows]

    def add_health(self, sha256: str, release: str, customer: str, status: str) -> bool:
        """Record one health report; False when the same report was already counted."""
        with self._transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO health(sha256, release_sha256, customer, status, received) "
                "VALUES (?, ?, ?, ?, ?)",
                (sha256, release, customer, status, time.time()),
            )
            return cur.rowcount == 1

    def health_votes(
        self, release_sha256: str, ring: str, after: int, through: int
    ) -> list[tuple[str, str, int]]:
        """(device, status, log index) of the logged reports for a ring in (after, through]."""
        rows = self._query(
            "SELECT device, status, log_index FROM health_votes WHERE release_sha256=? AND "
            "ring=? AND log_index>? AND log_index<=? ORDER BY log_index",
            (release_sha256, ring, after, through),
        )
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    def health_reports(self, release_sha256: str) -> list[tuple[float, str]]:
        """(received, status) of every health report on a release, oldest first: the logged,
        device-signed ones (and any kept by an older gateway before reports were logged)."""
        rows = self._query(
            "SELECT received, status FROM health_votes WHERE release_sha256=? UNION ALL "
            "SELECT received, status FROM health WHERE release_sha256=? ORDER BY 1",
            (release_sha256, release_sha256),
        )
        return [(float(r[0]), str(r[1])) for r in rows]

    def add_artifact(self, sha256: str, size: int) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO artifacts(sha256, size, received) VALUES (?, ?, ?)",
                (sha256, size, time.time()),
            )

    def artifact_referenced(self, sha256: str) -> bool:
        return bool(
            self._query(
                "SELECT 1 FROM release_artifacts WHERE artifact_sha256 = ? LIMIT 1", (sha256,)
            )
        )

    def releases_awaiting_artifact(self, sha256: str) -> list[ReleaseRow]:
        rows = self._query(
            _SELECT_RELEASES  # noqa: S608 (constants only)
            + " WHERE sha256 IN (SELECT release_sha256 FROM release_artifacts "
            "WHERE artifact_sha256 = ?) AND state = ? ORDER BY log_index",
            (sha256, ReleaseState.AWAITING_ARTIFACTS.value),
        )
        return [self._release(r) for r in rows]

    def artifacts_present(self, sha256s: Sequence[str]) -> set[str]:
        rows = self._query_in("SELECT sha256 FROM artifacts WHERE sha256 IN ({})", sha256s)
        return {str(r[0]) for r in rows}

"""The gateway's metadata: an index of the log, plus health reports and uploads.

:class:`MetadataStore` is the interface the gateway uses; :class:`SQLiteMetadataStore`
is the embedded implementation, and the only place in the gateway with SQL.
Everything here except health reports and uploaded-artifact bookkeeping is
derived from log entries (:class:`~clearance.gateway.indexer.Indexer` computes
it, :meth:`MetadataStore.add_entry` writes it), so after a crash the index is
rebuilt by indexing again the entries it misses: the log, not this file, is
the record.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from clearance._sqlite import open_wal
from clearance.gateway.health_batch import AcceptedReport
from clearance.gateway.states import ReleaseState

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
"""


@dataclass(frozen=True)
class ReleaseRow:
    sha256: str
    log_index: int
    product: str
    version: str
    channel: str
    vendor: str
    artifacts: list[dict[str, Any]]
    state: str
    job_id: int | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "log_index": self.log_index,
            "product": self.product,
            "version": self.version,
            "channel": self.channel,
            "vendor": self.vendor,
            "artifacts": self.artifacts,
            "state": self.state,
            "job_id": self.job_id,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class VerdictRow:
    sha256: str
    log_index: int
    release_sha256: str
    inspector: str
    decision: str


@dataclass(frozen=True)
class IndexRecord:
    """Everything one log entry adds to the index, written in one transaction.

    ``kind`` and ``summary`` always; at most one of the typed rows, by kind;
    ``rollout`` is the rollout state a transition leaves (keyed by release).
    """

    log_index: int
    sha256: str
    kind: str
    summary: dict[str, Any]
    release: ReleaseRow | None = None
    verdict: VerdictRow | None = None
    #: (name, body) of a distribution policy.
    policy: tuple[str, dict[str, Any]] | None = None
    #: (customer, product, body) of an entitlement.
    entitlement: tuple[str, str, dict[str, Any]] | None = None
    #: (release, event, body) of a rollout transition.
    transition: tuple[str, str, dict[str, Any]] | None = None
    #: (release, state) of the rollout after a transition.
    rollout: tuple[str, dict[str, Any]] | None = None
    #: (release, ring, device key id, status) of a logged health report.
    health: tuple[str, str, str, str] | None = None


class MetadataStore(Protocol):
    """What the gateway keeps beside the log: an index of it, health reports, uploads.

    Implementations must be safe to share between threads; every method is one
    transaction.
    """

    def close(self) -> None: ...

    # entries
    def indexed(self) -> set[int]: ...
    def is_indexed(self, log_index: int) -> bool: ...
    def add_entry(self, record: IndexRecord) -> bool:
        """Write one entry's index rows; False (and nothing written) if already indexed."""
        ...

    def entry_by_sha(self, sha256: str) -> tuple[int, str, dict[str, Any]] | None: ...
    def entries_of_kind(self, kind: str) -> list[tuple[int, str, dict[str, Any], str]]: ...
    def kinds(self) -> dict[str, int]: ...
    def recent_entries(self, limit: int = 20) -> list[dict[str, Any]]: ...

    # releases and verdicts
    def release(self, sha256: str) -> ReleaseRow | None: ...
    def releases(self, state: str | None = None) -> list[ReleaseRow]: ...
    def approved_releases(
        self, product: str, channel: str, limit: int = 50
    ) -> list[ReleaseRow]: ...
    def channel_releases(self, product: str, channel: str) -> list[ReleaseRow]: ...
    def set_release_state(
        self, sha256: str, state: str, detail: str = "", job_id: int | None = None
    ) -> None: ...
    def move_release_state(self, sha256: str, old: str, new: str, detail: str) -> bool:
        """Set ``new`` only if the release is in state ``old``; whether it was."""
        ...

    def verdicts(self, release_sha256: str) -> list[dict[str, Any]]: ...

    # policies, entitlements, rollouts, health, uploads
    def latest_policy(self) -> tuple[int, dict[str, Any]] | None: ...
    def entitlements(self, customer: str | None = None) -> list[tuple[int, dict[str, Any]]]: ...
    def rollout(self, release_sha256: str) -> dict[str, Any] | None: ...
    def rollouts(self) -> list[dict[str, Any]]: ...
    def put_rollout(self, release_sha256: str, state: dict[str, Any]) -> None: ...
    def transitions(self, release_sha256: str) -> list[tuple[int, dict[str, Any]]]: ...
    def add_health(self, sha256: str, release: str, customer: str, status: str) -> bool: ...
    def health_votes(
        self, release_sha256: str, ring: str, after: int, through: int
    ) -> list[tuple[str, str, int]]: ...
    def health_reports(self, release_sha256: str) -> list[tuple[float, str]]: ...
    def add_artifact(self, sha256: str, size: int) -> None: ...
    def artifact_referenced(self, sha256: str) -> bool: ...
    def has_artifact(self, sha256: str) -> bool: ...


_SELECT_RELEASES = (
    "SELECT sha256, log_index, product, version, channel, vendor, artifacts, state, job_id, "
    "detail FROM releases"
)

_PUT_ROLLOUT = (
    "INSERT INTO rollouts(release_sha256, state, updated) VALUES (?, ?, ?) "
    "ON CONFLICT(release_sha256) DO UPDATE SET state=excluded.state, updated=excluded.updated"
)


class _SQLiteFile:
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


class SQLiteMetadataStore(_SQLiteFile):
    """SQLite (WAL) index; one connection guarded by a lock, safe to share between threads.

    ``path`` may be ``":memory:"`` for a store that lives as long as the object.
    """

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, _SCHEMA, "NORMAL")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- entries ---------------------------------------------------------------

    def indexed(self) -> set[int]:
        return {int(r[0]) for r in self._query("SELECT log_index FROM entries")}

    def is_indexed(self, log_index: int) -> bool:
        return bool(self._query("SELECT 1 FROM entries WHERE log_index=?", (log_index,)))

    def add_entry(self, record: IndexRecord) -> bool:
        with self._transaction() as db:
            if db.execute(
                "SELECT 1 FROM entries WHERE log_index=?", (record.log_index,)
            ).fetchone():
                return False
            if record.release is not None:
                r = record.release
                db.execute(
                    "INSERT OR IGNORE INTO releases(sha256, log_index, product, version, channel,"
                    " vendor, artifacts, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        r.sha256,
                        r.log_index,
                        r.product,
                        r.version,
                        r.channel,
                        r.vendor,
                        json.dumps(r.artifacts),
                        r.state,
                    ),
                )
            if record.verdict is not None:
                v = record.verdict
                db.execute(
                    "INSERT OR IGNORE INTO verdicts VALUES (?, ?, ?, ?, ?)",
                    (v.sha256, v.log_index, v.release_sha256, v.inspector, v.decision),
                )
            if record.policy is not None:
                name, body = record.policy
                db.execute(
                    "INSERT OR IGNORE INTO policies VALUES (?, ?, ?, ?)",
                    (record.log_index, record.sha256, name, json.dumps(body)),
                )
            if record.entitlement is not None:
                customer, product, body = record.entitlement
                db.execute(
                    "INSERT OR IGNORE INTO entitlements VALUES (?, ?, ?, ?, ?)",
                    (record.log_index, record.sha256, customer, product, json.dumps(body)),
                )
            if record.transition is not None:
                release, event, body = record.transition
                db.execute(
                    "INSERT OR IGNORE INTO transitions VALUES (?, ?, ?, ?)",
                    (record.log_index, release, event, json.dumps(body)),
                )
            if record.rollout is not None:
                release, state = record.rollout
                db.execute(_PUT_ROLLOUT, (release, json.dumps(state, sort_keys=True), time.time()))
            if record.health is not None:
                db.execute(
                    "INSERT OR IGNORE INTO health_votes(log_index, release_sha256, ring, device, "
                    "status, received) VALUES (?, ?, ?, ?, ?, ?)",
                    (record.log_index, *record.health, time.time()),
                )
            db.execute(
                "INSERT INTO entries VALUES (?, ?, ?, ?, strftime('%s','now'))",
                (record.log_index, record.sha256, record.kind, json.dumps(record.summary)),
            )
        return True

    def entry_by_sha(self, sha256: str) -> tuple[int, str, dict[str, Any]] | None:
        rows = self._query(
            "SELECT log_index, kind, summary FROM entries WHERE sha256=? ORDER BY log_index "
            "LIMIT 1",
            (sha256,),
        )
        if not rows:
            return None
        return int(rows[0][0]), str(rows[0][1]), json.loads(rows[0][2])

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
        return ReleaseRow(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            json.loads(row[6]),
            row[7],
            row[8],
            row[9],
        )

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
        # The column holds the distinct trusted key ids that signed each verdict
        # (``name+keyhash``, space-separated); ``inspector`` shows their names.
        return [
            {
                "sha256": r[0],
                "log_index": r[1],
                "inspector": ",".join(k.split("+", 1)[0] for k in str(r[2]).split()),
                "key_ids": str(r[2]).split(),
                "decision": r[3],
            }
            for r in rows
        ]

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

    def rollout(self, release_sha256: str) -> dict[str, Any] | None:
        rows = self._query("SELECT state FROM rollouts WHERE release_sha256=?", (release_sha256,))
        return json.loads(rows[0][0]) if rows else None

    def rollouts(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self._query("SELECT state FROM rollouts")]

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
        """Whether a logged release names this artifact digest (hex: safe in LIKE)."""
        return bool(
            self._query("SELECT 1 FROM releases WHERE artifacts LIKE ? LIMIT 1", (f'%"{sha256}"%',))
        )

    def has_artifact(self, sha256: str) -> bool:
        return bool(self._query("SELECT 1 FROM artifacts WHERE sha256=?", (sha256,)))


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


class HealthReportStore(_SQLiteFile):
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

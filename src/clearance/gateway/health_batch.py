"""Health reports in bulk, and the per-ring, per-window aggregate that goes into the log.

Health reports are the high-volume write: one per endpoint per install.
Logging each would grow the log by one entry per endpoint, so instead:

* ``POST /api/v1/health-reports/bulk`` takes many signed reports at once;
  their signatures are checked in the :class:`~clearance.gateway._sigpool.SignaturePool`
  and the accepted ones are stored (``health.sqlite``, one transaction per
  request) and counted towards the rollout at once;
* when a window closes, the leader replica appends one :class:`HealthAggregate`
  per (release, ring, window): the counts per status plus the RFC 6962
  Merkle root over the individual report envelopes, ordered by their SHA-256
  (so every replica computes the same aggregate, whatever the arrival order).
  The entry is covered by the log's signed checkpoint, as rollout transitions
  are;
* the individual reports stay retrievable
  (``GET /api/v1/health-aggregates/{log_index}``), and anyone can recompute
  the root and prove one report's membership with :mod:`clearance.log.merkle`.

This format is separate from how the rollout counts reports (per device or
per report): the aggregate records exactly which reports were accepted.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearance.attest import canonical_json
from clearance.gateway._entries import HEALTH_AGGREGATE_TYPE
from clearance.gateway.errors import GatewayInputError
from clearance.log import merkle

AGGREGATE_TYPE = HEALTH_AGGREGATE_TYPE
STATUSES = ("ok", "failed", "engine-crash")

_SCHEMA = """
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


@dataclass(frozen=True)
class HealthAggregate:
    """The logged summary of one (release, ring, window) of health reports."""

    release: str
    ring: str
    window_start: int
    window_seconds: int
    counts: tuple[tuple[str, int], ...]
    reports: int
    merkle_root: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "_type": AGGREGATE_TYPE,
            "release": self.release,
            "ring": self.ring,
            "window_start": self.window_start,
            "window_seconds": self.window_seconds,
            "counts": dict(self.counts),
            "reports": self.reports,
            "merkle_root": self.merkle_root.hex(),
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> HealthAggregate:
        if not isinstance(data, dict) or data.get("_type") != AGGREGATE_TYPE:
            raise GatewayInputError("not a health aggregate")
        try:
            counts = data["counts"]
            if not isinstance(counts, dict) or set(counts) - set(STATUSES):
                raise ValueError("counts")
            root = bytes.fromhex(str(data["merkle_root"]))
            if len(root) != merkle.HASH_SIZE:
                raise ValueError("merkle_root")
            return cls(
                release=str(data["release"]),
                ring=str(data["ring"]),
                window_start=int(data["window_start"]),
                window_seconds=int(data["window_seconds"]),
                counts=tuple((s, int(counts.get(s, 0))) for s in STATUSES),
                reports=int(data["reports"]),
                merkle_root=root,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GatewayInputError(f"health aggregate: malformed ({exc})") from None

    @classmethod
    def build(
        cls,
        release: str,
        ring: str,
        window_start: int,
        window_seconds: int,
        reports: Sequence[tuple[str, str, bytes]],
    ) -> HealthAggregate:
        """From (sha256, status, envelope) rows: counts and the root over the envelopes."""
        ordered = sorted(reports)
        counts = {s: 0 for s in STATUSES}
        for _, status, _ in ordered:
            counts[status] += 1
        root = merkle.root_from_leaf_hashes([merkle.leaf_hash(env) for _, _, env in ordered])
        return cls(
            release,
            ring,
            window_start,
            window_seconds,
            tuple(counts.items()),
            len(ordered),
            root,
        )


@dataclass(frozen=True)
class AcceptedReport:
    sha256: str
    release: str
    customer: str
    ring: str
    status: str
    envelope: bytes


class HealthReportStore:
    """``health.sqlite``: individual reports and which aggregate (log index) holds them.

    WAL and ``BEGIN IMMEDIATE``: replicas sharing the data directory write to
    it safely; a bulk request is one transaction.
    """

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # accepted reports survive a power cut
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)

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

"""What the auditor remembers between runs (SQLite in its state directory).

- the last checkpoint it verified (the next run must be consistent with it);
- how many entries it has audited (runs resume from there, commit by commit);
- the releases, verdicts and policies seen so far (to judge later entries);
- every finding reported, and which were new in which run.

One transaction per batch of entries: an interrupted run loses at most the
batch in flight and the next run resumes exactly there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from clearance._state import META_SCHEMA, LogStateFile
from clearance._untrusted import load_json
from clearance.audit.errors import AuditStateError
from clearance.audit.rules import AuditFinding

DB_NAME = "audit.sqlite3"

_SCHEMA = (
    META_SCHEMA
    + """
CREATE TABLE IF NOT EXISTS releases (
    sha256 TEXT PRIMARY KEY, entry_index INTEGER NOT NULL, product TEXT NOT NULL,
    version TEXT NOT NULL, channel TEXT NOT NULL, envelope BLOB NOT NULL,
    first_seen REAL NOT NULL, overdue_reported INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS verdicts (
    entry_index INTEGER PRIMARY KEY, release_sha256 TEXT NOT NULL, decision TEXT NOT NULL,
    inspector TEXT NOT NULL, automated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_by_release ON verdicts (release_sha256);
CREATE TABLE IF NOT EXISTS policies (entry_index INTEGER PRIMARY KEY, sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reinspections (
    release_sha256 TEXT PRIMARY KEY, status TEXT NOT NULL, summary TEXT NOT NULL,
    sarif_sha256 TEXT
);
CREATE TABLE IF NOT EXISTS rollouts (release_sha256 TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revoked (release_sha256 TEXT PRIMARY KEY, entry_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS findings (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run INTEGER NOT NULL, body TEXT NOT NULL,
    reported INTEGER NOT NULL DEFAULT 0
);
"""
)


@dataclass(frozen=True)
class SeenCheckpoint:
    size: int
    root_hash: bytes
    note: bytes


@dataclass(frozen=True)
class VerdictRecord:
    entry_index: int
    release_sha256: str
    decision: str
    inspector: str
    automated: bool


class AuditState(LogStateFile):
    """What the auditor keeps between runs (see the module documentation)."""

    FILE_NAME = DB_NAME
    SCHEMA = _SCHEMA
    REFUSED = AuditStateError

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Everything written inside lands together or not at all."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- checkpoint and progress --------------------------------------------------------
    def last_checkpoint(self) -> SeenCheckpoint | None:
        raw = self.meta("checkpoint")
        if raw is None:
            return None
        data = load_json(raw, "auditor state checkpoint")
        return SeenCheckpoint(int(data["size"]), bytes.fromhex(data["root"]), data["note"].encode())

    def set_checkpoint(self, cp: SeenCheckpoint) -> None:
        self.set_meta(
            "checkpoint",
            json.dumps({"size": cp.size, "root": cp.root_hash.hex(), "note": cp.note.decode()}),
        )

    @property
    def audited(self) -> int:
        """How many entries, from index 0, have been audited."""
        return int(self.meta("audited") or 0)

    def set_audited(self, count: int) -> None:
        self.set_meta("audited", str(count))

    def trust_root_bytes(self) -> bytes | None:
        raw = self.meta("trust_root")
        return None if raw is None else raw.encode()

    def set_trust_root_bytes(self, data: bytes) -> None:
        self.set_meta("trust_root", data.decode())

    @property
    def current_run(self) -> int:
        return int(self.meta("runs") or 0)

    def next_run(self) -> int:
        run = int(self.meta("runs") or 0) + 1
        self.set_meta("runs", str(run))
        return run

    # -- releases, verdicts, policies ------------------------------------------------------
    def add_release(
        self,
        sha256: str,
        index: int,
        product: str,
        version: str,
        channel: str,
        envelope: bytes,
        seen_at: float | None = None,
    ) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO releases (sha256, entry_index, product, version, channel, "
            "envelope, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (sha256, index, product, version, channel, envelope, seen_at or time.time()),
        )

    def release(self, sha256: str) -> tuple[int, str, str, str, bytes] | None:
        row = self._db.execute(
            "SELECT entry_index, product, version, channel, envelope FROM releases "
            "WHERE sha256 = ?",
            (sha256,),
        ).fetchone()
        if row is None:
            return None
        return int(row[0]), str(row[1]), str(row[2]), str(row[3]), bytes(row[4])

    def add_verdict(self, record: VerdictRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO verdicts (entry_index, release_sha256, decision, inspector, "
            "automated) VALUES (?, ?, ?, ?, ?)",
            (
                record.entry_index,
                record.release_sha256,
                record.decision,
                record.inspector,
                int(record.automated),
            ),
        )

    def verdicts_for(self, release_sha256: str) -> list[VerdictRecord]:
        rows = self._db.execute(
            "SELECT entry_index, decision, inspector, automated FROM verdicts "
            "WHERE release_sha256 = ? ORDER BY entry_index",
            (release_sha256,),
        ).fetchall()
        return [VerdictRecord(int(r[0]), release_sha256, r[1], r[2], bool(r[3])) for r in rows]

    def overdue_releases(self, older_than: float) -> list[tuple[str, int, str, str]]:
        """Releases first seen before ``older_than`` with no verdict, not yet reported."""
        rows = self._db.execute(
            "SELECT sha256, entry_index, product, version FROM releases r WHERE "
            "first_seen < ? AND overdue_reported = 0 AND NOT EXISTS "
            "(SELECT 1 FROM verdicts v WHERE v.release_sha256 = r.sha256) ORDER BY entry_index",
            (older_than,),
        ).fetchall()
        return [(str(r[0]), int(r[1]), str(r[2]), str(r[3])) for r in rows]

    def mark_overdue_reported(self, sha256: str) -> None:
        self._db.execute("UPDATE releases SET overdue_reported = 1 WHERE sha256 = ?", (sha256,))

    def add_policy(self, index: int, sha256: str) -> int:
        """Record a policy entry; returns how many policies were logged before it."""
        (before,) = self._db.execute(
            "SELECT COUNT(*) FROM policies WHERE entry_index < ?", (index,)
        ).fetchone()
        self._db.execute(
            "INSERT OR IGNORE INTO policies (entry_index, sha256) VALUES (?, ?)", (index, sha256)
        )
        return int(before)

    def counts(self) -> dict[str, int]:
        out = {}
        for table in ("releases", "verdicts", "policies", "reinspections"):
            (n,) = self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()  # noqa: S608
            out[table] = int(n)
        return out

    # -- re-inspections ---------------------------------------------------------------------
    def reinspection(self, release_sha256: str) -> tuple[str, dict[str, Any], str | None] | None:
        row = self._db.execute(
            "SELECT status, summary, sarif_sha256 FROM reinspections WHERE release_sha256 = ?",
            (release_sha256,),
        ).fetchone()
        if row is None:
            return None
        return str(row[0]), json.loads(row[1]), row[2]

    def set_reinspection(
        self, release_sha256: str, status: str, summary: dict[str, Any], sarif_sha256: str | None
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO reinspections (release_sha256, status, summary, sarif_sha256) "
            "VALUES (?, ?, ?, ?)",
            (release_sha256, status, json.dumps(summary, sort_keys=True), sarif_sha256),
        )

    # -- findings ---------------------------------------------------------------------------
    # -- revocations (policy authority) ------------------------------------------------------
    def revoke(self, release_sha256: str, index: int) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO revoked (release_sha256, entry_index) VALUES (?, ?)",
            (release_sha256, index),
        )

    def revoke_channel(self, product: str, channel: str, above: Any, index: int) -> None:
        """Record the releases of a channel logged before ``index`` whose version is above
        ``above`` (a :class:`clearance.attest.Version`) as revoked by a channel reset."""
        from clearance.attest.version import Version

        rows = self._db.execute(
            "SELECT sha256, version FROM releases WHERE product=? AND channel=? AND entry_index<?",
            (product, channel, index),
        ).fetchall()
        for sha, version in rows:
            if Version.parse(str(version)) > above:
                self.revoke(str(sha), index)

    def is_revoked(self, release_sha256: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM revoked WHERE release_sha256=?", (release_sha256,)
        ).fetchone()
        return row is not None

    # -- rollouts (clearance.audit.rollout_check) ---------------------------------------------
    def rollout(self, release_sha256: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT body FROM rollouts WHERE release_sha256 = ?", (release_sha256,)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def set_rollout(self, release_sha256: str, body: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO rollouts (release_sha256, body) VALUES (?, ?)",
            (release_sha256, json.dumps(body, sort_keys=True)),
        )

    def add_finding(self, run: int, finding: AuditFinding) -> None:
        self._db.execute(
            "INSERT INTO findings (run, body) VALUES (?, ?)",
            (run, json.dumps(finding.to_dict(), sort_keys=True, default=str)),
        )

    def findings(self, *, unreported_only: bool = False) -> list[AuditFinding]:
        """Every finding so far, or only those no completed run has reported yet
        (an interrupted run's findings are reported by the run that completes it)."""
        query = "SELECT body FROM findings"
        if unreported_only:
            query += " WHERE reported = 0"
        rows = self._db.execute(query + " ORDER BY id").fetchall()
        return [AuditFinding.from_dict(json.loads(r[0])) for r in rows]

    def mark_reported(self) -> None:
        self._db.execute("UPDATE findings SET reported = 1 WHERE reported = 0")

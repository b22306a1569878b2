"""What the monitor remembers between passes and restarts (SQLite in ``STATE/monitor.sqlite3``;
the replaying auditor keeps its own state in ``STATE/audit/``).

- every alert raised (by key: an event is alerted once) and, per sink, whether it was
  delivered (undelivered alerts are retried on the next pass);
- the latest decision per release (for rollout checks) and the policies seen;
- when the checkpoint size last changed, and what each witness last cosigned.

Writes made while the auditor replays a batch of entries stay in one transaction that
commits just before the auditor commits that batch (``AuditOptions.before_commit``), so
this state is never behind the audit state (entries may be seen twice after a crash;
every write here is idempotent), at one fsync per batch rather than per write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearance._state import META_SCHEMA, LogStateFile
from clearance.monitor.errors import MonitorInputError
from clearance.monitor.rules import Alert

DB_NAME = "monitor.sqlite3"

_SCHEMA = (
    META_SCHEMA
    + """
CREATE TABLE IF NOT EXISTS alerts (
    key TEXT PRIMARY KEY, seq INTEGER NOT NULL, body BLOB NOT NULL, raised_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    key TEXT NOT NULL, sink TEXT NOT NULL, delivered INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0, error TEXT, PRIMARY KEY (key, sink)
);
CREATE TABLE IF NOT EXISTS decisions (
    release_sha256 TEXT PRIMARY KEY, entry_index INTEGER NOT NULL, decision TEXT NOT NULL,
    automated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS policies (entry_index INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS witnesses (
    name TEXT PRIMARY KEY, last_size INTEGER NOT NULL, last_time REAL NOT NULL
);
"""
)


@dataclass(frozen=True)
class WitnessSeen:
    name: str
    last_size: int
    last_time: float


class MonitorState(LogStateFile):
    """What the monitor keeps between passes (see the module documentation)."""

    FILE_NAME = DB_NAME
    SCHEMA = _SCHEMA
    REFUSED = MonitorInputError

    @property
    def directory(self) -> Path:
        """The monitor's state directory (alert evidence is kept beside the file)."""
        return self.path.parent

    # -- alerts ----------------------------------------------------------------------------
    def hold(self) -> None:
        """Keep the next writes in one transaction, until :meth:`flush`."""
        if not self._db.in_transaction:
            self._db.execute("BEGIN")

    def flush(self) -> None:
        """Commit the writes held since :meth:`hold` (durably: synchronous=FULL)."""
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def add_alert(self, alert: Alert, now: float, sinks: list[str]) -> bool:
        """Record ``alert``; False when an alert with its key was raised before."""
        self.hold()
        try:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO alerts (key, seq, body, raised_at) "
                "VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM alerts), ?, ?)",
                (alert.key, alert.to_bytes(), now),
            )
            if cur.rowcount == 0:
                return False
            self._db.executemany(
                "INSERT OR IGNORE INTO outbox (key, sink) VALUES (?, ?)",
                [(alert.key, s) for s in sinks],
            )
            return True
        finally:
            self.flush()

    def alerts(self) -> list[Alert]:
        rows = self._db.execute("SELECT body FROM alerts ORDER BY seq").fetchall()
        return [Alert.from_bytes(r[0]) for r in rows]

    def undelivered(self, sink: str) -> list[Alert]:
        rows = self._db.execute(
            "SELECT a.body FROM outbox o JOIN alerts a ON a.key = o.key "
            "WHERE o.sink = ? AND o.delivered = 0 ORDER BY a.seq",
            (sink,),
        ).fetchall()
        return [Alert.from_bytes(r[0]) for r in rows]

    def mark_delivered(self, sink: str, keys: list[str]) -> None:
        self._db.executemany(
            "UPDATE outbox SET delivered = 1, attempts = attempts + 1, error = NULL "
            "WHERE sink = ? AND key = ?",
            [(sink, k) for k in keys],
        )

    def mark_failed(self, sink: str, keys: list[str], error: str) -> None:
        self._db.executemany(
            "UPDATE outbox SET attempts = attempts + 1, error = ? WHERE sink = ? AND key = ?",
            [(error, sink, k) for k in keys],
        )

    # -- what the log said -------------------------------------------------------------------
    def set_decision(self, release: str, index: int, decision: str, automated: bool) -> None:
        self._db.execute(
            "INSERT INTO decisions VALUES (?, ?, ?, ?) ON CONFLICT (release_sha256) DO UPDATE "
            "SET entry_index = excluded.entry_index, decision = excluded.decision, "
            "automated = excluded.automated WHERE excluded.entry_index >= decisions.entry_index",
            (release, index, decision, int(automated)),
        )

    def decision(self, release: str) -> tuple[int, str, bool] | None:
        row = self._db.execute(
            "SELECT entry_index, decision, automated FROM decisions WHERE release_sha256 = ?",
            (release,),
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]), bool(row[2]))

    def add_policy(self, index: int, body: dict[str, Any]) -> dict[str, Any] | None:
        """Record a policy; the policy in force before it (the latest earlier one), if any."""
        self._db.execute(
            "INSERT OR IGNORE INTO policies VALUES (?, ?)",
            (index, json.dumps(body, sort_keys=True)),
        )
        row = self._db.execute(
            "SELECT body FROM policies WHERE entry_index < ? ORDER BY entry_index DESC LIMIT 1",
            (index,),
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def witness(self, name: str) -> WitnessSeen | None:
        row = self._db.execute(
            "SELECT last_size, last_time FROM witnesses WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else WitnessSeen(name, int(row[0]), float(row[1]))

    def set_witness(self, name: str, size: int, now: float) -> None:
        self._db.execute("INSERT OR REPLACE INTO witnesses VALUES (?, ?, ?)", (name, size, now))

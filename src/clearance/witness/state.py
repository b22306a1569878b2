"""Durable witness state: per log origin, the latest cosigned checkpoint, and every
conflicting checkpoint ever offered, kept as evidence.

SQLite in WAL mode with ``synchronous=FULL``: a cosignature is only returned
after the new state is on disk.  The check of the old size and the update
run in one ``BEGIN IMMEDIATE`` transaction (plus an in-process lock), so two
concurrent requests can never roll the witness back (tlog-witness, the race
in the add-checkpoint section).
"""

from __future__ import annotations

import base64
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearance._sqlite import open_wal
from clearance.witness.errors import WitnessStateError

DB_NAME = "witness.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS latest (
    origin     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    root_hash  BLOB NOT NULL,
    checkpoint BLOB NOT NULL,
    cosigned_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS conflicts (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    origin    TEXT NOT NULL,
    kind      TEXT NOT NULL,
    detail    TEXT NOT NULL,
    cosigned  BLOB NOT NULL,
    offered   BLOB NOT NULL,
    seen_at   INTEGER NOT NULL
);
"""

#: A checkpoint of the same size with another root hash: two signed, contradictory views.
CONFLICT_SPLIT_VIEW = "split-view"
#: A larger checkpoint whose consistency proof from the cosigned one does not verify.
#: Kept for reading old state only: a wrong proof is not evidence, it is no longer recorded.
CONFLICT_INCONSISTENT = "inconsistent"
#: Conflict evidence kept per origin: the first few convict the log, more only fill the disk.
MAX_CONFLICTS_PER_ORIGIN = 16


@dataclass(frozen=True)
class CosignedCheckpoint:
    """The latest checkpoint a witness cosigned for one origin."""

    origin: str
    size: int
    root_hash: bytes
    #: The signed note as stored: the log's signature(s) followed by this witness's cosignature.
    checkpoint: bytes
    cosigned_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "size": self.size,
            "root_hash": base64.b64encode(self.root_hash).decode(),
            "checkpoint": self.checkpoint.decode("utf-8"),
            "cosigned_at": self.cosigned_at,
        }


@dataclass(frozen=True)
class Conflict:
    """Evidence of log misbehaviour: what the witness had cosigned and what it was offered.

    ``cosigned`` is the stored signed checkpoint; ``offered`` the offered
    checkpoint with only the signatures of the origin's log key, so a third
    party can re-check both signatures and see the two roots for one size.
    """

    origin: str
    kind: str
    detail: str
    cosigned: bytes
    offered: bytes
    seen_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "kind": self.kind,
            "detail": self.detail,
            "cosigned": self.cosigned.decode("utf-8", "replace"),
            "offered": self.offered.decode("utf-8", "replace"),
            "seen_at": self.seen_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conflict:
        return cls(
            str(data["origin"]),
            str(data["kind"]),
            str(data["detail"]),
            str(data["cosigned"]).encode(),
            str(data["offered"]).encode(),
            int(data["seen_at"]),
        )


class StateTransaction:
    """The view of the state inside one atomic check-and-update."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def latest(self, origin: str) -> CosignedCheckpoint | None:
        row = self._db.execute(
            "SELECT size, root_hash, checkpoint, cosigned_at FROM latest WHERE origin = ?",
            (origin,),
        ).fetchone()
        if row is None:
            return None
        return CosignedCheckpoint(origin, int(row[0]), bytes(row[1]), bytes(row[2]), int(row[3]))

    def put(self, cosigned: CosignedCheckpoint) -> None:
        self._db.execute(
            "INSERT INTO latest (origin, size, root_hash, checkpoint, cosigned_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(origin) DO UPDATE SET size = excluded.size, "
            "root_hash = excluded.root_hash, checkpoint = excluded.checkpoint, "
            "cosigned_at = excluded.cosigned_at",
            (
                cosigned.origin,
                cosigned.size,
                cosigned.root_hash,
                cosigned.checkpoint,
                cosigned.cosigned_at,
            ),
        )


class WitnessState:
    """The witness's SQLite database in a state directory."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self._lock = threading.Lock()
        self.path = path

    @classmethod
    def open(cls, directory: Path) -> WitnessState:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / DB_NAME
            # Autocommit: transactions are explicit (BEGIN IMMEDIATE below).
            db = open_wal(path, _SCHEMA, busy_timeout_ms=30_000)
        except (OSError, sqlite3.Error) as exc:
            raise WitnessStateError(f"{directory}: cannot open witness state: {exc}") from None
        return cls(db, path)

    @contextmanager
    def transaction(self) -> Iterator[StateTransaction]:
        """Atomic check-and-update; an exception inside rolls everything back."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield StateTransaction(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def latest(self, origin: str) -> CosignedCheckpoint | None:
        with self._lock:
            return StateTransaction(self._db).latest(origin)

    def all_latest(self) -> list[CosignedCheckpoint]:
        with self._lock:
            origins = [r[0] for r in self._db.execute("SELECT origin FROM latest ORDER BY origin")]
            view = StateTransaction(self._db)
            return [c for o in origins if (c := view.latest(o)) is not None]

    def record_conflict(self, conflict: Conflict) -> bool:
        """Keep ``conflict`` unless the same offer is kept already or the origin holds
        :data:`MAX_CONFLICTS_PER_ORIGIN` pieces of evidence; True when it was kept."""
        with self._lock:
            kept = self._db.execute(
                "SELECT count(*), coalesce(sum(offered = ?), 0) FROM conflicts WHERE origin = ?",
                (conflict.offered, conflict.origin),
            ).fetchone()
            if int(kept[0]) >= MAX_CONFLICTS_PER_ORIGIN or int(kept[1]):
                return False
            self._db.execute(
                "INSERT INTO conflicts (origin, kind, detail, cosigned, offered, seen_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    conflict.origin,
                    conflict.kind,
                    conflict.detail,
                    conflict.cosigned,
                    conflict.offered,
                    conflict.seen_at,
                ),
            )
            return True

    def conflicts(self, origin: str | None = None) -> list[Conflict]:
        query = "SELECT origin, kind, detail, cosigned, offered, seen_at FROM conflicts"
        params: tuple[str, ...] = ()
        if origin is not None:
            query += " WHERE origin = ?"
            params = (origin,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id", params).fetchall()
        return [Conflict(r[0], r[1], r[2], bytes(r[3]), bytes(r[4]), int(r[5])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> WitnessState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

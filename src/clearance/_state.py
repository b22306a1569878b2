"""The state file of a log follower (the auditor, the monitor): SQLite with a meta table.

A follower keeps what it learned from one log.  Its file records that log's
identity (origin and key) when it is first opened, and every later open
checks it, so a state directory is never mixed up between two logs.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import ClassVar, Self

from clearance._sqlite import open_wal

#: The key/value table every follower's schema includes.
META_SCHEMA = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"


class LogStateFile:
    """A follower's SQLite state file in autocommit mode, bound to one log."""

    #: The file's name in the follower's state directory, its schema (which includes
    #: :data:`META_SCHEMA`), and the follower's error for a state it cannot use.
    FILE_NAME: ClassVar[str]
    SCHEMA: ClassVar[str]
    REFUSED: ClassVar[type[Exception]]

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    def open(cls, directory: Path, log_identity: str) -> Self:
        """Open (or create) the state in ``directory`` for the log named by
        ``log_identity`` (its origin and key)."""
        path = directory / cls.FILE_NAME
        refuse = cls.REFUSED
        try:
            directory.mkdir(parents=True, exist_ok=True)
            db = open_wal(path, cls.SCHEMA, check_same_thread=True)
        except (OSError, sqlite3.Error) as exc:
            raise refuse(f"{directory}: cannot open the state file {path.name}: {exc}") from None
        state = cls(db, path)
        try:
            known = state.meta("log")
            if known is None:
                state.set_meta("log", log_identity)
            elif known != log_identity:
                shown = (known.splitlines() or [""])[0][:80]
                raise refuse(
                    f"{directory}: this state belongs to another log ({shown}); "
                    "use another --state directory"
                )
        except BaseException:
            db.close()
            raise
        return state

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

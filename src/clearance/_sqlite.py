"""Opening the project's SQLite files: WAL, a busy timeout, retried journal-mode switch.

Several stores (the gateway's index, health reports and job queue; the auditor's, the
monitor's and the witness's state) are SQLite files in WAL mode that more than one
process may open at once (replicas sharing a data directory, a CLI beside a server).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

#: How long a writer waits for another process's lock before "database is locked".
BUSY_TIMEOUT_MS = 10_000


def enable_wal(db: sqlite3.Connection, seconds: float = 30.0) -> None:
    """Switch to WAL, retrying: SQLite answers a journal-mode change that races another
    process opening the same file with "database is locked" at once, without waiting
    for the busy timeout (replicas sharing a data directory start together)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def open_wal(
    path: Path | str,
    schema: str,
    *,
    synchronous: str = "FULL",
    check_same_thread: bool = False,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, the schema applied.

    The busy timeout is set first so that every later statement waits for other
    processes instead of failing at once.
    """
    db = sqlite3.connect(path, check_same_thread=check_same_thread, isolation_level=None)
    try:
        db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        enable_wal(db)
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.executescript(schema)
    except BaseException:
        db.close()
        raise
    return db

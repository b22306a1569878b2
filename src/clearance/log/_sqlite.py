"""The log's SQLite database: the single source of truth the public files are built from.

Tables: ``meta`` (format, origin, log verifier key), ``tiles`` (the latest
contents of every hash tile), ``bundles`` (the latest contents of every
entry bundle) and ``head`` (the tree size and its signed checkpoint).  A
batch of entries is one transaction; WAL with ``synchronous=FULL`` makes a
commit durable before the append is acknowledged.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from clearance.log._edge import TileWrite
from clearance.log.errors import LogCorruptedError, LogInputError

FORMAT = "clearance-log/1"
#: The file whose ``flock`` serialises writers of separate processes.
LOCK_NAME = "lock"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tiles (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE bundles (idx INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    note BLOB NOT NULL
);
"""


#: Bundles are ~50 KiB blobs: big pages mean short overflow chains (measured ~2x faster).
PAGE_SIZE = 16384
#: Checkpoint the WAL into the database every ~64 MiB instead of every 4 MiB.
WAL_AUTOCHECKPOINT_PAGES = 4096


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60.0)
    db.execute("PRAGMA journal_mode=WAL")
    # FULL: the WAL is fsynced at every commit, so an acknowledged batch survives power loss.
    db.execute("PRAGMA synchronous=FULL")
    db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    return db


def create_database(path: Path, meta: dict[str, str], note: bytes) -> None:
    """Write a complete empty log database at ``path`` (built aside, then renamed)."""
    temp = path.with_name(path.name + ".new")
    temp.unlink(missing_ok=True)
    db = sqlite3.connect(temp, isolation_level=None)
    try:
        db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        db.execute("BEGIN")
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("format", FORMAT), *meta.items()])
        db.execute("INSERT INTO head VALUES (1, 0, ?)", (note,))
        db.execute("COMMIT")
    finally:
        db.close()
    temp.replace(path)


class Database:
    """A log's SQLite database: one connection for the integrator, one for readers.

    Implements :class:`clearance.log.storage.LogStorage`; the integrator's
    methods (:meth:`commit_batch`, :meth:`set_note`) are called inside
    :meth:`sequencing`, reads may come from any thread.
    """

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise LogInputError(f"{path.parent}: not a Clearance log (no {path.name})")
        try:
            self._db = _connect(path)
            self._meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            self._read_db = _connect(path)
        except sqlite3.DatabaseError as exc:
            raise LogCorruptedError(f"{path}: unreadable log database: {exc}") from None
        self._path = path
        self._read_lock = threading.Lock()
        self._thread_lock = threading.Lock()
        if self._meta.get("format") != FORMAT:
            raise LogCorruptedError(f"{path}: unknown log format {self._meta.get('format')!r}")

    @property
    def location(self) -> str:
        return str(self._path)

    @property
    def meta(self) -> dict[str, str]:
        return dict(self._meta)

    def close(self) -> None:
        self._db.close()
        self._read_db.close()

    @contextlib.contextmanager
    def sequencing(self, wait: bool = True) -> Iterator[bool]:
        """Exclusive across threads and processes (CLI appends beside a server)."""
        if not self._thread_lock.acquire(blocking=wait):
            yield False
            return
        try:
            fd = os.open(self._path.parent / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                except BlockingIOError:
                    yield False
                    return
                yield True
            finally:
                os.close(fd)
        finally:
            self._thread_lock.release()

    def _fail(self, exc: sqlite3.DatabaseError) -> LogCorruptedError:
        return LogCorruptedError(f"{self._path}: log database error: {exc}")

    def sequenced_size(self) -> int:
        return self.head()[0]  # a local read: nothing to save

    def head(self) -> tuple[int, bytes]:
        try:
            with self._read_lock:
                row = self._read_db.execute("SELECT size, note FROM head WHERE id = 1").fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._fail(exc) from None
        if row is None:
            raise LogCorruptedError(f"{self._path}: the log has no head checkpoint")
        return int(row[0]), bytes(row[1])

    def tile(self, level: int, index: int) -> bytes | None:
        try:
            with self._read_lock:
                row = self._read_db.execute(
                    "SELECT data FROM tiles WHERE level = ? AND idx = ?", (level, index)
                ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._fail(exc) from None
        return None if row is None else bytes(row[0])

    def bundle(self, index: int) -> bytes | None:
        try:
            with self._read_lock:
                row = self._read_db.execute(
                    "SELECT data FROM bundles WHERE idx = ?", (index,)
                ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._fail(exc) from None
        return None if row is None else bytes(row[0])

    def iter_bundles(self) -> Iterator[tuple[int, bytes]]:
        try:
            cursor = self._db.execute("SELECT idx, data FROM bundles ORDER BY idx")
            for idx, data in cursor:
                yield int(idx), bytes(data)
        except sqlite3.DatabaseError as exc:
            raise self._fail(exc) from None

    def counts(self) -> tuple[int, int]:
        """How many tile rows and bundle rows exist (a self-check looks for strays)."""
        try:
            tiles = self._db.execute("SELECT count(*) FROM tiles").fetchone()[0]
            bundles = self._db.execute("SELECT count(*) FROM bundles").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise self._fail(exc) from None
        return int(tiles), int(bundles)

    def commit_batch(
        self, writes: Iterable[TileWrite], old_size: int, size: int, root: bytes, note: bytes
    ) -> None:
        """Store one batch atomically; refuse if another writer moved the head meanwhile."""
        tiles: list[TileWrite] = []
        bundles: list[TileWrite] = []
        for w in writes:
            (bundles if w.is_bundle else tiles).append(w)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                current = self._db.execute("SELECT size FROM head WHERE id = 1").fetchone()
                if current is None or int(current[0]) != old_size:
                    raise LogCorruptedError(
                        f"{self._path}: the log head moved from {old_size} under a writer"
                    )
                self._db.executemany(
                    "INSERT OR REPLACE INTO tiles VALUES (?, ?, ?)",
                    [(w.level, w.index, w.data) for w in tiles],
                )
                self._db.executemany(
                    "INSERT OR REPLACE INTO bundles VALUES (?, ?)",
                    [(w.index, w.data) for w in bundles],
                )
                self._db.execute("UPDATE head SET size = ?, note = ? WHERE id = 1", (size, note))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise self._fail(exc) from None

    def set_note(self, size: int, old_note: bytes, note: bytes) -> None:
        """Replace the head checkpoint (same size, more cosignatures) if it is unchanged."""
        try:
            cursor = self._db.execute(
                "UPDATE head SET note = ? WHERE id = 1 AND size = ? AND note = ?",
                (note, size, old_note),
            )
        except sqlite3.DatabaseError as exc:
            raise self._fail(exc) from None
        if cursor.rowcount != 1:
            raise LogCorruptedError(f"{self._path}: the head checkpoint changed under a writer")

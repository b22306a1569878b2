"""Files every replica must see, kept in the gateway's PostgreSQL database.

* :class:`PostgresArtifactBlobs` - uploaded artifacts, as ``bytea`` rows of at
  most 1 MiB (``clr_gw_blobs``).  A replica that lacks an artifact in its own
  data directory fetches it from here into that directory (a cache: the name
  is the content's SHA-256, checked again as it is written).
* :class:`PostgresOpeningStore` - the entitlement openings vendors hand the
  gateway (``clr_gw_openings``), which the log cannot rebuild.
* :class:`PostgresTufFiles` - the TUF repository's signed metadata and target
  files (``clr_gw_tuf_files``).  A change runs under a transaction-scoped
  advisory lock: the replica first brings its copy of the repository up to
  the database's, signs the next versions on top of it, and stores the files
  it wrote in the same transaction; replicas refresh their copy every poll.

Why ``bytea`` in chunks and not large objects: chunks are ordinary rows, so
an artifact is stored in the same transaction as any other row, is removed
with its rows (a large object outlives a dropped reference until
``vacuumlo``), is carried by logical replication and plain ``pg_dump`` of
the tables, and needs no ``lo_*`` privileges; 1 MiB rows keep every read
and write bounded in memory.  Each class is the only holder of its SQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from clearance.gateway._pg import Pool, database_error, open_pool
from clearance.policy.commitment import EntitlementOpening

CHUNK_BYTES = 1 << 20

_BLOB_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS clr_gw_blobs (
        sha256 text NOT NULL, part integer NOT NULL, data bytea NOT NULL,
        PRIMARY KEY (sha256, part))""",
)

_TUF_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS clr_gw_tuf_files (
        path text PRIMARY KEY, sha256 text NOT NULL, data bytea NOT NULL)""",
)

_OPENING_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS clr_gw_openings (
        commitment text PRIMARY KEY, log_index bigint NOT NULL, customer text NOT NULL,
        opening text NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS clr_gw_openings_customer ON clr_gw_openings(customer)",
)

#: pg_advisory_xact_lock key of a change to the TUF repository ("clr-tuf1").
_TUF_LOCK = int.from_bytes(b"clr-tuf1", "big") & 0x7FFF_FFFF_FFFF_FFFF

#: The TUF repository's sub-directories that replicas share (its keys stay per replica).
_TUF_SHARED = ("metadata", "targets")


def _write_atomic(path: Path, chunks: Iterator[bytes], sha256: str) -> bool:
    """Write ``chunks`` to ``path`` through a temporary file, only if they hash to ``sha256``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as handle:
            for chunk in chunks:
                digest.update(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        if digest.hexdigest() != sha256:
            return False
        tmp.replace(path)
        return True
    finally:
        tmp.unlink(missing_ok=True)


class PostgresArtifactBlobs:
    """Uploaded artifacts in PostgreSQL, so that any replica serves what another received."""

    def __init__(self, dsn: str, *, name: str = "clearance-blobs", pool_size: int = 2) -> None:
        self._dsn = dsn
        self._pool: Pool = open_pool(dsn, name, _BLOB_SCHEMA, max_size=pool_size)

    def close(self) -> None:
        self._pool.close()

    def put(self, sha256: str, data: bytes) -> None:
        """Store an artifact (once: the same digest again is a no-op), in one transaction."""
        parts = [
            (sha256, n, data[start : start + CHUNK_BYTES])
            for n, start in enumerate(range(0, max(len(data), 1), CHUNK_BYTES))
        ]
        try:
            with self._pool.connection() as conn:
                if conn.execute(
                    "SELECT 1 FROM clr_gw_blobs WHERE sha256 = %s AND part = 0", (sha256,)
                ).fetchone():
                    return
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO clr_gw_blobs (sha256, part, data) VALUES (%s, %s, %s) "
                        "ON CONFLICT DO NOTHING",
                        parts,
                    )
        except psycopg.OperationalError as exc:
            raise database_error(self._dsn, exc) from None

    def copy_to(self, sha256: str, path: Path) -> bool:
        """Write the stored artifact ``sha256`` to ``path``; False if it is not stored (or its
        stored bytes do not hash to its name, which leaves ``path`` untouched)."""
        try:
            # A server-side cursor: a few chunks in memory at a time, whatever the size.
            with (
                self._pool.connection() as conn,
                conn.cursor(name=f"blob_{threading.get_ident()}") as cur,
            ):
                cur.itersize = 4
                cur.execute(
                    "SELECT data FROM clr_gw_blobs WHERE sha256 = %s ORDER BY part", (sha256,)
                )
                rows = iter(cur)
                first = next(rows, None)
                if first is None:
                    return False

                def chunks() -> Iterator[bytes]:
                    yield bytes(first[0])
                    for row in rows:
                        yield bytes(row[0])

                return _write_atomic(path, chunks(), sha256)
        except psycopg.OperationalError as exc:
            raise database_error(self._dsn, exc) from None


class PostgresOpeningStore:
    """Entitlement openings in PostgreSQL: a device whose entitlement was handed to one
    replica authenticates at every replica.  Private like the files of
    :class:`~clearance.gateway.customers.OpeningStore`: never in the log or the public API."""

    def __init__(self, dsn: str, *, name: str = "clearance-openings", pool_size: int = 2) -> None:
        self._dsn = dsn
        self._pool: Pool = open_pool(dsn, name, _OPENING_SCHEMA, max_size=pool_size)

    def close(self) -> None:
        self._pool.close()

    def _rows(self, sql: str, params: tuple[str, ...]) -> list[tuple[int, EntitlementOpening]]:
        try:
            with self._pool.connection() as conn:
                rows = conn.execute(sql, params).fetchall()
        except psycopg.OperationalError as exc:
            raise database_error(self._dsn, exc) from None
        return [(int(i), EntitlementOpening.from_dict(json.loads(o))) for i, o in rows]

    def add(self, log_index: int, opening: EntitlementOpening) -> None:
        body = json.dumps(opening.to_dict(), sort_keys=True)
        try:
            with self._pool.connection() as conn:
                conn.execute(
                    "INSERT INTO clr_gw_openings (commitment, log_index, customer, opening) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (opening.commitment, log_index, opening.entitlement.customer, body),
                )
        except psycopg.OperationalError as exc:
            raise database_error(self._dsn, exc) from None

    def all(self) -> list[tuple[int, EntitlementOpening]]:
        return self._rows(
            "SELECT log_index, opening FROM clr_gw_openings ORDER BY log_index, commitment", ()
        )

    def of(self, customer: str) -> list[tuple[int, EntitlementOpening]]:
        return self._rows(
            "SELECT log_index, opening FROM clr_gw_openings WHERE customer = %s "
            "ORDER BY log_index, commitment",
            (customer,),
        )


class PostgresTufFiles:
    """The TUF repository's metadata and targets in PostgreSQL, mirrored into a directory.

    The directory is each replica's copy (served as files); the database is the
    repository.  :meth:`exclusive` wraps every change; :meth:`pull` refreshes a copy.
    Callers serialise their own threads (the repository's lock) around both.
    """

    def __init__(self, dsn: str, *, name: str = "clearance-tuf", pool_size: int = 2) -> None:
        self._dsn = dsn
        self._pool: Pool = open_pool(dsn, name, _TUF_SCHEMA, max_size=pool_size)
        #: path -> SHA-256 of the files this replica's copy is known to hold.
        self._known: dict[str, str] = {}

    def close(self) -> None:
        self._pool.close()

    def pull(self, directory: Path) -> None:
        """Make ``directory``'s copy equal to the database's."""
        try:
            with self._pool.connection() as conn:
                self._pull(conn, directory)
        except psycopg.OperationalError as exc:
            raise database_error(self._dsn, exc) from None

    @contextmanager
    def exclusive(self, directory: Path) -> Iterator[None]:
        """One change to the repository: up to date on entry, stored on exit, with no other
        replica changing it in between (an exception stores nothing)."""
        try:
            with self._pool.connection() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_TUF_LOCK,))
                self._pull(conn, directory)
                yield
                self._push(conn, directory)
        except psycopg.OperationalError as exc:
            raise database_error(self._dsn, exc) from None

    def _pull(self, conn: psycopg.Connection[tuple[Any, ...]], directory: Path) -> None:
        stored = {
            str(p): str(s)
            for p, s in conn.execute("SELECT path, sha256 FROM clr_gw_tuf_files").fetchall()
        }
        if not stored:
            return  # a new database: the first change seeds it from this copy
        for path, sha256 in stored.items():
            if self._known.get(path) == sha256:
                continue
            local = directory / path
            if local.is_file() and hashlib.sha256(local.read_bytes()).hexdigest() == sha256:
                self._known[path] = sha256
                continue
            row = conn.execute(
                "SELECT data FROM clr_gw_tuf_files WHERE path = %s", (path,)
            ).fetchone()
            if row is not None and _write_atomic(local, iter([bytes(row[0])]), sha256):
                self._known[path] = sha256
        # Metadata this copy wrote in a change that was rolled back is not the repository's.
        for local in (directory / "metadata").glob("*.json"):
            relative = f"metadata/{local.name}"
            if relative not in stored:
                local.unlink(missing_ok=True)
                self._known.pop(relative, None)

    def _push(self, conn: psycopg.Connection[tuple[Any, ...]], directory: Path) -> None:
        for sub in _TUF_SHARED:
            for local in sorted((directory / sub).rglob("*")):
                if not local.is_file() or local.name.startswith("."):
                    continue
                relative = local.relative_to(directory).as_posix()
                # Versioned metadata and digest-named targets never change once written;
                # timestamp.json is the one file rewritten in place.
                if relative in self._known and relative != "metadata/timestamp.json":
                    continue
                data = local.read_bytes()
                sha256 = hashlib.sha256(data).hexdigest()
                if self._known.get(relative) == sha256:
                    continue
                conn.execute(
                    "INSERT INTO clr_gw_tuf_files (path, sha256, data) VALUES (%s, %s, %s) "
                    "ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, "
                    "data = excluded.data",
                    (relative, sha256, data),
                )
                self._known[relative] = sha256

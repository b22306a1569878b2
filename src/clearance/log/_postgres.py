"""The log's PostgreSQL backend: tiles, entry bundles and checkpoints shared by replicas.

Tables (one log per database):

* ``clr_log_meta(key, value)`` - format, origin, verifier key;
* ``clr_log_tiles(level, idx, data)`` - one row per hash tile, rewritten until
  full (Tessera's ``Subtree``);
* ``clr_log_bundles(idx, data)`` - one row per full entry bundle (Tessera's
  ``TiledLeaves``), and ``clr_log_bundle_parts(idx, start, data)`` - the
  partial bundle as the entries each commit added from byte ``start`` on.
  A commit writes its own entries only, not the whole partial bundle again
  (up to 16 MiB with entries of the largest size: a cost quadratic in the
  bundle); a read joins the parts; the commit that fills a bundle writes its
  row and deletes its parts.  A partial bundle kept as a row by an older
  version is read as the first part;
* ``clr_log_head(size, note)`` - the integrated tree and its signed checkpoint;
* ``clr_log_checkpoints(size PRIMARY KEY, root, note, token)`` - every
  checkpoint ever signed: the primary key on ``size`` is what makes two
  checkpoints for different trees of one size impossible, whatever a buggy
  or partitioned integrator does;
* ``clr_log_lease(token, holder, acquired_at)`` - the fencing token.

Integrating is exclusive: :meth:`PostgresStorage.sequencing` takes a session
advisory lock (released by PostgreSQL the moment the holder's connection
dies, so a ``kill -9`` hands over at once) and bumps the fencing token;
:meth:`PostgresStorage.commit_batch` re-checks the token (``FOR SHARE``) and
the head size in the one statement that writes the batch, so an integrator that
lost its lock writes nothing.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from clearance._pg_rows import as_columns, last_per_key, register_columns
from clearance.log._edge import TileWrite
from clearance.log._tilemath import TILE_WIDTH
from clearance.log.errors import LogCorruptedError, LogInputError, LogUnavailableError

FORMAT = "clearance-log/1"
#: pg_advisory_lock key of the integrator ("clr-log1" as a big-endian int64).
ADVISORY_KEY = int.from_bytes(b"clr-log1", "big") & 0x7FFF_FFFF_FFFF_FFFF

_BUNDLE_PARTS = """CREATE TABLE IF NOT EXISTS clr_log_bundle_parts (
    idx bigint NOT NULL, start integer NOT NULL, data bytea NOT NULL,
    PRIMARY KEY (idx, start))"""

#: A bundle's bytes in order: its row (full, or partial from an older version), then parts.
_BUNDLE = (
    "SELECT -1, data FROM clr_log_bundles WHERE idx = %(idx)s UNION ALL "
    "SELECT start, data FROM clr_log_bundle_parts WHERE idx = %(idx)s ORDER BY 1"
)

#: A commit: the head moved (only from the expected size, only under this integrator's
#: token), its tiles, full bundles and bundle parts (one array per column, see
#: clearance._pg_rows), the parts of bundles now full dropped, and the checkpoint kept;
#: every write is conditional on the head having moved.  One statement, so one round trip
#: and one implicit transaction instead of six: the commit is on the integrator's path,
#: which every submission waits for.  Its text is fixed (empty arrays write nothing), so
#: psycopg prepares it once.
_COMMIT = """
WITH moved AS (
    UPDATE clr_log_head SET size = %(size)s, note = %(note)s
    WHERE id = 1 AND size = %(old_size)s AND EXISTS (
        SELECT 1 FROM clr_log_lease WHERE id = 1 AND token = %(token)s FOR SHARE)
    RETURNING size
), tiles AS (
    INSERT INTO clr_log_tiles
    SELECT * FROM unnest(%(tile_level)b::integer[], %(tile_idx)b::bigint[],
                         %(tile_data)b::bytea[])
    WHERE EXISTS (SELECT 1 FROM moved)
    ON CONFLICT (level, idx) DO UPDATE SET data = EXCLUDED.data
), bundles AS (
    INSERT INTO clr_log_bundles
    SELECT * FROM unnest(%(bundle_idx)b::bigint[], %(bundle_data)b::bytea[])
    WHERE EXISTS (SELECT 1 FROM moved)
    ON CONFLICT (idx) DO UPDATE SET data = EXCLUDED.data
), filled AS (
    DELETE FROM clr_log_bundle_parts
    WHERE idx = ANY(%(bundle_idx)b::bigint[]) AND EXISTS (SELECT 1 FROM moved)
), parts AS (
    INSERT INTO clr_log_bundle_parts
    SELECT * FROM unnest(%(part_idx)b::bigint[], %(part_start)b::integer[],
                         %(part_data)b::bytea[])
    WHERE EXISTS (SELECT 1 FROM moved)
    ON CONFLICT (idx, start) DO UPDATE SET data = EXCLUDED.data
), kept AS (
    INSERT INTO clr_log_checkpoints (size, root, note, token)
    SELECT %(size)s, %(root)s, %(note)s, %(token)s WHERE EXISTS (SELECT 1 FROM moved)
)
SELECT size FROM moved"""


_SCHEMA = (
    "CREATE TABLE clr_log_meta (key text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE clr_log_tiles (
        level integer NOT NULL, idx bigint NOT NULL, data bytea NOT NULL,
        PRIMARY KEY (level, idx))""",
    "CREATE TABLE clr_log_bundles (idx bigint PRIMARY KEY, data bytea NOT NULL)",
    _BUNDLE_PARTS,
    """CREATE TABLE clr_log_head (
        id integer PRIMARY KEY CHECK (id = 1), size bigint NOT NULL, note bytea NOT NULL)""",
    """CREATE TABLE clr_log_checkpoints (
        size bigint PRIMARY KEY, root bytea NOT NULL, note bytea NOT NULL,
        token bigint NOT NULL, signed_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE clr_log_lease (
        id integer PRIMARY KEY CHECK (id = 1), token bigint NOT NULL,
        holder text NOT NULL, acquired_at timestamptz NOT NULL DEFAULT now())""",
)


def redact(dsn: str) -> str:
    """A DSN safe to print: any password replaced by ``***``."""
    dsn = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", dsn)


def _unavailable(dsn: str, exc: Exception) -> LogUnavailableError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return LogUnavailableError(f"{redact(dsn)}: log database unavailable: {first}")


def create_postgres(dsn: str, meta: dict[str, str], note: bytes, root: bytes) -> None:
    """Create the log's tables in the (empty) database ``dsn``, all in one transaction."""
    try:
        with psycopg.connect(dsn) as conn:
            exists = conn.execute("SELECT to_regclass('clr_log_meta') IS NOT NULL").fetchone()
            if exists is not None and exists[0]:
                raise LogInputError(f"{redact(dsn)}: already holds a log, refusing to overwrite it")
            for statement in _SCHEMA:
                conn.execute(statement)
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO clr_log_meta VALUES (%s, %s)", [("format", FORMAT), *meta.items()]
                )
            conn.execute("INSERT INTO clr_log_head VALUES (1, 0, %s)", (note,))
            conn.execute(
                "INSERT INTO clr_log_checkpoints (size, root, note, token) VALUES (0, %s, %s, 0)",
                (root, note),
            )
            conn.execute("INSERT INTO clr_log_lease (id, token, holder) VALUES (1, 0, '')")
    except psycopg.OperationalError as exc:
        raise _unavailable(dsn, exc) from None


class PostgresStorage:
    """A log kept in PostgreSQL; see the module documentation."""

    def __init__(self, dsn: str, *, name: str = "clearance", pool_size: int = 8) -> None:
        self._dsn = dsn
        self._name = name
        try:
            self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
                dsn,
                min_size=1,
                max_size=pool_size,
                kwargs={"autocommit": True, "application_name": name},
                configure=register_columns,
                open=False,
            )
            self._pool.open(wait=True, timeout=10.0)
        except (psycopg.Error, Exception) as exc:
            raise _unavailable(dsn, exc) from None
        try:
            rows = self._read("SELECT key, value FROM clr_log_meta", ())
        except LogUnavailableError:
            self._pool.close()
            raise
        self._meta = {str(k): str(v) for k, v in rows}
        if self._meta.get("format") != FORMAT:
            self._pool.close()
            raise LogCorruptedError(
                f"{self.location}: unknown log format {self._meta.get('format')!r}"
            )
        self._add_bundle_parts()
        self._seq_lock = threading.Lock()
        self._seq_conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._token: int | None = None
        self._last_token: int | None = None
        #: The head's size while this storage holds the lease (see :meth:`sequenced_size`).
        self._sequenced_size: int | None = None

    def _add_bundle_parts(self) -> None:
        """A log created by an older version gets the table of partial bundle parts."""
        found = self._read("SELECT to_regclass('clr_log_bundle_parts') IS NOT NULL", ())
        if found and found[0][0]:
            return
        try:
            with self._pool.connection(timeout=30.0) as conn:
                conn.execute(_BUNDLE_PARTS)
        except psycopg.Error as exc:
            self._pool.close()
            raise LogUnavailableError(
                f"{self.location}: cannot add the table clr_log_bundle_parts to this log "
                f"(a role allowed to create tables must open it once): {exc}"
            ) from None

    @property
    def location(self) -> str:
        return redact(self._dsn)

    @property
    def meta(self) -> dict[str, str]:
        return dict(self._meta)

    @property
    def token(self) -> int | None:
        """The fencing token of the current integrator lease (``None`` outside it)."""
        return self._token

    def close(self) -> None:
        self._pool.close()
        if self._seq_conn is not None:
            self._seq_conn.close()

    # -- reads: one point lookup each, from the pool ------------------------------------------

    def _read(
        self, query: str, params: tuple[Any, ...] | dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        try:
            with self._pool.connection(timeout=30.0) as conn:
                return conn.execute(query, params).fetchall()
        except psycopg.errors.UndefinedTable:
            raise LogInputError(
                f"{self.location}: not a Clearance log (no clr_log_* tables)"
            ) from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise _unavailable(self._dsn, exc) from None
        except psycopg.Error as exc:
            raise LogCorruptedError(f"{self.location}: log database error: {exc}") from None
        except Exception as exc:  # psycopg_pool.PoolTimeout and friends
            raise _unavailable(self._dsn, exc) from None

    def head(self) -> tuple[int, bytes]:
        rows = self._read("SELECT size, note FROM clr_log_head WHERE id = 1", ())
        if not rows:
            raise LogCorruptedError(f"{self.location}: the log has no head checkpoint")
        return int(rows[0][0]), bytes(rows[0][1])

    def tile(self, level: int, index: int) -> bytes | None:
        rows = self._read(
            "SELECT data FROM clr_log_tiles WHERE level = %s AND idx = %s", (level, index)
        )
        return bytes(rows[0][0]) if rows else None

    def bundle(self, index: int) -> bytes | None:
        rows = self._read(_BUNDLE, {"idx": index})
        if not rows:
            return None
        data = bytearray()
        for start, part in rows:
            if start >= 0 and start != len(data):
                raise LogCorruptedError(
                    f"{self.location}: entry bundle {index} has a part at byte {start} "
                    f"where {len(data)} bytes were stored before it"
                )
            data += part
        return bytes(data)

    def iter_bundles(self) -> Iterator[tuple[int, bytes]]:
        start = 0
        while True:
            rows = self._read(
                "SELECT idx FROM clr_log_bundles WHERE idx >= %s UNION "
                "SELECT idx FROM clr_log_bundle_parts WHERE idx >= %s ORDER BY 1 LIMIT 64",
                (start, start),
            )
            for (idx,) in rows:
                data = self.bundle(int(idx))
                if data is not None:
                    yield int(idx), data
            if len(rows) < 64:
                return
            start = int(rows[-1][0]) + 1

    def counts(self) -> tuple[int, int]:
        rows = self._read(
            "SELECT (SELECT count(*) FROM clr_log_tiles), (SELECT count(*) FROM ("
            "SELECT idx FROM clr_log_bundles UNION SELECT idx FROM clr_log_bundle_parts) AS b)",
            (),
        )
        return int(rows[0][0]), int(rows[0][1])

    def checkpoints(self) -> list[tuple[int, bytes, bytes]]:
        """Every checkpoint signed so far: (size, root, note), by size."""
        rows = self._read("SELECT size, root, note FROM clr_log_checkpoints ORDER BY size", ())
        return [(int(s), bytes(r), bytes(n)) for s, r, n in rows]

    def lease_holder(self) -> tuple[int, str]:
        """The current fencing token and the name of the replica that took it."""
        rows = self._read("SELECT token, holder FROM clr_log_lease WHERE id = 1", ())
        return int(rows[0][0]), str(rows[0][1])

    # -- the integrator -----------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._seq_conn is None or self._seq_conn.closed or self._seq_conn.broken:
            if self._seq_conn is not None:
                self._seq_conn.close()
            self._seq_conn = psycopg.connect(
                self._dsn, autocommit=True, application_name=self._name + "/integrator"
            )
        return self._seq_conn

    @contextlib.contextmanager
    def sequencing(self, wait: bool = True) -> Iterator[bool]:
        """Hold the advisory lock and a fresh fencing token for the duration."""
        if not self._seq_lock.acquire(blocking=wait):
            yield False
            return
        try:
            try:
                conn = self._connection()
                if not wait:
                    got = conn.execute(
                        "SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,)
                    ).fetchone()
                    if got is None or not got[0]:
                        yield False
                        return
                # The lock (a no-op if already held), then the lease row.
                # The token changes when the lease changes hands: when nobody held it
                # since this storage's last batch (the row still has the token this
                # storage was given), the batch keeps it, which spares a committed
                # write (a WAL flush) per batch.  Any other holder in between, even
                # one of the same name, leaves another token, and a new one is taken.
                # The lock first, in a statement of its own: a read in the same statement
                # would see the row as it was before the wait (the snapshot of its start).
                conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_KEY,))
                # The head's size with it: under the lock only this holder moves it, so
                # the batch needs no read of its own (a round trip on every batch's path).
                row = conn.execute(
                    "SELECT token, (SELECT size FROM clr_log_head WHERE id = 1), holder "
                    "FROM clr_log_lease WHERE id = 1"
                ).fetchone()
                if row is None or int(row[0]) != self._last_token or str(row[2]) != self._name:
                    row = conn.execute(
                        "UPDATE clr_log_lease SET token = token + 1, holder = %s, "
                        "acquired_at = now() WHERE id = 1 "
                        "RETURNING token, (SELECT size FROM clr_log_head WHERE id = 1)",
                        (self._name,),
                    ).fetchone()
            except psycopg.Error as exc:
                if self._seq_conn is not None:
                    self._seq_conn.close()
                raise _unavailable(self._dsn, exc) from None
            assert row is not None
            self._token = self._last_token = int(row[0])
            try:
                # Refused inside the try: the lock just taken is released on the way out.
                if row[1] is None:
                    raise LogCorruptedError(f"{self.location}: the log has no head checkpoint")
                self._sequenced_size = int(row[1])
                yield True
            finally:
                self._token = self._sequenced_size = None
                with contextlib.suppress(psycopg.Error):
                    conn.execute("SELECT pg_advisory_unlock_all()")
        finally:
            self._seq_lock.release()

    def _in_transaction(self, work: Any) -> None:
        conn = self._seq_conn
        if conn is None or self._token is None:
            raise LogCorruptedError(f"{self.location}: write outside the integrator lease")
        try:
            with conn.transaction(), conn.cursor() as cur:
                row = cur.execute(
                    "SELECT token FROM clr_log_lease WHERE id = 1 FOR UPDATE"
                ).fetchone()
                if row is None or int(row[0]) != self._token:
                    raise LogCorruptedError(
                        f"{self.location}: lost the integrator lease (token {self._token}, "
                        f"database holds {None if row is None else row[0]}); nothing written"
                    )
                work(cur)
        except psycopg.errors.UniqueViolation as exc:
            raise LogCorruptedError(
                f"{self.location}: refused a second checkpoint for one tree size: {exc}"
            ) from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise _unavailable(self._dsn, exc) from None
        except psycopg.Error as exc:
            raise LogCorruptedError(f"{self.location}: log database error: {exc}") from None

    def sequenced_size(self) -> int:
        if self._sequenced_size is None:
            raise LogCorruptedError(f"{self.location}: the head size asked outside the lease")
        return self._sequenced_size

    def commit_batch(
        self, writes: Iterable[TileWrite], old_size: int, size: int, root: bytes, note: bytes
    ) -> None:
        """One statement (:data:`_COMMIT`, one round trip and its own transaction), fenced
        by the token and the size.

        The head row moves only if it still has ``old_size`` and the lease still has
        this integrator's token (read ``FOR SHARE``, so a new holder waits for this
        statement); every other write of the statement is conditional on that move,
        and a second checkpoint for one size fails the whole statement.
        """
        conn = self._seq_conn
        if conn is None or self._token is None:
            raise LogCorruptedError(f"{self.location}: write outside the integrator lease")
        tiles: list[tuple[int, int, bytes]] = []
        bundles: list[tuple[int, bytes]] = []
        parts: list[tuple[int, int, bytes]] = []
        for w in writes:
            if not w.is_bundle:
                tiles.append((w.level, w.index, w.data))
            elif w.width == TILE_WIDTH:
                bundles.append((w.index, w.data))
            else:
                parts.append((w.index, w.start, w.data[w.start :]))
        # One row per key: one statement may not write a row twice (the last write won when
        # these were statements of their own, and still does).
        tile_level, tile_idx, tile_data = as_columns(
            last_per_key(tiles, 2), ("integer", "bigint", "bytea")
        )
        bundle_idx, bundle_data = as_columns(last_per_key(bundles, 1), ("bigint", "bytea"))
        part_idx, part_start, part_data = as_columns(
            last_per_key(parts, 2), ("bigint", "integer", "bytea")
        )
        params = {
            "size": size, "note": note, "old_size": old_size, "token": self._token, "root": root,
            "tile_level": tile_level, "tile_idx": tile_idx, "tile_data": tile_data,
            "bundle_idx": bundle_idx, "bundle_data": bundle_data,
            "part_idx": part_idx, "part_start": part_start, "part_data": part_data,
        }  # fmt: skip
        try:
            # No pipeline: psycopg 3.3 hangs for good in a pipeline that sends a parameter
            # of a few megabytes (the bundle of large entries), holding the lease
            # (test_large_entries_do_not_stall_the_integrator).  One statement needs none.
            moved = conn.execute(_COMMIT, params).fetchone()
        except psycopg.errors.UniqueViolation as exc:
            raise LogCorruptedError(
                f"{self.location}: refused a second checkpoint for one tree size: {exc}"
            ) from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise _unavailable(self._dsn, exc) from None
        except psycopg.Error as exc:
            raise LogCorruptedError(f"{self.location}: log database error: {exc}") from None
        if moved is None:
            raise LogCorruptedError(
                f"{self.location}: the log head moved from {old_size} or this "
                f"integrator lost its lease (token {self._token}); nothing written"
            )
        self._sequenced_size = size

    def set_note(self, size: int, old_note: bytes, note: bytes) -> None:
        def work(cur: psycopg.Cursor[tuple[Any, ...]]) -> None:
            cur.execute(
                "UPDATE clr_log_head SET note = %s WHERE id = 1 AND size = %s AND note = %s",
                (note, size, old_note),
            )
            if cur.rowcount != 1:
                raise LogCorruptedError(
                    f"{self.location}: the head checkpoint changed under a writer"
                )
            cur.execute("UPDATE clr_log_checkpoints SET note = %s WHERE size = %s", (note, size))

        self._in_transaction(work)

"""The transparency log: a data folder with its key, over SQLite or PostgreSQL.

Layout of a log directory::

    log.db        SQLite (WAL, synchronous=FULL): tiles, entry bundles, signed head
    log.dsn       or: the PostgreSQL database holding them (shared by replicas; 0600)
    log.key       the log's private key (mode 0600, never published)
    log.pub       its verifier key
    lock          file lock that serialises writers of separate processes (SQLite)
    public/       C2SP tlog-tiles: checkpoint, tile/<L>/<N>[.p/<W>], tile/entries/<N>[.p/<W>]
                  (SQLite only; a PostgreSQL log serves them from the database and
                  :meth:`TransparencyLog.export` writes a static copy)

An append returns only once its batch is committed to the database (and,
with SQLite, the tiles and checkpoint are published).  After a crash,
opening the log republishes whatever the database holds beyond the
published checkpoint.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from clearance.keys import KeyFormatError, Note, NoteSignature, Signer, Verifier, load_signer
from clearance.log import merkle
from clearance.log._edge import BUNDLE_LEVEL, RightEdge, TileWrite
from clearance.log._publish import Publisher
from clearance.log._republish import published_size, republish
from clearance.log._selfcheck import Progress, check_public, check_storage
from clearance.log._sequencer import Sequencer
from clearance.log._sqlite import Database, create_database
from clearance.log._tilemath import (
    TILE_WIDTH,
    TileTreeCache,
    hash_reader,
    level_count,
    tile_levels,
    tile_width,
)
from clearance.log.checkpoint import (
    Checkpoint,
    CheckpointExtension,
    check_origin,
    open_checkpoint,
    sign_checkpoint,
)
from clearance.log.errors import (
    CheckpointFormatError,
    CheckpointSignatureError,
    CheckpointSupersededError,
    EntryTooLargeError,
    LogCorruptedError,
    LogInputError,
)
from clearance.log.merkle import HASH_SIZE, ProofRequestError
from clearance.log.storage import LogStorage
from clearance.log.tiles import (
    MAX_ENTRY_SIZE,
    TileNotFoundError,
    decode_bundle,
    entries_path,
    parse_tile_path,
    tile_path,
)

DB_NAME = "log.db"
DSN_NAME = "log.dsn"
KEY_NAME = "log.key"
PUB_NAME = "log.pub"
PUBLIC_NAME = "public"


@dataclass(frozen=True)
class AppendResult:
    """Where an entry landed: its index and the SHA-256 (hex) of its bytes."""

    index: int
    sha256: str


def _write_private(path: Path, text: str) -> None:
    temp = path.with_name(path.name + ".new")
    temp.unlink(missing_ok=True)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    temp.replace(path)


class TransparencyLog:
    """An append-only Merkle log kept in ``directory``; see the module documentation."""

    def __init__(
        self,
        directory: Path,
        signer: Signer,
        storage: LogStorage,
        publisher: Publisher | None,
        extension: CheckpointExtension | None = None,
    ) -> None:
        self._dir = directory
        self._extension = extension
        self._signer = signer
        self._verifier = signer.verifier
        self._origin = storage.meta["origin"]
        self._storage = storage
        self._cache_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._publisher = publisher
        self._edge = RightEdge(0, [], b"")
        self._needs_recovery = True
        #: The longest version seen of recent tiles: a tile only grows, and any version at
        #: least ``width`` hashes long has the right first ``width`` hashes.
        self._tile_cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        #: A tree size known to exist (sizes only grow): proofs up to it need no head read.
        self._known_size = 0
        self._trees = TileTreeCache()
        self._sequencer: Sequencer[AppendResult] = Sequencer(self._commit_batch)
        self._io = ThreadPoolExecutor(max_workers=2, thread_name_prefix="clearance-log-io")
        self._closed = False

    # -- creation and opening -------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: Path,
        origin: str,
        signer: Signer,
        extension: CheckpointExtension | None = None,
        *,
        database: str | None = None,
    ) -> TransparencyLog:
        """Start an empty log in ``directory`` (created if needed; must not hold a log).

        ``extension`` (e.g. the verifiable index) adds its lines to every checkpoint,
        the empty one included.

        With ``database`` (a PostgreSQL DSN) the log's state lives in that
        database, whose tables are created here; the directory keeps the key
        and the DSN.
        """
        directory = Path(directory)
        try:
            check_origin(origin)
        except CheckpointFormatError as exc:
            raise LogInputError(f"origin: {exc}") from None
        if (directory / DB_NAME).exists() or (directory / DSN_NAME).exists():
            raise LogInputError(f"{directory}: already holds a log, refusing to overwrite it")
        if directory.exists() and not directory.is_dir():
            raise LogInputError(f"{directory}: exists and is not a directory")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if database is None:
                (directory / PUBLIC_NAME).mkdir(exist_ok=True)
        except OSError as exc:
            raise LogInputError(f"{directory}: cannot create the log: {exc.strerror}") from None
        lines: tuple[str, ...] = ()
        if extension is not None:
            extension.rebuild(())
            lines = extension.lines()
        note = sign_checkpoint(Checkpoint(origin, 0, merkle.EMPTY_ROOT, lines), signer)
        _write_private(directory / KEY_NAME, signer.to_string() + "\n")
        (directory / PUB_NAME).write_text(signer.verifier.to_string() + "\n")
        meta = {"origin": origin, "verifier": signer.verifier.to_string()}
        if database is not None:
            from clearance.log._postgres import create_postgres

            create_postgres(database, meta, note.to_bytes(), merkle.EMPTY_ROOT)
            _write_private(directory / DSN_NAME, database + "\n")
            return cls.open(directory, extension)
        # The database appears last, by rename: its presence marks a complete log.
        create_database(
            directory / DB_NAME,
            meta,
            note.to_bytes(),
        )
        return cls.open(directory, extension)

    @classmethod
    def open(
        cls,
        directory: Path,
        extension: CheckpointExtension | None = None,
        *,
        name: str = "clearance",
    ) -> TransparencyLog:
        """Open an existing log, recovering its public files if a writer crashed.

        With ``extension``, every checkpoint signed from now on carries its lines; it is
        brought up to the log's size (from the stored entries) before the next append.

        ``name`` identifies this process to PostgreSQL (``application_name``
        and the holder of the integrator lease).
        """
        directory = Path(directory)
        postgres = (directory / DSN_NAME).is_file()
        if not postgres and not (directory / DB_NAME).is_file():
            raise LogInputError(f"{directory}: not a Clearance log (no {DB_NAME})")
        try:
            signer = load_signer(directory / KEY_NAME)
        except KeyFormatError as exc:
            raise LogInputError(f"{directory}: log key unusable: {exc}") from None
        storage: LogStorage
        publisher: Publisher | None
        if postgres:
            from clearance.log._postgres import PostgresStorage

            storage = PostgresStorage((directory / DSN_NAME).read_text().strip(), name=name)
            publisher = None
        else:
            storage = Database(directory / DB_NAME)
            publisher = Publisher(directory / PUBLIC_NAME)
        try:
            if storage.meta.get("verifier") != signer.verifier.to_string():
                raise LogCorruptedError(
                    f"{directory / KEY_NAME}: is not the key this log was created with"
                )
            log = cls(directory, signer, storage, publisher, extension)
        except BaseException:
            storage.close()
            raise
        try:
            # A PostgreSQL replica does not wait for the integrator of another replica:
            # whoever integrates next checks and reloads the head under the lock.
            with log._write_lock, storage.sequencing(wait=publisher is not None) as held:
                if held:
                    log._recover()
        except BaseException:
            log.close()
            raise
        return log

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._io.shutdown(wait=True)
            self._storage.close()

    def __enter__(self) -> TransparencyLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- properties -----------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def verifier(self) -> Verifier:
        return self._verifier

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def public_dir(self) -> Path:
        """Where the SQLite backend publishes tlog-tiles (a PostgreSQL log has none)."""
        return self._dir / PUBLIC_NAME

    @property
    def storage(self) -> LogStorage:
        return self._storage

    @property
    def publishes_files(self) -> bool:
        """Whether :attr:`public_dir` is kept up to date on every append."""
        return self._publisher is not None

    @property
    def size(self) -> int:
        size = self._head()[0]
        self._known_size = max(self._known_size, size)
        return size

    # -- appending ------------------------------------------------------------------------

    def append(self, entries: Sequence[bytes]) -> list[AppendResult]:
        """Append entries; returns once they are durable and published (batched with others)."""
        batch = [bytes(e) for e in entries]
        for position, entry in enumerate(batch):
            if len(entry) > MAX_ENTRY_SIZE:
                raise EntryTooLargeError(
                    f"entry {position} is {len(entry)} bytes; a log entry holds at most "
                    f"{MAX_ENTRY_SIZE} bytes"
                )
        if not batch:
            return []
        if self._closed:
            raise LogInputError(f"{self._dir}: the log is closed")
        return self._sequencer.submit(batch)

    def _commit_batch(self, entries: list[bytes]) -> list[AppendResult]:
        with self._write_lock, self._storage.sequencing():
            size, _ = self._storage.head()
            if self._needs_recovery or size != self._edge.size:
                # Another process appended, or an earlier batch failed half-way.
                self._recover()
            old_size = self._edge.size
            self._needs_recovery = True  # until this batch is fully published
            lines = self._extension_lines(old_size, entries)
            writes = self._edge.append(entries)
            checkpoint = Checkpoint(self._origin, self._edge.size, self._edge.root(), lines)
            note = sign_checkpoint(checkpoint, self._signer).to_bytes()
            if self._publisher is None:
                self._storage.commit_batch(
                    writes, old_size, self._edge.size, checkpoint.root_hash, note
                )
                self._needs_recovery = False
                self._after_commit(writes, self._edge.size)
                return self._receipts(old_size, entries)
            # Disk work overlaps: one thread commits to the database while another
            # writes the tiles and checkpoint under temporary names, and this thread
            # hashes the receipts.  Nothing becomes visible before
            # the commit is durable.
            committed = self._io.submit(
                self._storage.commit_batch,
                writes,
                old_size,
                self._edge.size,
                checkpoint.root_hash,
                note,
            )
            files = [(self._path_of(w), w.data) for w in writes]
            staging = self._io.submit(self._publisher.stage, files, note)
            results = self._receipts(old_size, entries)
            try:
                committed.result()
            finally:
                staged = staging.result()  # never leave a writer thread running
            self._publisher.expose(staged)
            self._remove_replaced_partials(old_size, writes)
            self._needs_recovery = False
            self._after_commit(writes, self._edge.size)
        return results

    def _after_commit(self, writes: Sequence[TileWrite], size: int) -> None:
        """Keep what this batch wrote: the next receipts' proofs need no database read."""
        for w in writes:
            if not w.is_bundle:
                self._remember_tile(w.level, w.index, w.data)
        self._known_size = max(self._known_size, size)

    @staticmethod
    def _receipts(old_size: int, entries: list[bytes]) -> list[AppendResult]:
        sha256 = hashlib.sha256
        return [AppendResult(old_size + i, sha256(e).hexdigest()) for i, e in enumerate(entries)]

    def _extension_lines(self, old_size: int, entries: Sequence[bytes]) -> tuple[str, ...]:
        """Bring the extension to ``old_size`` (from the stored entries), apply the batch."""
        ext = self._extension
        if ext is None:
            return ()
        if ext.size != old_size:
            ext.rebuild(self._stored_entries(old_size))
        try:
            ext.extend(entries)
        except BaseException:
            ext.rebuild(())  # size 0: rebuilt from the log before the next batch
            raise
        return ext.lines()

    def _stored_entries(self, size: int) -> Iterator[bytes]:
        for start in range(0, size, TILE_WIDTH):
            data = self._storage.bundle(start // TILE_WIDTH)
            if data is None:
                raise LogCorruptedError(
                    f"{self._dir}: entry bundle {start // TILE_WIDTH} is missing"
                )
            yield from decode_bundle(data, min(TILE_WIDTH, size - start))

    def _remove_replaced_partials(self, old_size: int, writes: Sequence[TileWrite]) -> None:
        """Delete the partial versions of tiles this batch completed (only those existed)."""
        assert self._publisher is not None
        for w in writes:
            if w.width != TILE_WIDTH:
                continue
            level = 0 if w.level == BUNDLE_LEVEL else w.level
            before = level_count(old_size, level)
            if before % TILE_WIDTH and w.index == before // TILE_WIDTH:
                self._publisher.remove_partials(self._path_of(w))

    @staticmethod
    def _path_of(w: TileWrite) -> str:
        if w.level == BUNDLE_LEVEL:
            return entries_path(w.index, w.width)
        return tile_path(w.level, w.index, w.width)

    # -- recovery -------------------------------------------------------------------------

    def _recover(self) -> None:
        """Reload the right edge from the database and republish what public/ lacks."""
        size, note_bytes = self._storage.head()
        self._check_head(size, note_bytes)
        self._edge = self._load_edge(size)
        if self._publisher is None:
            self._needs_recovery = False
            return
        published = published_size(self._publisher, self._verifier, self._origin)
        if published is not None and published > size:
            raise LogCorruptedError(
                f"{self.public_dir / 'checkpoint'}: published size {published} is ahead of the "
                f"database size {size}; the database lost acknowledged entries"
            )
        start = 0 if published is None else published
        if start < size or self._publisher.read_checkpoint() != note_bytes:
            republish(self._storage, self._publisher, start, size, note_bytes)
        self._needs_recovery = False

    def _check_head(self, size: int, note_bytes: bytes) -> Checkpoint:
        try:
            checkpoint, _ = open_checkpoint(note_bytes, self._verifier, self._origin)
        except (CheckpointFormatError, CheckpointSignatureError) as exc:
            raise LogCorruptedError(f"{self._storage.location}: stored checkpoint: {exc}") from None
        if checkpoint.size != size:
            raise LogCorruptedError(
                f"{self._storage.location}: stored checkpoint is for size {checkpoint.size}, "
                f"the head says {size}"
            )
        return checkpoint

    def _load_edge(self, size: int) -> RightEdge:
        tiles = []
        for level in range(tile_levels(size)):
            count = level_count(size, level) % TILE_WIDTH
            data = b""
            if count:
                stored = self._storage.tile(level, level_count(size, level) // TILE_WIDTH)
                if stored is None or len(stored) != count * HASH_SIZE:
                    raise LogCorruptedError(
                        f"{self._storage.location}: tile {level}/"
                        f"{level_count(size, level) // TILE_WIDTH} is missing or has the wrong size"
                    )
                data = stored
            tiles.append(data)
        bundle = b""
        if size % TILE_WIDTH:
            stored = self._storage.bundle(size // TILE_WIDTH)
            if stored is None:
                raise LogCorruptedError(
                    f"{self._storage.location}: entry bundle {size // TILE_WIDTH} is missing"
                )
            decode_bundle(stored, size % TILE_WIDTH)
            bundle = stored
        edge = RightEdge(size, tiles, bundle)
        checkpoint = Checkpoint.from_note(Note.from_bytes(self._storage.head()[1]))
        if edge.root() != checkpoint.root_hash:
            raise LogCorruptedError(
                f"{self._storage.location}: stored tiles do not hash to the signed root of size {size}"
            )
        return edge

    def export(self, target: Path) -> int:
        """Write (or bring up to date) a static tlog-tiles copy in ``target``; returns its size.

        Only what changed since the checkpoint already in ``target`` is
        written, tiles before the checkpoint, so ``target`` can be served by
        nginx or a CDN while it is refreshed.
        """
        target = Path(target)
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LogInputError(
                f"{target}: cannot create the export folder: {exc.strerror}"
            ) from None
        publisher = Publisher(target)
        size, note = self._storage.head()
        published = published_size(publisher, self._verifier, self._origin)
        if published is not None and published > size:
            raise LogInputError(f"{target}: holds a newer checkpoint ({published}) than the log")
        start = 0 if published is None else published
        if start < size or publisher.read_checkpoint() != note:
            republish(self._storage, publisher, start, size, note)
        return size

    def read_public(self, path: str) -> bytes:
        """The bytes of tlog-tiles ``path`` (checkpoint, tile or bundle), from the database.

        Any tile a checkpoint up to the current one names is served, partial
        ones cut from the stored latest version; a path past the tree is
        :class:`~clearance.log.tiles.TileNotFoundError`.
        """
        if path == "checkpoint":
            return self._storage.head()[1]
        level, index, width = parse_tile_path(path)
        size = self.size
        have = tile_width(size, 0 if level < 0 else level, index)
        if have < width:
            raise TileNotFoundError(f"{path}: not in the log (size {size})")
        if level < 0:
            bundle = self._storage.bundle(index)
            if bundle is None:
                raise LogCorruptedError(f"{self._storage.location}: bundle {index} is missing")
            if have == width:
                return bundle
            end = 0
            for _ in range(width):
                end += 2 + int.from_bytes(bundle[end : end + 2], "big")
            return bundle[:end]
        return self._fetch_tile(level, index, width)

    # -- reading and proving --------------------------------------------------------------

    def _head(self) -> tuple[int, bytes]:
        return self._storage.head()

    def _remember_tile(self, level: int, index: int, data: bytes) -> None:
        key = (level, index)
        with self._cache_lock:
            cached = self._tile_cache.get(key)
            if cached is None or len(cached) < len(data):
                self._tile_cache[key] = data
            self._tile_cache.move_to_end(key)
            while len(self._tile_cache) > 256:
                self._tile_cache.popitem(last=False)

    def _fetch_tile(self, level: int, index: int, width: int) -> bytes:
        cached = self._tile_cache.get((level, index))
        if cached is not None and len(cached) >= width * HASH_SIZE:
            return cached[: width * HASH_SIZE]
        data = self._storage.tile(level, index)
        if data is None or len(data) < width * HASH_SIZE:
            raise LogCorruptedError(
                f"{self._storage.location}: tile {level}/{index} is missing or short"
            )
        self._remember_tile(level, index, data)
        return data[: width * HASH_SIZE]

    def _size_or_current(self, size: int | None) -> int:
        if size is not None and 0 <= size <= self._known_size:
            return size
        current = self.size
        if size is None:
            return current
        if not 0 <= size <= current:
            raise ProofRequestError(f"tree size {size} is past the log size {current}")
        return size

    def entry(self, index: int) -> bytes:
        size = self.size
        if not 0 <= index < size:
            raise ProofRequestError(f"no entry {index} in a log of size {size}")
        data = self._storage.bundle(index // TILE_WIDTH)
        if data is None:
            raise LogCorruptedError(
                f"{self._storage.location}: bundle {index // TILE_WIDTH} is missing"
            )
        return decode_bundle(data, index % TILE_WIDTH + 1)[-1]

    def entries(self, start: int, end: int, size: int | None = None) -> Iterator[bytes]:
        """Entries ``[start, end)`` of the tree of ``size`` leaves (default: the current
        size), streamed one entry bundle (256 entries) at a time: a :class:`LogReader`."""
        size = self._size_or_current(size)
        if not 0 <= start <= end <= size:
            raise ProofRequestError(f"entries [{start}, {end}) are not in a tree of size {size}")
        position = start
        while position < end:
            bundle_index, offset = divmod(position, TILE_WIDTH)
            data = self._storage.bundle(bundle_index)
            if data is None:
                raise LogCorruptedError(
                    f"{self._storage.location}: bundle {bundle_index} is missing"
                )
            stop = min(end - bundle_index * TILE_WIDTH, TILE_WIDTH)
            yield from decode_bundle(data, stop)[offset:stop]
            position = bundle_index * TILE_WIDTH + stop

    def root(self, size: int | None = None) -> bytes:
        if size is None:
            return Checkpoint.from_note(self.checkpoint()).root_hash
        size = self._size_or_current(size)
        return merkle.tree_root(size, hash_reader(size, self._fetch_tile, self._trees))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self._size_or_current(size)
        return merkle.inclusion_proof(index, size, hash_reader(size, self._fetch_tile, self._trees))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new_size = self._size_or_current(new_size)
        if not 0 <= old_size <= new_size:
            raise ProofRequestError(
                f"no consistency proof from size {old_size} to size {new_size} "
                "(a tree size cannot go backwards)"
            )
        return merkle.consistency_proof(
            old_size, new_size, hash_reader(new_size, self._fetch_tile, self._trees)
        )

    def checkpoint(self) -> Note:
        """The latest signed checkpoint, with every cosignature added so far."""
        return Note.from_bytes(self._head()[1])

    def add_cosignatures(
        self, signatures: Sequence[NoteSignature], for_text: str | None = None
    ) -> Note:
        """Attach witness cosignatures to the current checkpoint and republish it.

        The caller checks the cosignatures (it knows the witness keys); with
        ``for_text`` the call is refused if the log has moved on meanwhile.
        """
        with self._write_lock, self._storage.sequencing():
            size, note_bytes = self._storage.head()
            note = Note.from_bytes(note_bytes)
            if for_text is not None and for_text != note.text:
                raise CheckpointSupersededError(
                    "the cosigned checkpoint is no longer the log's current checkpoint"
                )
            for sig in signatures:
                if sig.key_id == self._verifier.key_id and sig.name == self._verifier.name:
                    raise LogInputError("a cosignature cannot replace the log's own signature")
            merged = note.with_signatures(signatures)
            if merged != note:
                self._storage.set_note(size, note_bytes, merged.to_bytes())
                if self._publisher is not None:
                    self._publisher.write_checkpoint(merged.to_bytes())
            return merged

    # -- self-check -----------------------------------------------------------------------

    def verify(self, progress: Progress | None = None) -> None:
        """Recompute the whole tree from the stored entries and check everything against it.

        Checks: the head checkpoint's signature and origin; every bundle holds
        exactly the entries its position requires; every stored tile equals
        the one recomputed from the entries; the recomputed root equals the
        signed root; no stray rows; and ``public/`` serves the same checkpoint
        and the same right-edge tiles.  Memory stays flat: one bundle at a time.
        """
        database = self._storage if self._publisher is None else Database(self._dir / DB_NAME)
        try:
            checkpoint = self._check_head(*database.head())
            check_storage(database, checkpoint, progress)
            if self._publisher is not None:
                check_public(
                    self._publisher, self.public_dir, self._verifier, self._origin, checkpoint
                )
        finally:
            if database is not self._storage:
                database.close()

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

This module sequences, integrates and publishes.  Its parts: the folder's
files are made and opened by :mod:`clearance.log._directory`; reads
(entries, tiles, proofs, the right edge after a crash) are
:class:`clearance.log._stored_tree.StoredTree`; the database is a
:class:`~clearance.log.storage.LogStorage`.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from clearance.keys import Note, NoteSignature, Signer, Verifier
from clearance.log._directory import (
    DB_NAME,
    PUBLIC_NAME,
    create_log_files,
    open_backend,
)
from clearance.log._edge import BUNDLE_LEVEL, RightEdge, TileWrite
from clearance.log._publish import Publisher
from clearance.log._republish import catch_up
from clearance.log._selfcheck import Progress, check_public, check_storage
from clearance.log._sequencer import Sequencer
from clearance.log._sqlite import Database
from clearance.log._stored_tree import StoredTree, check_head, load_edge
from clearance.log._tilemath import TILE_WIDTH, level_count
from clearance.log.checkpoint import (
    Checkpoint,
    CheckpointExtension,
    sign_checkpoint,
)
from clearance.log.errors import (
    CheckpointSupersededError,
    EntryTooLargeError,
    LogCorruptedError,
    LogInputError,
)
from clearance.log.storage import LogStorage
from clearance.log.tiles import MAX_ENTRY_SIZE, entries_path, tile_path


@dataclass(frozen=True)
class AppendResult:
    """Where an entry landed: its index and the SHA-256 (hex) of its bytes; the signed
    checkpoint its batch committed and that checkpoint's tree size (which covers it)."""

    index: int
    sha256: str
    checkpoint: bytes = b""
    tree_size: int = 0


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
        self._write_lock = threading.Lock()
        self._publisher = publisher
        self._edge = RightEdge(0, [], b"")
        self._needs_recovery = True
        self._tree = StoredTree(storage)
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
        create_log_files(directory, origin, signer, extension, database)
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
        signer, storage, publisher = open_backend(Path(directory), name)
        try:
            log = cls(Path(directory), signer, storage, publisher, extension)
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

    def __exit__(self, *exc: object) -> None:
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
        return self._tree.size

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
            size = self._storage.sequenced_size()
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
                return self._receipts(old_size, entries, note)
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
            results = self._receipts(old_size, entries, note)
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
                self._tree.remember_tile(w.level, w.index, w.data)
        self._tree.note_size(size)

    @staticmethod
    def _receipts(old_size: int, entries: list[bytes], note: bytes) -> list[AppendResult]:
        sha256, size = hashlib.sha256, old_size + len(entries)
        return [
            AppendResult(old_size + i, sha256(e).hexdigest(), note, size)
            for i, e in enumerate(entries)
        ]

    def _extension_lines(self, old_size: int, entries: Sequence[bytes]) -> tuple[str, ...]:
        """Bring the extension to ``old_size`` (from the stored entries), apply the batch."""
        ext = self._extension
        if ext is None:
            return ()
        try:
            if ext.size > old_size:
                ext.rebuild(self._tree.entries(0, old_size, old_size))
            else:
                # Only what other processes appended since this one's last batch: replicas
                # taking turns would otherwise replay the whole log at every batch.
                ext.extend_to(old_size, lambda start, end: self._tree.entries(start, end, old_size))
            ext.extend(entries)
        except BaseException:
            ext.rebuild(())  # size 0: rebuilt from the log before the next batch
            raise
        return ext.lines()

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
        check_head(self._storage, self._verifier, self._origin, size, note_bytes)
        self._edge = load_edge(self._storage, size)
        if self._publisher is None:
            self._needs_recovery = False
            return
        ahead = catch_up(
            self._storage, self._publisher, self._verifier, self._origin, (size, note_bytes)
        )
        if ahead is not None:
            raise LogCorruptedError(
                f"{self.public_dir / 'checkpoint'}: published size {ahead} is ahead of the "
                f"database size {size}; the database lost acknowledged entries"
            )
        self._needs_recovery = False

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
        head = self._storage.head()
        ahead = catch_up(self._storage, publisher, self._verifier, self._origin, head)
        if ahead is not None:
            raise LogInputError(f"{target}: holds a newer checkpoint ({ahead}) than the log")
        return head[0]

    # -- reading and proving (a LogReader; see StoredTree) ---------------------------------

    def read_public(self, path: str) -> bytes:
        """The bytes of tlog-tiles ``path`` (checkpoint, tile or bundle), from the database.

        Any tile a checkpoint up to the current one names is served, partial
        ones cut from the stored latest version; a path past the tree is
        :class:`~clearance.log.tiles.TileNotFoundError`.
        """
        return self._tree.read_public(path)

    def entry(self, index: int) -> bytes:
        return self._tree.entry(index)

    def entries(self, start: int, end: int, size: int | None = None) -> Iterator[bytes]:
        """Entries ``[start, end)`` of the tree of ``size`` leaves (default: the current
        size), streamed one entry bundle (256 entries) at a time: a :class:`LogReader`."""
        return self._tree.entries(start, end, size)

    def root(self, size: int | None = None) -> bytes:
        return self._tree.root(size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return self._tree.inclusion_proof(index, size)

    def inclusion_proofs(self, indices: Sequence[int], size: int) -> list[list[bytes]]:
        """The inclusion proof of each of ``indices`` in the tree of ``size`` (computed together)."""
        return self._tree.inclusion_proofs(indices, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return self._tree.consistency_proof(old_size, new_size)

    def checkpoint(self) -> Note:
        """The latest signed checkpoint, with every cosignature added so far."""
        return self._tree.checkpoint()

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
            checkpoint = check_head(database, self._verifier, self._origin, *database.head())
            check_storage(database, checkpoint, progress)
            if self._publisher is not None:
                check_public(
                    self._publisher, self.public_dir, self._verifier, self._origin, checkpoint
                )
        finally:
            if database is not self._storage:
                database.close()

"""Reading a log's durable state: entries, tiles, roots and proofs.

:class:`StoredTree` is the read side of :class:`~clearance.log.store.TransparencyLog`:
it answers from a :class:`~clearance.log.storage.LogStorage` alone, with a
small cache of recent tiles that the writer fills with what each batch
wrote, so the receipts of a batch need no database read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence

from clearance.keys import Note, Verifier
from clearance.log import merkle
from clearance.log._edge import RightEdge
from clearance.log._tilemath import (
    TILE_WIDTH,
    TileTreeCache,
    hash_reader,
    level_count,
    tile_levels,
    tile_width,
)
from clearance.log.checkpoint import Checkpoint, open_checkpoint
from clearance.log.errors import CheckpointFormatError, CheckpointSignatureError, LogCorruptedError
from clearance.log.merkle import HASH_SIZE, ProofRequestError
from clearance.log.storage import LogStorage
from clearance.log.tiles import TileNotFoundError, decode_bundle, parse_tile_path


def check_head(
    storage: LogStorage, verifier: Verifier, origin: str, size: int, note: bytes
) -> Checkpoint:
    """The stored head checkpoint, checked: signed by the log for ``origin``, of ``size``."""
    try:
        checkpoint, _ = open_checkpoint(note, verifier, origin)
    except (CheckpointFormatError, CheckpointSignatureError) as exc:
        raise LogCorruptedError(f"{storage.location}: stored checkpoint: {exc}") from None
    if checkpoint.size != size:
        raise LogCorruptedError(
            f"{storage.location}: stored checkpoint is for size {checkpoint.size}, "
            f"the head says {size}"
        )
    return checkpoint


def load_edge(storage: LogStorage, size: int) -> RightEdge:
    """The right edge of the stored tree of ``size`` leaves, checked against the signed root."""
    tiles = []
    for level in range(tile_levels(size)):
        count = level_count(size, level) % TILE_WIDTH
        data = b""
        if count:
            stored = storage.tile(level, level_count(size, level) // TILE_WIDTH)
            if stored is None or len(stored) != count * HASH_SIZE:
                raise LogCorruptedError(
                    f"{storage.location}: tile {level}/"
                    f"{level_count(size, level) // TILE_WIDTH} is missing or has the wrong size"
                )
            data = stored
        tiles.append(data)
    bundle = b""
    if size % TILE_WIDTH:
        stored = storage.bundle(size // TILE_WIDTH)
        if stored is None:
            raise LogCorruptedError(
                f"{storage.location}: entry bundle {size // TILE_WIDTH} is missing"
            )
        decode_bundle(stored, size % TILE_WIDTH)
        bundle = stored
    edge = RightEdge(size, tiles, bundle)
    checkpoint = Checkpoint.from_note(Note.from_bytes(storage.head()[1]))
    if edge.root() != checkpoint.root_hash:
        raise LogCorruptedError(
            f"{storage.location}: stored tiles do not hash to the signed root of size {size}"
        )
    return edge


#: How many recent tiles to keep in memory (the right edge and its neighbours).
_TILE_CACHE_SIZE = 256


class StoredTree:
    """Entries, tiles and proofs of the log kept in ``storage``; safe across threads."""

    def __init__(self, storage: LogStorage) -> None:
        self._storage = storage
        self._cache_lock = threading.Lock()
        #: The longest version seen of recent tiles: a tile only grows, and any version at
        #: least ``width`` hashes long has the right first ``width`` hashes.
        self._tile_cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        #: A tree size known to exist (sizes only grow): proofs up to it need no head read.
        self._known_size = 0
        self._trees = TileTreeCache()

    @property
    def size(self) -> int:
        size = self._storage.head()[0]
        self.note_size(size)
        return size

    def note_size(self, size: int) -> None:
        """Record that a tree of ``size`` leaves exists."""
        self._known_size = max(self._known_size, size)

    def checkpoint(self) -> Note:
        """The latest signed checkpoint, with every cosignature added so far."""
        return Note.from_bytes(self._storage.head()[1])

    # -- tiles ----------------------------------------------------------------------------

    def remember_tile(self, level: int, index: int, data: bytes) -> None:
        key = (level, index)
        with self._cache_lock:
            cached = self._tile_cache.get(key)
            if cached is None or len(cached) < len(data):
                self._tile_cache[key] = data
            self._tile_cache.move_to_end(key)
            while len(self._tile_cache) > _TILE_CACHE_SIZE:
                self._tile_cache.popitem(last=False)

    def fetch_tile(self, level: int, index: int, width: int) -> bytes:
        cached = self._tile_cache.get((level, index))
        if cached is not None and len(cached) >= width * HASH_SIZE:
            return cached[: width * HASH_SIZE]
        data = self._storage.tile(level, index)
        if data is None or len(data) < width * HASH_SIZE:
            raise LogCorruptedError(
                f"{self._storage.location}: tile {level}/{index} is missing or short"
            )
        self.remember_tile(level, index, data)
        return data[: width * HASH_SIZE]

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
            bundle = self._bundle(index)
            if have == width:
                return bundle
            end = 0
            for _ in range(width):
                end += 2 + int.from_bytes(bundle[end : end + 2], "big")
            return bundle[:end]
        return self.fetch_tile(level, index, width)

    # -- entries and proofs ---------------------------------------------------------------

    def size_or_current(self, size: int | None) -> int:
        if size is not None and 0 <= size <= self._known_size:
            return size
        current = self.size
        if size is None:
            return current
        if not 0 <= size <= current:
            raise ProofRequestError(f"tree size {size} is past the log size {current}")
        return size

    def _bundle(self, index: int) -> bytes:
        data = self._storage.bundle(index)
        if data is None:
            raise LogCorruptedError(f"{self._storage.location}: bundle {index} is missing")
        return data

    def entry(self, index: int) -> bytes:
        size = self.size
        if not 0 <= index < size:
            raise ProofRequestError(f"no entry {index} in a log of size {size}")
        return decode_bundle(self._bundle(index // TILE_WIDTH), index % TILE_WIDTH + 1)[-1]

    def entries(self, start: int, end: int, size: int | None = None) -> Iterator[bytes]:
        """Entries ``[start, end)`` of the tree of ``size`` leaves (default: the current
        size), streamed one entry bundle (256 entries) at a time."""
        size = self.size_or_current(size)
        if not 0 <= start <= end <= size:
            raise ProofRequestError(f"entries [{start}, {end}) are not in a tree of size {size}")
        position = start
        while position < end:
            bundle_index, offset = divmod(position, TILE_WIDTH)
            stop = min(end - bundle_index * TILE_WIDTH, TILE_WIDTH)
            yield from decode_bundle(self._bundle(bundle_index), stop)[offset:stop]
            position = bundle_index * TILE_WIDTH + stop

    def root(self, size: int | None = None) -> bytes:
        if size is None:
            return Checkpoint.from_note(self.checkpoint()).root_hash
        size = self.size_or_current(size)
        return merkle.tree_root(size, hash_reader(size, self.fetch_tile, self._trees))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size_or_current(size)
        return merkle.inclusion_proof(index, size, hash_reader(size, self.fetch_tile, self._trees))

    def inclusion_proofs(self, indices: Sequence[int], size: int) -> list[list[bytes]]:
        size = self.size_or_current(size)
        reader = hash_reader(size, self.fetch_tile, self._trees)
        return merkle.inclusion_proofs(indices, size, reader)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new_size = self.size_or_current(new_size)
        if not 0 <= old_size <= new_size:
            raise ProofRequestError(
                f"no consistency proof from size {old_size} to size {new_size} "
                "(a tree size cannot go backwards)"
            )
        return merkle.consistency_proof(
            old_size, new_size, hash_reader(new_size, self.fetch_tile, self._trees)
        )

"""Tile arithmetic shared by the store and the tile client (C2SP tlog-tiles, height 8).

A tile at level ``t`` and index ``j`` holds the hashes of tree level ``8t``
numbered ``[256j, 256j + width)``.  Any complete, aligned subtree at tree
level ``L`` is therefore inside exactly one tile of level ``L // 8`` and its
hash is computed from a run of that tile's hashes.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable

from clearance.log.merkle import HASH_SIZE, HashReader, ProofRequestError

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT

#: Returns the first ``width`` hashes (concatenated) of tile (level, index).
TileFetcher = Callable[[int, int, int], bytes]

_sha256 = hashlib.sha256


def hashes_root(data: bytes) -> bytes:
    """The Merkle root over a power-of-two run of concatenated hashes (a tile or part)."""
    count = len(data) // HASH_SIZE
    if count == 1:
        return data
    # Siblings sit side by side, so each parent is SHA-256(0x01 || 64 adjacent bytes).
    while count > 1:
        data = b"".join(
            [_sha256(b"\x01" + data[k : k + 64]).digest() for k in range(0, len(data), 64)]
        )
        count >>= 1
    return data


def level_count(size: int, level: int) -> int:
    """How many hashes tree level ``8 * level`` has in a tree of ``size`` leaves."""
    return size >> (TILE_HEIGHT * level)


def tile_width(size: int, level: int, index: int) -> int:
    """The width of tile (level, index) in a tree of ``size`` leaves (0 if absent)."""
    return max(0, min(TILE_WIDTH, level_count(size, level) - index * TILE_WIDTH))


def tile_levels(size: int) -> int:
    """The number of tile levels that hold at least one hash."""
    levels = 0
    while level_count(size, levels) > 0:
        levels += 1
    return levels


def tiles_touched(old_size: int, new_size: int) -> list[tuple[int, int, int]]:
    """The tiles (level, index, width) that differ between the two tree sizes."""
    touched = []
    for level in range(tile_levels(new_size)):
        old, new = level_count(old_size, level), level_count(new_size, level)
        if new == old:
            continue
        for index in range(old // TILE_WIDTH, (new - 1) // TILE_WIDTH + 1):
            touched.append((level, index, tile_width(new_size, level, index)))
    return touched


def tile_tree(data: bytes) -> list[bytes]:
    """Every level of the Merkle tree inside a tile: ``[256 hashes, 128, ..., 1]`` for a
    full one; for a partial one of width ``w``, level ``k`` holds the ``w >> k`` complete
    subtrees (a last, incomplete pair is not hashed)."""
    levels = [data]
    while len(data) >= 2 * HASH_SIZE:
        end = len(data) // 64 * 64
        data = b"".join([_sha256(b"\x01" + data[k : k + 64]).digest() for k in range(0, end, 64)])
        levels.append(data)
    return levels


class TileTreeCache:
    """The inner trees of recently used tiles, full or partial.

    The first ``width`` hashes of a tile never change once written, so a tree is
    kept by (level, index, width): the receipts of one batch of submissions all
    prove against the same partial right-edge tile, which is hashed once for them.
    """

    def __init__(self, limit: int = 256) -> None:
        self._limit = limit
        self._trees: OrderedDict[tuple[int, int, int], list[bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, level: int, index: int, data: bytes) -> list[bytes]:
        key = (level, index, len(data) // HASH_SIZE)
        with self._lock:
            tree = self._trees.get(key)
            # The tree is reused only for the very same hashes: tiles a reader fetched and
            # then refused (forged) must not be answered from the cache afterwards.
            if tree is not None and tree[0] == data:
                self._trees.move_to_end(key)
                return tree
        tree = tile_tree(data)
        with self._lock:
            self._trees[key] = tree
            while len(self._trees) > self._limit:
                self._trees.popitem(last=False)
        return tree


def hash_reader(size: int, fetch: TileFetcher, trees: TileTreeCache | None = None) -> HashReader:
    """A :data:`HashReader` for the tree of ``size`` leaves that reads tiles via ``fetch``.

    With ``trees``, the inner trees of tiles (full, or partial at one width) are
    computed once and reused, so a proof costs a few lookups instead of hundreds
    of hashes.
    """

    def read(level: int, index: int) -> bytes:
        tile_level, sub = divmod(level, TILE_HEIGHT)
        start, count = index << sub, 1 << sub
        if start + count > level_count(size, tile_level):
            raise ProofRequestError(
                f"subtree ({level}, {index}) is not complete in a tree of size {size}"
            )
        tile_index, offset = divmod(start, TILE_WIDTH)
        width = tile_width(size, tile_level, tile_index)
        data = fetch(tile_level, tile_index, width)
        if trees is not None:
            node = offset >> sub
            return trees.get(tile_level, tile_index, data)[sub][
                node * HASH_SIZE : (node + 1) * HASH_SIZE
            ]
        run = data[offset * HASH_SIZE : (offset + count) * HASH_SIZE]
        return hashes_root(run)

    return read

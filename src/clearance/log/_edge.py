"""The right edge of the tree: what an append needs in memory, bounded by log size.

Only the rightmost (partial) tile at each level and the entries of the
rightmost bundle are kept; appending a batch produces the tiles and bundles
that changed, and the new root is computed from the edge alone (every
right-edge subtree lies inside the partial tile of its level).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from clearance.log import merkle
from clearance.log._tilemath import TILE_WIDTH, hash_reader, hashes_root
from clearance.log.merkle import HASH_SIZE

_TILE_BYTES = TILE_WIDTH * HASH_SIZE
_pack_length = struct.Struct(">H").pack


@dataclass(frozen=True)
class TileWrite:
    """A hash tile (level >= 0) or entry bundle (level -1) with its current contents.

    ``start``: of a bundle, how many of its bytes were stored before this write (they
    are ``data[:start]``, unchanged); a backend may store ``data[start:]`` alone.
    """

    level: int
    index: int
    width: int
    data: bytes
    start: int = 0

    @property
    def is_bundle(self) -> bool:
        return self.level < 0


BUNDLE_LEVEL = -1


class RightEdge:
    """The partial tile of each level and the partial entry bundle of a tree."""

    def __init__(self, size: int, tiles: list[bytes], bundle: bytes) -> None:
        self.size = size
        # tiles[t] holds the hashes of the partial tile at level t ((size >> 8t) % 256 of them).
        self._tiles = [bytearray(t) for t in tiles]
        self._bundle = bytearray(bundle)

    def partial_tiles(self) -> list[bytes]:
        return [bytes(t) for t in self._tiles]

    def append(self, entries: list[bytes]) -> list[TileWrite]:
        """Add ``entries``; return every tile and bundle that changed, full ones first."""
        sha256 = hashlib.sha256
        writes: list[TileWrite] = []
        leaf_hashes = [sha256(b"\x00" + e).digest() for e in entries]
        # Entry bundles follow the level-0 tiles exactly.
        pos = 0
        count = self.size % TILE_WIDTH
        bundle_index = self.size // TILE_WIDTH
        start = len(self._bundle)  # what the stored partial bundle holds already
        while pos < len(entries):
            take = entries[pos : pos + TILE_WIDTH - count]
            self._bundle += b"".join([_pack_length(len(e)) + e for e in take])
            count += len(take)
            pos += len(take)
            if count == TILE_WIDTH:
                writes.append(
                    TileWrite(BUNDLE_LEVEL, bundle_index, TILE_WIDTH, bytes(self._bundle), start)
                )
                self._bundle = bytearray()
                start = count = 0
                bundle_index += 1
        if count and entries:
            writes.append(
                TileWrite(BUNDLE_LEVEL, bundle_index, count, bytes(self._bundle), start)
            )
        self._push(0, self.size, leaf_hashes, writes)
        self.size += len(entries)
        return writes

    def _push(self, level: int, before: int, hashes: list[bytes], writes: list[TileWrite]) -> None:
        """Add ``hashes`` to level ``level`` which held ``before`` hashes; cascade upwards."""
        if not hashes:
            return
        while len(self._tiles) <= level:
            self._tiles.append(bytearray())
        tile = self._tiles[level]
        count = before % TILE_WIDTH
        index = before // TILE_WIDTH
        completed: list[bytes] = []
        pos = 0
        while pos < len(hashes):
            take = hashes[pos : pos + TILE_WIDTH - count]
            tile += b"".join(take)
            count += len(take)
            pos += len(take)
            if count == TILE_WIDTH:
                data = bytes(tile)
                writes.append(TileWrite(level, index, TILE_WIDTH, data))
                completed.append(hashes_root(data))
                tile.clear()
                count = 0
                index += 1
        if count:
            writes.append(TileWrite(level, index, count, bytes(tile)))
        self._push(level + 1, before // TILE_WIDTH, completed, writes)

    def root(self) -> bytes:
        """The tree root, from the partial tiles alone."""

        def from_edge(level: int, index: int, width: int) -> bytes:
            tile = self._tiles[level]
            if len(tile) != width * HASH_SIZE:  # pragma: no cover - an internal invariant
                raise AssertionError(f"edge tile {level}/{index} has the wrong width")
            return bytes(tile)

        return merkle.tree_root(self.size, hash_reader(self.size, from_edge))

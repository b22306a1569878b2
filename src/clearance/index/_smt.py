"""A sparse Merkle map over SHA-256 key paths, with single-leaf subtrees lifted.

Each record sits at the path ``SHA-256(key)`` (256 bits, most significant
first).  Hashes, SHA-256 with one domain byte:

* leaf:  ``H(0x00 || SHA-256(key) || SHA-256(value))``
* node:  ``H(0x01 || left || right)``
* an empty subtree is 32 zero bytes; a subtree holding one record is that
  record's leaf hash (as in Diem's Jellyfish tree), so proofs are about
  log2(n) hashes long instead of 256.

A proof of a record is the list of sibling hashes from the root down to the
record's leaf.  Because the position is a function of the key and leaf and
node hashes are domain-separated, one root commits to at most one value per
key: two proofs of different values for one key under one root would be a
SHA-256 collision.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
EMPTY = bytes(HASH_SIZE)
MAX_DEPTH = 256


def key_path(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def leaf_hash(path: bytes, value: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + path + hashlib.sha256(value).digest()).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _bit(path: bytes, depth: int) -> int:
    return (path[depth >> 3] >> (7 - (depth & 7))) & 1


class SparseMerkleMap:
    """Leaf hashes by path, kept sorted; subtree hashes are cached and only the paths of
    changed records are recomputed (a record update costs about log2(n) hashes)."""

    def __init__(self) -> None:
        self._leaves: dict[int, bytes] = {}
        self._paths: list[int] = []  # sorted
        self._cache: dict[tuple[int, int], bytes] = {}
        #: The deepest level a subtree hash was cached at: nothing deeper needs dropping.
        self._deepest = 0

    def __len__(self) -> int:
        return len(self._leaves)

    def put(self, key: str, value: bytes) -> None:
        path_bytes = key_path(key)
        path = int.from_bytes(path_bytes, "big")
        leaf = leaf_hash(path_bytes, value)
        old = self._leaves.get(path)
        if old == leaf:
            return
        if old is None:
            bisect.insort(self._paths, path)
        self._leaves[path] = leaf
        cache = self._cache
        for depth in range(self._deepest + 1):  # every cached subtree on the path changed
            cache.pop((depth, path >> (MAX_DEPTH - depth)), None)

    def _node(self, lo: int, hi: int, depth: int) -> bytes:
        """Hash of the subtree at ``depth`` holding ``self._paths[lo:hi]``."""
        if lo == hi:
            return EMPTY
        paths = self._paths
        if hi - lo == 1:
            return self._leaves[paths[lo]]
        prefix = paths[lo] >> (MAX_DEPTH - depth)
        cached = self._cache.get((depth, prefix))
        if cached is not None:
            return cached
        split = self._split(lo, hi, depth, prefix)
        digest = node_hash(self._node(lo, split, depth + 1), self._node(split, hi, depth + 1))
        self._cache[(depth, prefix)] = digest
        self._deepest = max(self._deepest, depth)
        return digest

    def _split(self, lo: int, hi: int, depth: int, prefix: int) -> int:
        """First position in ``[lo, hi)`` whose path has bit ``depth`` set."""
        boundary = ((prefix << 1) | 1) << (MAX_DEPTH - depth - 1)
        return bisect.bisect_left(self._paths, boundary, lo, hi)

    def root(self) -> bytes:
        return self._node(0, len(self._paths), 0)

    def proof(self, key: str) -> list[bytes]:
        """Sibling hashes from the root down to ``key``'s leaf (``KeyError`` if absent)."""
        path = int.from_bytes(key_path(key), "big")
        if path not in self._leaves:
            raise KeyError(key)
        siblings: list[bytes] = []
        lo, hi, depth = 0, len(self._paths), 0
        while hi - lo > 1:
            split = self._split(lo, hi, depth, path >> (MAX_DEPTH - depth))
            if (path >> (MAX_DEPTH - depth - 1)) & 1:
                siblings.append(self._node(lo, split, depth + 1))
                lo = split
            else:
                siblings.append(self._node(split, hi, depth + 1))
                hi = split
            depth += 1
        return siblings


def root_from_proof(key: str, value: bytes, siblings: Sequence[bytes]) -> bytes:
    """The root that ``siblings`` lead to from the record ``key`` = ``value``."""
    if len(siblings) > MAX_DEPTH:
        raise ValueError(f"an index proof has at most {MAX_DEPTH} hashes")
    path = key_path(key)
    node = leaf_hash(path, value)
    for depth in range(len(siblings) - 1, -1, -1):
        sibling = siblings[depth]
        if len(sibling) != HASH_SIZE:
            raise ValueError("an index proof hash is not 32 bytes")
        node = node_hash(sibling, node) if _bit(path, depth) else node_hash(node, sibling)
    return node

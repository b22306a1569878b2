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


def _subtree(leaves: Sequence[tuple[bytes, bytes]], depth: int) -> bytes:
    """Root of the subtree at ``depth`` holding ``leaves`` (sorted by path)."""
    if not leaves:
        return EMPTY
    if len(leaves) == 1:
        return leaves[0][1]
    split = _split(leaves, depth)
    return node_hash(_subtree(leaves[:split], depth + 1), _subtree(leaves[split:], depth + 1))


def _split(leaves: Sequence[tuple[bytes, bytes]], depth: int) -> int:
    """First position whose path has bit ``depth`` set (the leaves are sorted by path)."""
    lo, hi = 0, len(leaves)
    while lo < hi:
        mid = (lo + hi) // 2
        if _bit(leaves[mid][0], depth):
            hi = mid
        else:
            lo = mid + 1
    return lo


class SparseMerkleMap:
    """Leaf hashes by path; the root and proofs are computed from them on demand."""

    def __init__(self) -> None:
        self._leaves: dict[bytes, bytes] = {}
        self._sorted: list[tuple[bytes, bytes]] | None = []
        self._root: bytes | None = EMPTY

    def __len__(self) -> int:
        return len(self._leaves)

    def put(self, key: str, value: bytes) -> None:
        path = key_path(key)
        leaf = leaf_hash(path, value)
        if self._leaves.get(path) != leaf:
            self._leaves[path] = leaf
            self._sorted = None
            self._root = None

    def _items(self) -> list[tuple[bytes, bytes]]:
        if self._sorted is None:
            self._sorted = sorted(self._leaves.items())
        return self._sorted

    def root(self) -> bytes:
        if self._root is None:
            self._root = _subtree(self._items(), 0)
        return self._root

    def proof(self, key: str) -> list[bytes]:
        """Sibling hashes from the root down to ``key``'s leaf (``KeyError`` if absent)."""
        path = key_path(key)
        if path not in self._leaves:
            raise KeyError(key)
        leaves = self._items()
        siblings: list[bytes] = []
        depth = 0
        while len(leaves) > 1:
            split = _split(leaves, depth)
            if _bit(path, depth):
                siblings.append(_subtree(leaves[:split], depth + 1))
                leaves = leaves[split:]
            else:
                siblings.append(_subtree(leaves[split:], depth + 1))
                leaves = leaves[:split]
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

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


class _Leaf:
    __slots__ = ("hash", "path")

    def __init__(self, path: int, digest: bytes) -> None:
        self.path = path
        self.hash = digest


class _Branch:
    """Two subtrees whose paths first differ at bit ``depth`` (a Patricia-trie node).

    ``own``: the hash of the subtree at ``depth`` (``None`` until computed after a change
    below).  ``up``: the hash of the same leaves as a subtree at the shallower depth
    ``up_depth`` its parent needs, where every level in between has one side empty."""

    __slots__ = ("depth", "left", "own", "path", "right", "up", "up_depth")

    def __init__(self, depth: int, path: int, left: _Node, right: _Node) -> None:
        self.depth = depth
        self.path = path  # the path of any leaf below: the bits above ``depth`` are theirs
        self.left = left
        self.right = right
        self.own: bytes | None = None
        self.up: bytes | None = None
        self.up_depth = -1


_Node = _Leaf | _Branch


def _first_difference(a: int, b: int) -> int:
    """The first bit (from the most significant) where two paths differ; 256 if none."""
    return MAX_DEPTH - (a ^ b).bit_length()


class SparseMerkleMap:
    """The map as a binary Patricia trie: a branch only where paths part, each caching its
    hash.  A change re-hashes only the branches above it (about log2(n) of them) and costs
    no work proportional to the number of records."""

    def __init__(self) -> None:
        self._leaves: dict[int, _Leaf] = {}
        self._root: _Node | None = None

    def __len__(self) -> int:
        return len(self._leaves)

    def put(self, key: str, value: bytes) -> None:
        path_bytes = key_path(key)
        path = int.from_bytes(path_bytes, "big")
        digest = leaf_hash(path_bytes, value)
        old = self._leaves.get(path)
        if old is not None:
            if old.hash == digest:
                return
            old.hash = digest
            self._dirty_above(path)
            return
        leaf = self._leaves[path] = _Leaf(path, digest)
        parent: _Branch | None = None
        node = self._root
        while isinstance(node, _Branch) and _first_difference(path, node.path) >= node.depth:
            node.own = node.up = None  # a leaf is added below
            parent = node
            node = node.right if (path >> (MAX_DEPTH - 1 - node.depth)) & 1 else node.left
        if node is None:
            self._root = leaf
            return
        depth = _first_difference(path, node.path)
        if (path >> (MAX_DEPTH - 1 - depth)) & 1:
            branch = _Branch(depth, path, node, leaf)
        else:
            branch = _Branch(depth, path, leaf, node)
        if parent is None:
            self._root = branch
        elif parent.right is node:
            parent.right = branch
        else:
            parent.left = branch

    def _dirty_above(self, path: int) -> None:
        """Forget the hashes of the branches above the leaf at ``path``."""
        node = self._root
        while isinstance(node, _Branch):
            node.own = node.up = None
            node = node.right if (path >> (MAX_DEPTH - 1 - node.depth)) & 1 else node.left

    def _hash(self, node: _Node | None, depth: int) -> bytes:
        """The hash of the subtree at ``depth`` holding exactly ``node``'s leaves."""
        if node is None:
            return EMPTY
        if isinstance(node, _Leaf):
            return node.hash  # a single record is lifted to any depth
        own = node.own
        if own is None:
            below = node.depth + 1
            own = node.own = node_hash(self._hash(node.left, below), self._hash(node.right, below))
        if depth == node.depth:
            return own
        if node.up is not None and node.up_depth == depth:
            return node.up
        # The levels between: every leaf on one side, the other side empty.
        digest, path = own, node.path
        for level in range(node.depth - 1, depth - 1, -1):
            if (path >> (MAX_DEPTH - 1 - level)) & 1:
                digest = node_hash(EMPTY, digest)
            else:
                digest = node_hash(digest, EMPTY)
        node.up, node.up_depth = digest, depth
        return digest

    def root(self) -> bytes:
        return self._hash(self._root, 0)

    def proof(self, key: str) -> list[bytes]:
        """Sibling hashes from the root down to ``key``'s leaf (``KeyError`` if absent)."""
        path = int.from_bytes(key_path(key), "big")
        if path not in self._leaves:
            raise KeyError(key)
        siblings: list[bytes] = []
        node, depth = self._root, 0
        while isinstance(node, _Branch):
            siblings += [EMPTY] * (node.depth - depth)  # levels where the other side is empty
            depth = node.depth + 1
            branch = node
            if (path >> (MAX_DEPTH - depth)) & 1:
                node, other = branch.right, branch.left
            else:
                node, other = branch.left, branch.right
            siblings.append(self._hash(other, depth))
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

"""RFC 9162 (RFC 6962) Merkle tree hashing, proof generation and proof verification.

Verification functions need nothing but their arguments, so an endpoint
client can use this module alone.  Generation reads *stored* hashes: the
hash of every complete, aligned subtree (``level``, ``index``) covers
leaves ``[index << level, (index + 1) << level)``, exactly the hashes that
C2SP tlog-tiles publish.  Any other subtree is computed from those.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from clearance.errors import BadInput, Refused

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: Reads the stored hash of the complete subtree at (level, index).
HashReader = Callable[[int, int], bytes]


class ProofError(Refused):
    """A Merkle inclusion or consistency proof does not verify."""


class ProofRequestError(BadInput):
    """A proof was asked for indices or sizes that make no sense (e.g. past the tree size)."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Iterable[bytes]) -> bytes:
    """The Merkle tree hash of a whole list of leaf hashes (read once, in order: memory
    grows with the logarithm of their number, not with it)."""
    # A stack of complete subtrees, merged as in a binary counter.
    stack: list[tuple[int, bytes]] = []
    for h in hashes:
        size, value = 1, h
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            size, value = left_size + size, node_hash(left, value)
        stack.append((size, value))
    if not stack:
        return EMPTY_ROOT
    _, root = stack.pop()
    while stack:
        _, left = stack.pop()
        root = node_hash(left, root)
    return root


def subtree_hash(
    lo: int, hi: int, read: HashReader, known: dict[tuple[int, int], bytes] | None = None
) -> bytes:
    """The hash of leaves ``[lo, hi)`` where ``lo`` is aligned to the subtree's split.

    ``known``: subtree hashes computed before in the same tree, and where this call
    keeps the ones it computes (proofs computed together share them)."""
    if known is not None and (lo, hi) in known:
        return known[(lo, hi)]
    n = hi - lo
    if n <= 0:
        raise ProofRequestError(f"empty subtree [{lo}, {hi})")
    if n & (n - 1) == 0 and lo % n == 0:
        level = n.bit_length() - 1
        digest = read(level, lo >> level)
    else:
        k = _split(n)
        digest = node_hash(
            subtree_hash(lo, lo + k, read, known), subtree_hash(lo + k, hi, read, known)
        )
    if known is not None:
        known[(lo, hi)] = digest
    return digest


def tree_root(size: int, read: HashReader) -> bytes:
    return EMPTY_ROOT if size == 0 else subtree_hash(0, size, read)


def inclusion_proof(index: int, size: int, read: HashReader) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 9162 2.1.3.1)."""
    return _audit_path(index, size, lambda lo, hi: subtree_hash(lo, hi, read))


def inclusion_proofs(indices: Sequence[int], size: int, read: HashReader) -> list[list[bytes]]:
    """:func:`inclusion_proof` of each of ``indices`` in one tree, the subtree hashes their
    paths share computed once (a batch's receipts: neighbouring leaves share all but the
    lowest few, and the right edge's incomplete subtrees are hashed from their tiles)."""
    known: dict[tuple[int, int], bytes] = {}
    return [
        _audit_path(index, size, lambda lo, hi: subtree_hash(lo, hi, read, known))
        for index in indices
    ]


def _audit_path(index: int, size: int, subtree: Callable[[int, int], bytes]) -> list[bytes]:
    if size <= 0 or not 0 <= index < size:
        raise ProofRequestError(f"no leaf {index} in a tree of size {size}")
    proof: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo = lo + k
    proof.reverse()
    return proof


def consistency_proof(size1: int, size2: int, read: HashReader) -> list[bytes]:
    """The proof that the tree of ``size1`` leaves is a prefix of ``size2`` (RFC 9162 2.1.4.1)."""
    if not 0 <= size1 <= size2:
        raise ProofRequestError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == 0 or size1 == size2:
        return []
    proof: list[bytes] = []
    lo, hi, m, complete = 0, size2, size1, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                proof.append(subtree_hash(lo, hi, read))
            break
        k = _split(n)
        if m <= k:
            proof.append(subtree_hash(lo + k, hi, read))
            hi = lo + k
        else:
            proof.append(subtree_hash(lo, lo + k, read))
            lo, m, complete = lo + k, m - k, False
    proof.reverse()
    return proof


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Recompute the root from a leaf hash and its audit path (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    if len(leaf) != HASH_SIZE:
        raise ProofError("leaf hash has the wrong length")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != HASH_SIZE:
            raise ProofError("inclusion proof holds a hash of the wrong length")
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`ProofError` unless ``leaf`` is at ``index`` in the tree with ``root``."""
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise ProofError(
            f"inclusion proof for leaf {index} does not lead to the root of size {size}"
        )


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`ProofError` unless tree ``size1`` is a prefix of tree ``size2``."""
    if size1 < 0 or size2 < 0:
        raise ProofError("tree sizes cannot be negative")
    if size1 > size2:
        raise ProofError(f"tree size went backwards, from {size1} to {size2}")
    if size1 == 0:
        # As in transparency-dev/merkle: every tree extends the empty one, so a
        # caller asking this has a bug (it should not have stored size 0).
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if size1 == size2:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if root1 != root2:
            raise ProofError(f"two different roots for the same tree size {size1}")
        return
    if len(root1) != HASH_SIZE or len(root2) != HASH_SIZE:
        raise ProofError("root hash has the wrong length")
    if not proof:
        raise ProofError("consistency proof is empty")
    if any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("consistency proof holds a hash of the wrong length")
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != root1:
        raise ProofError(f"consistency proof does not lead to the old root of size {size1}")
    if sr != root2:
        raise ProofError(f"consistency proof does not lead to the new root of size {size2}")

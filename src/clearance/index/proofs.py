"""Checking index proofs: the root a checkpoint commits to, and a record under it.

What an endpoint runs, with nothing but the (already verified) checkpoint and
the proofs a bundle carries.
"""

from __future__ import annotations

import base64
import binascii

from clearance.index._smt import MAX_DEPTH, root_from_proof
from clearance.index.errors import IndexMissingError, IndexProofError
from clearance.index.state import INDEX_LINE_PREFIX, IndexProof
from clearance.log.checkpoint import Checkpoint

MAX_RECORD_BYTES = 1 << 20


def index_root_of(checkpoint: Checkpoint) -> bytes:
    """The index root in the checkpoint's extension line; exactly one such line."""
    lines = [x for x in checkpoint.extensions if x.startswith(INDEX_LINE_PREFIX)]
    if len(lines) != 1:
        raise IndexMissingError(
            f"checkpoint of size {checkpoint.size} carries {len(lines)} index root lines, "
            "expected one"
        )
    text = lines[0][len(INDEX_LINE_PREFIX) :]
    try:
        root = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise IndexProofError("the checkpoint's index root is not base64") from None
    if len(root) != 32 or base64.b64encode(root).decode() != text:
        raise IndexProofError("the checkpoint's index root is not a canonical 32-byte hash")
    return root


def verify_index_proof(proof: IndexProof, root: bytes) -> dict[str, object]:
    """The record ``proof`` carries, if its proof leads to ``root``; else IndexProofError."""
    if len(proof.value) > MAX_RECORD_BYTES:
        raise IndexProofError(f"index record {proof.key!r} is larger than {MAX_RECORD_BYTES}")
    if len(proof.siblings) > MAX_DEPTH:
        raise IndexProofError(f"index proof of {proof.key!r} is longer than {MAX_DEPTH} hashes")
    try:
        computed = root_from_proof(proof.key, proof.value, proof.siblings)
    except ValueError as exc:
        raise IndexProofError(f"index proof of {proof.key!r}: {exc}") from None
    if computed != root:
        raise IndexProofError(
            f"index record {proof.key!r} is not the one the checkpoint's index commits to"
        )
    return proof.record

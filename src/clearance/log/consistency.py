"""One rule for comparing checkpoints, and one for counting witness cosignatures.

The endpoint verifier, the witness and the auditor all ask "is this
checkpoint consistent with the last one I saw" and "how many trusted
witnesses cosigned it"; both answers are computed here, so that they cannot
drift apart (a forged cosignature, for instance, is refused by all three).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from clearance.keys import ALG_COSIGNATURE_V1, Note, SignatureError, Verifier, verify_cosignature
from clearance.log.checkpoint import Checkpoint
from clearance.log.errors import (
    CheckpointForkError,
    CheckpointRollbackError,
    ConsistencyUnprovenError,
    ForgedCosignatureError,
)
from clearance.log.merkle import EMPTY_ROOT, ProofError, verify_consistency

#: How a new checkpoint relates to the one seen before.
FIRST_SEEN = "first-seen"
SAME = "same"
PROVED = "proved"

ProofSource = Callable[[int, int], Sequence[bytes]]


def check_consistent(
    seen: Checkpoint | None,
    new: Checkpoint,
    proof: Sequence[bytes] | ProofSource | None,
) -> str:
    """How ``new`` relates to ``seen``: :data:`FIRST_SEEN`, :data:`SAME` or :data:`PROVED`.

    ``proof`` is the consistency proof from ``seen.size`` to ``new.size``, or a
    function ``(old, new) -> proof`` to fetch it, or ``None`` when there is none.
    Raises :class:`CheckpointRollbackError` for a smaller tree,
    :class:`CheckpointForkError` for another root at the same size or a proof
    that fails, :class:`ConsistencyUnprovenError` for a bigger tree without a proof.
    """
    if seen is None:
        return FIRST_SEEN
    if new.size < seen.size:
        raise CheckpointRollbackError(
            f"checkpoint of size {new.size} is older than the size {seen.size} already seen "
            "(replayed or frozen view)"
        )
    if new.size == seen.size:
        if new.root_hash != seen.root_hash:
            raise CheckpointForkError(f"two different roots for tree size {seen.size}")
        return SAME
    if seen.size == 0:
        if seen.root_hash != EMPTY_ROOT:
            raise CheckpointForkError(
                f"tree size 0 with root {seen.root_hash.hex()}, not the empty tree's root"
            )
        return PROVED  # the empty tree is a prefix of every tree
    if proof is None:
        raise ConsistencyUnprovenError(
            f"no consistency proof from size {seen.size} to size {new.size}"
        )
    hashes = proof(seen.size, new.size) if callable(proof) else proof
    try:
        verify_consistency(seen.size, new.size, seen.root_hash, new.root_hash, hashes)
    except ProofError as exc:
        raise CheckpointForkError(
            f"tree {seen.size} is not a prefix of tree {new.size}: {exc}"
        ) from None
    return PROVED


def witness_keys(witnesses: Sequence[Verifier]) -> tuple[Verifier, ...]:
    """The witnesses' keys in their ``cosignature/v1`` form."""
    return tuple(key for key, _ in _cosigning(tuple(witnesses)))


@functools.lru_cache(maxsize=64)
def _cosigning(witnesses: tuple[Verifier, ...]) -> tuple[tuple[Verifier, int], ...]:
    """Each witness key in its ``cosignature/v1`` form with its key id (computed once)."""
    keys = (k if k.alg == ALG_COSIGNATURE_V1 else k.as_alg(ALG_COSIGNATURE_V1) for k in witnesses)
    return tuple((k, k.key_id) for k in keys)


def cosignatures(note: Note, witnesses: Sequence[Verifier]) -> dict[str, int]:
    """Witness name -> timestamp, for each trusted witness with a valid cosignature.

    A cosignature line that names a trusted witness key (name and key id) but
    does not verify is a forgery: :class:`ForgedCosignatureError`, whatever
    else the note carries.  Lines by unknown keys are ignored.
    """
    found: dict[str, int] = {}
    for witness, witness_id in _cosigning(tuple(witnesses)):
        for sig in note.signatures:
            if sig.name != witness.name or sig.key_id != witness_id:
                continue
            try:
                found[witness.name] = verify_cosignature(note.text, sig, witness)
            except SignatureError as exc:
                raise ForgedCosignatureError(f"forged cosignature: {exc}") from None
    return found

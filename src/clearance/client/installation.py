"""The command's side of a verification: record it in the client state, keep evidence.

The verifier (:mod:`clearance.client.verifier`) is pure; these are the writes a
command makes once it has decided, in this order: every check (the verifier's and
its own, e.g. the withholding check) passed, then :func:`record_installation`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from clearance.attest.trust_root import TrustRoot
from clearance.client.bundle import Bundle
from clearance.client.errors import SplitViewError, StateError
from clearance.client.state import ClientState
from clearance.client.verifier import BundleVerifier, VerificationResult
from clearance.errors import BadInput
from clearance.keys import Note
from clearance.log.checkpoint import Checkpoint


def record_installation(state: ClientState, result: VerificationResult) -> None:
    """Apply a successful verification to ``state`` and save it (the last step of a check)."""
    if result.update is None:
        return
    seen_text = state.checkpoints.get(result.update.origin)
    seen_size = None
    if seen_text is not None:
        try:
            seen_size = Checkpoint.from_note(Note.from_bytes(seen_text.encode())).size
        except BadInput as exc:
            raise StateError(f"{state.directory}: stored checkpoint is unreadable: {exc}") from None
    state.apply(result.update, seen_size)
    state.save()


def keep_split_view(state: ClientState, exc: SplitViewError) -> SplitViewError:
    """Write the two checkpoints of a split view as evidence; the error to raise instead."""
    if exc.seen is None or exc.presented is None:
        return exc
    evidence = state.keep_split_view(exc.seen, exc.presented, *exc.sizes)
    message = str(exc).split("] ", 1)[-1]
    return SplitViewError(
        f"{message}; both checkpoints kept in {evidence}",
        str(evidence),
        exc.seen,
        exc.presented,
        exc.sizes,
    )


def verify_bundle(
    artifact_sha256: str,
    bundle: Bundle | bytes,
    trust_root: TrustRoot,
    state: ClientState | None = None,
    clock: Callable[[], float] = time.time,
) -> VerificationResult:
    """Verify, then (with ``state``) record the installation: the command's flow, in one call."""
    try:
        result = BundleVerifier(trust_root, clock).verify(artifact_sha256, bundle, state)
    except SplitViewError as exc:
        if state is None:
            raise
        raise keep_split_view(state, exc) from None
    if state is not None:
        record_installation(state, result)
    return result

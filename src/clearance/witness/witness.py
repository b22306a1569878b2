"""The witness itself: checks an add-checkpoint request and cosigns it (C2SP tlog-witness).

Pure protocol logic over :class:`WitnessState`; the HTTP server in
:mod:`clearance.witness.server` only maps the typed errors raised here to
status codes.  Check order follows the spec: parse (400), origin (404), log
signature (403), old size not above the new size (400), old size equal to
the cosigned size (409), same-size roots equal (409), consistency proof
(422); then persist, then cosign.

Only what the log itself signed is stored: the cosigned checkpoint and any
conflict evidence keep the checkpoint text with the signatures of the key
bound to its origin, never the requester's extra lines.  Evidence is kept
only for a split view (two checkpoints of one origin and size, both validly
signed by that origin's key, with different roots): it convicts the log by
itself.  A consistency proof that does not verify is answered 422 but is
not evidence -- anyone can send a wrong proof for an honest checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from clearance.keys import (
    ALG_COSIGNATURE_V1,
    Note,
    NoteFormatError,
    NoteSignature,
    SignatureError,
    Signer,
    Verifier,
    cosign,
    verify_note,
)
from clearance.log.checkpoint import Checkpoint
from clearance.log.consistency import check_consistent
from clearance.log.errors import (
    CheckpointForkError,
    CheckpointRollbackError,
    ConsistencyUnprovenError,
)
from clearance.log.merkle import EMPTY_ROOT
from clearance.witness._checkpoint import parse_checkpoint_text
from clearance.witness.errors import (
    InconsistentCheckpoint,
    MalformedRequest,
    SizeConflict,
    UnknownLog,
    UntrustedCheckpoint,
    WitnessConfigError,
)
from clearance.witness.protocol import AddCheckpointRequest
from clearance.witness.state import (
    CONFLICT_SPLIT_VIEW,
    Conflict,
    CosignedCheckpoint,
    WitnessState,
)


@dataclass(frozen=True)
class LogConfig:
    """A log the witness follows: its origin line and the keys that sign its checkpoints."""

    origin: str
    verifiers: tuple[Verifier, ...]


class Witness:
    """Cosigns checkpoints that extend, consistently, the last one it cosigned per origin."""

    def __init__(
        self,
        signer: Signer,
        logs: Sequence[LogConfig],
        state: WitnessState,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not logs:
            raise WitnessConfigError("a witness needs at least one log to follow")
        self._logs = {log.origin: log for log in logs}
        if len(self._logs) != len(logs):
            raise WitnessConfigError("the same log origin is configured twice")
        self._signer = signer
        self._state = state
        self._clock = clock

    @property
    def name(self) -> str:
        return self._signer.name

    @property
    def verifier(self) -> Verifier:
        """The ``cosignature/v1`` key that verifies this witness's cosignatures."""
        return self._signer.verifier.as_alg(ALG_COSIGNATURE_V1)

    @property
    def origins(self) -> tuple[str, ...]:
        return tuple(sorted(self._logs))

    @property
    def state(self) -> WitnessState:
        return self._state

    def add_checkpoint(self, body: bytes) -> tuple[NoteSignature, ...]:
        """Handle one add-checkpoint body; return the cosignature line(s) or raise."""
        request = AddCheckpointRequest.from_bytes(body)
        try:
            note = Note.from_bytes(request.checkpoint)
        except NoteFormatError as exc:
            raise MalformedRequest(f"checkpoint: {exc}") from None
        head = parse_checkpoint_text(note.text)
        log = self._logs.get(head.origin)
        if log is None:
            raise UnknownLog(f"unknown log origin {head.origin[:100]!r}")
        try:
            signers = verify_note(note, log.verifiers)
        except SignatureError as exc:
            raise UntrustedCheckpoint(f"checkpoint of {head.origin!r}: {exc}") from None
        # Keep only the signatures of the key(s) bound to this origin.
        note = Note(note.text, tuple(s for s in note.signatures if _signed_by(s, signers)))
        if request.old_size > head.size:
            raise MalformedRequest(
                f"old size {request.old_size} is above the checkpoint size {head.size}"
            )
        if request.old_size == 0 and request.proof:
            raise MalformedRequest("the consistency proof must be empty when the old size is 0")
        if head.size == 0 and head.root_hash != EMPTY_ROOT:
            raise InconsistentCheckpoint("an empty tree must have the empty root hash")
        now = int(self._clock())
        cosigned: CosignedCheckpoint | None = None
        try:
            with self._state.transaction() as txn:
                cosigned = txn.latest(head.origin)
                self._check_against(cosigned, request, head)
                signature = cosign(note.text, self._signer, now)
                stored = note.with_signatures([signature]).to_bytes()
                txn.put(CosignedCheckpoint(head.origin, head.size, head.root_hash, stored, now))
        except SizeConflict as exc:
            if exc.split_view and cosigned is not None:
                self._keep_evidence(CONFLICT_SPLIT_VIEW, str(exc), cosigned, note.to_bytes(), now)
            raise
        return (signature,)

    def _check_against(
        self,
        cosigned: CosignedCheckpoint | None,
        request: AddCheckpointRequest,
        head: Checkpoint,
    ) -> None:
        latest_size = cosigned.size if cosigned is not None else 0
        if request.old_size != latest_size:
            raise SizeConflict(
                f"old size {request.old_size} is not the cosigned size {latest_size}",
                latest_size,
            )
        if cosigned is None or cosigned.size == 0:
            return  # nothing to be consistent with yet (trust on first use)
        if head.size == cosigned.size and request.proof:
            raise InconsistentCheckpoint("a consistency proof between equal sizes must be empty")
        seen = Checkpoint(head.origin, cosigned.size, cosigned.root_hash)
        try:
            check_consistent(seen, head, request.proof)  # the verifier's and auditor's rule too
        except CheckpointForkError as exc:
            if head.size == cosigned.size:
                raise SizeConflict(
                    f"{head.origin!r} size {head.size} has another root hash than the one "
                    "cosigned before (split view)",
                    latest_size,
                    split_view=True,
                ) from None
            raise InconsistentCheckpoint(
                f"{head.origin!r} size {head.size} is not consistent with cosigned size "
                f"{cosigned.size}: {exc}"
            ) from None
        except (CheckpointRollbackError, ConsistencyUnprovenError) as exc:
            raise InconsistentCheckpoint(f"{head.origin!r} size {head.size}: {exc}") from None

    def _keep_evidence(
        self, kind: str, detail: str, cosigned: CosignedCheckpoint, offered: bytes, now: int
    ) -> None:
        self._state.record_conflict(
            Conflict(cosigned.origin, kind, detail, cosigned.checkpoint, offered, now)
        )


def _signed_by(signature: NoteSignature, verifiers: Sequence[Verifier]) -> bool:
    return any(v.name == signature.name and v.key_id == signature.key_id for v in verifiers)

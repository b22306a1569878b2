"""The checkpoint half of an audit run (steps 1 and 2 of :mod:`clearance.audit.auditor`).

The log's current checkpoint is judged before any entry is read: its witness
cosignatures are counted against the trust root (a forged one is reported),
it must extend the checkpoint the previous run recorded, and the checkpoints
the witnesses hold must be consistent with it (else a split view).  The rules
themselves are :mod:`clearance.log.consistency`'s, the same the endpoint
verifier and the witness apply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import httpx

from clearance.attest import TrustRoot
from clearance.audit.rules import AuditFinding
from clearance.audit.state import SeenCheckpoint
from clearance.errors import ClearanceError
from clearance.keys import Note
from clearance.log.checkpoint import Checkpoint, open_checkpoint
from clearance.log.consistency import check_consistent, cosignatures
from clearance.log.errors import CheckpointRollbackError, ForgedCosignatureError
from clearance.log.merkle import ProofError
from clearance.log.tiles import TiledLogClient


def count_cosignatures(note: Note, root: TrustRoot) -> int:
    """How many of the trust root's witnesses validly cosigned ``note`` (the verifier's rule:
    :func:`clearance.log.consistency.cosignatures`; a forged one raises
    :class:`~clearance.log.errors.ForgedCosignatureError`)."""
    return len(cosignatures(note, root.witnesses.keys))


def cosigning_witnesses(note: Note, root: TrustRoot) -> dict[str, int]:
    """The trust root's witnesses whose cosignature on ``note`` verifies, each with the
    timestamp (Unix seconds) it cosigned at.  A checkpoint carrying a forged cosignature
    counts no witness at all, as the endpoint verifier refuses it
    (:func:`clearance.log.consistency.cosignatures`)."""
    try:
        return cosignatures(note, root.witnesses.keys)
    except ForgedCosignatureError:
        return {}


class CheckpointChecks:
    """Judges one run's checkpoint; every discrepancy goes to ``report``."""

    def __init__(
        self,
        client: TiledLogClient,
        witness_urls: Sequence[str],
        report: Callable[[AuditFinding], None],
    ) -> None:
        self._client = client
        self._witness_urls = tuple(witness_urls)
        self._report = report

    def cosigned(self, root: TrustRoot, cp: Checkpoint, note: Note) -> int:
        """Valid witness cosignatures on ``note``; a forged one is reported and counts none."""
        try:
            return count_cosignatures(note, root)
        except ForgedCosignatureError as exc:
            self._report(
                AuditFinding(
                    "audit.cosignature-forged",
                    f"checkpoint of size {cp.size}: {exc}",
                    None,
                    {"checkpoint": note.to_bytes().decode()},
                )
            )
            return 0

    def extends_last(
        self, root: TrustRoot, last: SeenCheckpoint | None, cp: Checkpoint, note: Note
    ) -> bool:
        """Whether ``cp`` extends the checkpoint the previous run recorded (or there is none)."""
        if last is None:
            return True
        evidence = {"previous": last.note.decode(), "current": note.to_bytes().decode()}
        seen = Checkpoint(root.log_origin, last.size, last.root_hash)
        try:
            check_consistent(seen, cp, self._client.consistency_proof)
        except CheckpointRollbackError:
            message = f"the log went back from size {last.size} to {cp.size}"
        except ClearanceError as exc:
            message = f"size {cp.size} does not extend the size {last.size} seen before: {exc}"
        else:
            return True
        self._report(AuditFinding("audit.log-inconsistent", message, None, evidence))
        return False

    def witnessed(self, root: TrustRoot, cp: Checkpoint, cosigned: int) -> None:
        needed = root.witnesses.threshold
        if needed and cosigned < needed:
            self._report(
                AuditFinding(
                    "audit.checkpoint-unwitnessed",
                    f"checkpoint of size {cp.size} has {cosigned} valid witness "
                    f"cosignature(s), the trust root requires {needed}",
                    None,
                    {"size": cp.size, "cosignatures": cosigned, "threshold": needed},
                )
            )

    def witness_views(self, root: TrustRoot, cp: Checkpoint) -> None:
        """Compare ``cp`` with the checkpoint each witness URL holds for this log."""
        for url in self._witness_urls:
            try:
                response = httpx.get(
                    url.rstrip("/") + "/checkpoint", params={"origin": root.log_origin}, timeout=10
                )
            except httpx.HTTPError:
                continue  # an unreachable witness is not evidence of anything
            if response.status_code != 200:
                continue
            try:
                other, _ = open_checkpoint(response.content, root.log_key, root.log_origin)
            except ClearanceError:
                continue  # not signed by the log: proves nothing about the log
            try:
                small, big = sorted((other, cp), key=lambda c: c.size)
                if big is other:
                    self._client.trust(other)
                check_consistent(small, big, self._client.consistency_proof)
            except (ClearanceError, ProofError) as exc:
                self._report(
                    AuditFinding(
                        "audit.split-view",
                        f"witness {url} holds size {other.size} that is not consistent "
                        f"with the log's size {cp.size}: {exc}",
                        None,
                        {"witness": url, "witness_checkpoint": response.text},
                    )
                )

"""The gateway's view of the transparency log: append, read, prove, get witnessed."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from clearance.index import LogIndex
from clearance.keys import Note
from clearance.log import AppendResult, Checkpoint, TransparencyLog
from clearance.witness.collector import WitnessConfig, collect_cosignatures


class GatewayLog:
    """A :class:`TransparencyLog` plus what the gateway needs on top of it (a
    :class:`~clearance.log.LogReader`)."""

    def __init__(self, log: TransparencyLog, index: LogIndex | None = None) -> None:
        self._log = log
        #: The verifiable index every checkpoint commits to (clearance.index).
        self.index = index
        self._witness_sizes: dict[str, int] = {}
        self._witness_lock = threading.Lock()

    @classmethod
    def open(
        cls, directory: Path, index: LogIndex | None = None, *, name: str = "clearance"
    ) -> GatewayLog:
        """Open the log; with ``index``, it is brought to the log's size now and every
        checkpoint signed from now on commits to its root."""
        log = TransparencyLog.open(directory, extension=index, name=name)
        if index is not None:
            # One bundle read per 256 entries: entry by entry, a start re-read (and
            # decoded) the entry's whole bundle from the database for each entry.
            size = log.size
            index.rebuild(log.entries(0, size, size))
        return cls(log, index)

    def sync_index(self) -> None:
        """Bring the index to the log's size (entries another replica appended)."""
        if self.index is not None:
            size = self._log.size
            self.index.extend_to(size, lambda start, end: self._log.entries(start, end, size))

    def revoked_keys(self) -> frozenset[str]:
        """Keys revoked in the log (the verifiable index knows them; none without one)."""
        return frozenset() if self.index is None else self.index.revoked_keys

    @property
    def transparency_log(self) -> TransparencyLog:
        return self._log

    @property
    def public_dir(self) -> Path:
        return self._log.public_dir

    @property
    def publishes_files(self) -> bool:
        """False when the log is in PostgreSQL: tiles are served with :meth:`read_public`."""
        return self._log.publishes_files

    def read_public(self, path: str) -> bytes:
        return self._log.read_public(path)

    @property
    def size(self) -> int:
        return self._log.size

    @property
    def origin(self) -> str:
        return self._log.origin

    def append(self, entries: Sequence[bytes]) -> list[int]:
        return [r.index for r in self._log.append(entries)]

    def append_results(self, entries: Sequence[bytes]) -> list[AppendResult]:
        """Where each entry landed, with the checkpoint its batch committed."""
        return self._log.append(entries)

    def entries(self, start: int, end: int, size: int) -> Iterator[bytes]:
        return self._log.entries(start, end, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self._log.inclusion_proof(index, size)

    def inclusion_proofs(self, indices: Sequence[int], size: int) -> list[list[bytes]]:
        return self._log.inclusion_proofs(indices, size)

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        return self._log.consistency_proof(old, new)

    def checkpoint(self) -> Note:
        return self._log.checkpoint()

    def checkpoint_bytes(self) -> bytes:
        return self._log.checkpoint().to_bytes()

    @staticmethod
    def checkpoint_size(note_bytes: bytes) -> int:
        return Checkpoint.from_note(Note.from_bytes(note_bytes)).size

    def close(self) -> None:
        self._log.close()

    def collect_witnesses(
        self, witnesses: Sequence[WitnessConfig], threshold: int, timeout: float = 10.0
    ) -> dict[str, Any]:
        """One round: ask every witness to cosign the current checkpoint, attach what verifies."""
        configs = list(witnesses)
        with self._witness_lock:
            note = self._log.checkpoint()
            result = collect_cosignatures(
                note,
                configs,
                lambda old, new: self._log.consistency_proof(old, new),
                min(threshold, len(configs)),
                timeout=timeout,
                old_sizes=self._witness_sizes,
            )
            self._witness_sizes.update(result.witness_sizes)
            if result.signatures:
                self._log.add_cosignatures(result.signatures, for_text=note.text)
            return result.to_dict()

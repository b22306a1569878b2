"""Signature checks off the event loop and off the GIL: a process pool sized to the cores.

A bulk submission hands :meth:`SignaturePool.verify_many` a list of (envelope
bytes, verifier key lines); the list is cut into one chunk per worker
process, so the cost of crossing a process boundary is paid per chunk, not
per signature.  Workers are started with ``spawn`` (the gateway has threads
and database connections that must not be forked).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from clearance.errors import ClearanceError

#: Below this many envelopes the check runs in the calling thread (no process hop).
INLINE_BELOW = 64


def _verify_chunk(items: Sequence[tuple[bytes, Sequence[str]]]) -> list[str | None]:
    """In a worker: ``None`` for an envelope one of its keys signed, else the reason."""
    from clearance.attest import Envelope
    from clearance.keys import Verifier

    keys: dict[str, Verifier] = {}
    out: list[str | None] = []
    for envelope_bytes, key_lines in items:
        try:
            verifiers = [keys.get(k) or keys.setdefault(k, Verifier.parse(k)) for k in key_lines]
            Envelope.from_bytes(envelope_bytes).verify(verifiers, 1)
        except ClearanceError as exc:
            out.append(str(exc))
        else:
            out.append(None)
    return out


class SignaturePool:
    """Verify many DSSE envelopes in parallel processes; see the module documentation."""

    def __init__(self, workers: int | None = None) -> None:
        self._workers = max(1, workers or os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        return self._workers

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self._workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def warm(self) -> None:
        """Start the worker processes now (a ``spawn`` start costs seconds), not at first use."""
        list(self._executor().map(_verify_chunk, [[] for _ in range(self._workers)]))

    def verify_many(self, items: Sequence[tuple[bytes, Sequence[str]]]) -> list[str | None]:
        if len(items) < INLINE_BELOW:
            return _verify_chunk(items)
        size = -(-len(items) // self._workers)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        results: list[str | None] = []
        for part in self._executor().map(_verify_chunk, chunks):
            results.extend(part)
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

"""Signature checks, and the parsing around them, off the event loop and off the GIL:
a process pool sized to the cores.

A bulk submission hands :meth:`SignaturePool.map_chunks` a list of items and a
module-level function of a chunk of them (parsing reports, say), and
:meth:`SignaturePool.verify_many` a list of (envelope bytes, verifier keys).
The list is cut into one chunk per worker process, so the cost of crossing a
process boundary is paid per chunk, not per item.  Workers are started with
``spawn`` (the gateway has threads and database connections that must not be
forked).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from clearance.attest import Envelope
from clearance.errors import ClearanceError
from clearance.keys import Verifier

#: Below this many items the work runs in the calling thread (no process hop).
INLINE_BELOW = 64
#: How often a worker looks whether the gateway that started it is still alive.
PARENT_POLL_SECONDS = 0.5

Item = TypeVar("Item")
Result = TypeVar("Result")


def _verify_chunk(items: Sequence[tuple[bytes, Sequence[Verifier]]]) -> list[str | None]:
    """In a worker: ``None`` for an envelope one of its keys signed, else the reason.

    The keys come parsed and checked (a point of the curve's prime-order group) by the
    gateway, once per key: checking a key costs about as much as a verification, and
    a fleet's reports are each signed by a key of their own.  A pickled ``Verifier``
    arrives as the same frozen value without that check being run again."""
    out: list[str | None] = []
    for envelope_bytes, verifiers in items:
        try:
            Envelope.from_bytes(envelope_bytes).verify(verifiers, 1)
        except ClearanceError as exc:
            out.append(str(exc))
        else:
            out.append(None)
    return out


def _exit_with(parent: int) -> None:
    """A worker's initializer: end this worker once ``parent`` is gone.

    A worker waits on a queue whose pipe it also holds open, so a gateway killed with
    ``kill -9`` (a replica's crash, a failover) never sends it end-of-file: without this
    it would wait for good, and every restart of the replica would leave more behind."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


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
                self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_exit_with,
                initargs=(os.getpid(),),
            )
        return self._pool

    def warm(self) -> None:
        """Start the worker processes now (a ``spawn`` start costs seconds), not at first use."""
        list(self._executor().map(_verify_chunk, [[] for _ in range(self._workers)]))

    def map_chunks(
        self, work: Callable[[Sequence[Item]], list[Result]], items: Sequence[Item]
    ) -> list[Result]:
        """``work`` over ``items`` cut into one chunk per worker; the results in order.

        ``work`` must be a module-level function (a worker imports it by name) that
        returns one result per item."""
        if len(items) < INLINE_BELOW:
            return work(items)
        size = -(-len(items) // self._workers)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        results: list[Result] = []
        for part in self._executor().map(work, chunks):
            results.extend(part)
        return results

    def verify_many(self, items: Sequence[tuple[bytes, Sequence[Verifier]]]) -> list[str | None]:
        """For each (envelope bytes, verifier keys): ``None`` when one of the keys signed it,
        else the reason it is refused."""
        return self.map_chunks(_verify_chunk, items)

    def close(self) -> None:
        if self._pool is not None:
            # Waited for (a chunk takes well under a second): a pool left to end on its own
            # as the process exits leaves its semaphores to the resource tracker, which
            # warns of leaks in every replica's log.
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

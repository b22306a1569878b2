"""Leader batching: threads that ask for the same step at the same time share one run of it.

The first waiting thread becomes the leader: it takes every item queued so
far, runs the step once on all of them, wakes their callers, and passes
leadership to the next waiting item (so no caller serves others forever).
While a leader runs the step, new items queue up and form the next batch, so
under load a batch grows to whatever arrived during one run.  Used for the
log's group commit, the gateway's batched admission and its batched
indexing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Slot(Generic[T]):
    __slots__ = ("done", "error", "item", "lead")

    def __init__(self, item: T) -> None:
        self.item = item
        self.error: BaseException | None = None
        self.lead = False
        self.done = threading.Event()


class Batcher(Generic[T]):
    """Runs ``step(items)`` over batches of concurrently submitted items.

    ``step`` hands each item its outcome (by setting fields on it); if it raises, every
    caller of that batch gets the exception.
    """

    def __init__(self, step: Callable[[list[T]], None]) -> None:
        self._step = step
        self._lock = threading.Lock()
        self._queue: list[_Slot[T]] = []
        self._leader_busy = False

    def run(self, item: T) -> None:
        """Return once a batch holding ``item`` went through the step (raise what it raised)."""
        slot = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            lead = not self._leader_busy
            if lead:
                self._leader_busy = True
        if not lead:
            slot.done.wait()
            if not slot.lead:
                return self._outcome(slot)
        self._lead_one_batch()
        return self._outcome(slot)

    @staticmethod
    def _outcome(slot: _Slot[T]) -> None:
        if slot.error is not None:
            raise slot.error

    def _lead_one_batch(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            self._step([slot.item for slot in batch])
        except BaseException as exc:  # every caller of a failed batch learns why
            for slot in batch:
                slot.error = exc
        for slot in batch:
            slot.done.set()
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor.lead = True
                successor.done.set()
            else:
                self._leader_busy = False

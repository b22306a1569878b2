"""Group commit: threads that append at the same time share one batch.

The first waiting thread becomes the leader; it takes every request queued
so far, commits them as one batch, hands each caller its results, and then
passes leadership to the next waiting request (so no caller serves others
forever).  Callers never see another caller's bad input: entries are
checked before they are queued.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

R = TypeVar("R")


class _Request(Generic[R]):
    __slots__ = ("done", "entries", "error", "lead", "results")

    def __init__(self, entries: list[bytes]) -> None:
        self.entries = entries
        self.results: list[R] = []
        self.error: BaseException | None = None
        self.lead = False
        self.done = threading.Event()


class Sequencer(Generic[R]):
    """Runs ``commit(entries) -> results`` for batches of concurrently submitted entries."""

    def __init__(self, commit: Callable[[list[bytes]], Sequence[R]]) -> None:
        self._commit = commit
        self._lock = threading.Lock()
        self._queue: list[_Request[R]] = []
        self._leader_busy = False

    def submit(self, entries: list[bytes]) -> list[R]:
        request: _Request[R] = _Request(entries)
        with self._lock:
            self._queue.append(request)
            lead = not self._leader_busy
            if lead:
                self._leader_busy = True
        if not lead:
            request.done.wait()
            if not request.lead:
                return self._outcome(request)
        self._lead()
        return self._outcome(request)

    @staticmethod
    def _outcome(request: _Request[R]) -> list[R]:
        if request.error is not None:
            raise request.error
        return request.results

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            entries = [e for r in batch for e in r.entries]
            results = list(self._commit(entries)) if entries else []
            position = 0
            for r in batch:
                r.results = results[position : position + len(r.entries)]
                position += len(r.entries)
        except BaseException as exc:  # every caller of a failed batch learns why
            for r in batch:
                r.error = exc
        for r in batch:
            r.done.set()
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor.lead = True
                successor.done.set()
            else:
                self._leader_busy = False

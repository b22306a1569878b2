"""Group commit: threads that append at the same time share one batch.

A :class:`~clearance._batching.Batcher` whose step commits every queued
request's entries as one batch and hands each caller its results.  Callers
never see another caller's bad input: entries are checked before they are
queued.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from clearance._batching import Batcher

R = TypeVar("R")


class _Request(Generic[R]):
    __slots__ = ("entries", "results")

    def __init__(self, entries: list[bytes]) -> None:
        self.entries = entries
        self.results: list[R] = []


class Sequencer(Generic[R]):
    """Runs ``commit(entries) -> results`` for batches of concurrently submitted entries."""

    def __init__(self, commit: Callable[[list[bytes]], Sequence[R]]) -> None:
        self._commit = commit
        self._batches: Batcher[_Request[R]] = Batcher(self._commit_batch)

    def submit(self, entries: list[bytes]) -> list[R]:
        request: _Request[R] = _Request(entries)
        self._batches.run(request)
        return request.results

    def _commit_batch(self, batch: list[_Request[R]]) -> None:
        entries = [e for r in batch for e in r.entries]
        results = list(self._commit(entries)) if entries else []
        position = 0
        for r in batch:
            r.results = results[position : position + len(r.entries)]
            position += len(r.entries)

"""Signed submissions through two dedicated threads instead of a thread per request.

A submission is parsed where it arrives (the HTTP event loop, or the caller's
thread) and queued.  The *admission* thread takes everything queued so far and
runs the batch step on it (the checks and one group commit:
:class:`~clearance.gateway._admission.BatchAdmitter`); the *finishing* thread
then indexes the batch's new entries, carries out their reactions and builds
every receipt, while the admission thread already checks and commits the next
batch.  Each caller is answered once its batch is finished: an event-loop
caller through one ``call_soon_threadsafe`` per batch and loop, a thread
through an event.

Why not a thread per request, each taking part in leader batching (what this
replaced): under load every request then waited in a thread of its own, and
each batch woke every one of them twice (admitted, then indexed) to do a few
microseconds of work; with dozens of threads contending for one interpreter,
those hand-overs cost more CPU than the work.  Here a batch costs three
hand-overs whatever its size.

Every caller still gets only its own outcome: a refused submission fails alone;
a batch step that raises fails the callers of that batch only, and the threads
go on with the next batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

from clearance.gateway._admission import Admission
from clearance.gateway.errors import GatewayUnavailableError

_STOP = object()


class _Waiter:
    """Where one caller waits: an asyncio future on its loop, or an event."""

    __slots__ = ("admission", "event", "future", "loop")

    def __init__(
        self,
        admission: Admission,
        loop: asyncio.AbstractEventLoop | None = None,
        future: asyncio.Future[dict[str, Any]] | None = None,
    ) -> None:
        self.admission = admission
        self.loop = loop
        self.future = future
        self.event = threading.Event() if loop is None else None


def _settle(waiters: list[_Waiter]) -> None:
    """On the waiters' event loop: hand each its receipt or error."""
    for waiter in waiters:
        future, admission = waiter.future, waiter.admission
        if future is None or future.done():  # the request was cancelled (client gone)
            continue
        if admission.error is not None:
            future.set_exception(admission.error)
        else:
            assert admission.receipt is not None
            future.set_result(admission.receipt)


class SubmissionPipeline:
    """``admit(batch)`` then ``finish(batch)`` over batches of queued admissions.

    ``admit`` must set ``index`` or ``error`` on each admission; ``finish`` sets
    ``receipt`` or ``error`` on each one still without an error.  An admission left
    without an outcome is failed with a clear error.
    """

    def __init__(
        self,
        admit: Callable[[list[Admission]], None],
        finish: Callable[[list[Admission]], None],
        name: str = "submissions",
    ) -> None:
        self._admit = admit
        self._finish = finish
        self._admitting: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._finishing: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._started = False
        self._close_lock = threading.Lock()
        # Started at the first submission: a gateway opened for reads has no threads idle.
        self._threads = [
            threading.Thread(target=self._run_admission, name=f"{name}-admit", daemon=True),
            threading.Thread(target=self._run_finishing, name=f"{name}-finish", daemon=True),
        ]

    # -- callers ------------------------------------------------------------------------

    def run(self, admission: Admission) -> dict[str, Any]:
        """Queue ``admission`` and wait for its receipt (raise its error)."""
        waiter = _Waiter(admission)
        self._queue(waiter)
        assert waiter.event is not None
        waiter.event.wait()
        if admission.error is not None:
            raise admission.error
        assert admission.receipt is not None
        return admission.receipt

    async def run_async(self, admission: Admission) -> dict[str, Any]:
        """The same, awaited on the running event loop without a thread of its own."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(admission, loop, loop.create_future())
        self._queue(waiter)
        assert waiter.future is not None
        return await waiter.future

    def _queue(self, waiter: _Waiter) -> None:
        with self._close_lock:
            if self._closed:
                raise GatewayUnavailableError("the gateway is shutting down")
            if not self._started:
                self._started = True
                for thread in self._threads:
                    thread.start()
            self._admitting.put(waiter)

    def close(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop both threads."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            if not self._started:
                return  # nothing was ever queued
            self._admitting.put(_STOP)
        for thread in self._threads:
            thread.join(timeout)

    # -- the two threads ----------------------------------------------------------------

    @staticmethod
    def _take(inbox: queue.SimpleQueue[Any]) -> tuple[list[Any], bool]:
        """Everything queued (waiting for the first); whether the stop mark came."""
        first = inbox.get()
        if first is _STOP:
            return [], True
        batch: list[Any] = [first]
        while True:
            try:
                item = inbox.get_nowait()
            except queue.Empty:
                return batch, False
            if item is _STOP:
                return batch, True
            batch.append(item)

    def _run_admission(self) -> None:
        stop = False
        while not stop:
            waiters, stop = self._take(self._admitting)
            if waiters:
                admissions = [w.admission for w in waiters]
                try:
                    self._admit(admissions)
                except BaseException as exc:  # every caller of a failed batch learns why
                    for admission in admissions:
                        admission.error = admission.error or exc
                for admission in admissions:
                    if admission.error is None and admission.index is None:
                        admission.error = RuntimeError(
                            "the admission batch ended without an outcome"
                        )
                self._finishing.put(waiters)
        self._finishing.put(_STOP)

    def _run_finishing(self) -> None:
        stop = False
        while not stop:
            batches, stop = self._take(self._finishing)  # every admitted batch waiting
            waiters = [w for batch in batches for w in batch]
            if waiters:
                self._finish_and_answer(waiters)  # finished as one

    def _finish_and_answer(self, waiters: list[_Waiter]) -> None:
        pending = [w.admission for w in waiters if w.admission.error is None]
        try:
            self._finish(pending)
        except BaseException as exc:
            for admission in pending:
                admission.error = admission.error or exc
        for admission in pending:
            if admission.error is None and admission.receipt is None:
                admission.error = RuntimeError("the submission was logged but not answered")
        by_loop: dict[asyncio.AbstractEventLoop, list[_Waiter]] = {}
        for waiter in waiters:
            if waiter.event is not None:
                waiter.event.set()
            else:
                assert waiter.loop is not None
                by_loop.setdefault(waiter.loop, []).append(waiter)
        for loop, on_loop in by_loop.items():
            # A loop already closed has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, on_loop)

"""SIGTERM, the signal service managers stop a process with, run through ``finally``.

uvicorn catches SIGINT and SIGTERM, shuts its server down gracefully, puts back the
handlers it found and then raises the signal again.  With Python's own handlers that
ends differently for the two: SIGINT becomes ``KeyboardInterrupt`` and unwinds the
stack, so the gateway's ``finally`` closes it; SIGTERM's default action ends the
process on the spot, before that ``finally``.  So ``systemctl stop``, ``docker stop``
or a Kubernetes pod's end left the gateway unclosed: its background work not stopped,
its leader lease and sequencer address not given up (another replica waited for the
database to notice the closed connection).  Within :func:`sigterm_unwinds`, SIGTERM
raises :class:`Terminated` instead, and once the block has unwound it is delivered
again with the previous handler, so the process still ends as terminated (status 143).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(BaseException):
    """SIGTERM arrived.  A ``BaseException``, so no ``except Exception`` on the way swallows it."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """SIGTERM unwinds the block (its ``finally`` clauses run), then ends the process."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; elsewhere nothing changes
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    terminated = False
    try:
        yield
    except Terminated:
        terminated = True
    finally:
        signal.signal(signal.SIGTERM, previous)
    if terminated:
        signal.raise_signal(signal.SIGTERM)

"""A local cluster: several ``clearance serve`` processes over one data directory and database.

Used by the failover test and the replica benchmark (and handy for trying
replicas by hand).  Each replica is a real process listening on a port the
OS chose on 127.0.0.1; :meth:`Replica.kill` is ``kill -9``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from clearance.errors import ClearanceError

_MAIN = "import sys; from clearance.cli import main; sys.exit(main(sys.argv[1:]))"


class ClusterError(ClearanceError):
    """A replica did not start."""


class Replica:
    """One ``clearance serve --port 0`` process; :attr:`url` once it listens."""

    @classmethod
    def start_many(cls, data_dir: Path, count: int) -> list[Replica]:
        """Start ``count`` replicas at once (their start-up overlaps)."""
        started: list[Replica] = []
        errors: list[BaseException] = []

        def one() -> None:
            try:
                replica = cls(data_dir)
            except BaseException as exc:  # reported below, after every thread ended
                errors.append(exc)
            else:
                started.append(replica)

        threads = [threading.Thread(target=one) for _ in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            for r in started:
                r.kill()
            raise errors[0]
        return started

    def __init__(self, data_dir: Path, *, timeout: float = 60.0) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _MAIN, "serve", "--data", str(data_dir), "--port", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.pid = self.process.pid
        #: The last lines the replica wrote to stderr (for diagnosing a death).
        self.stderr_tail: list[str] = []
        self.url = self._wait_for_url(timeout)
        self._drain = threading.Thread(target=self._discard, daemon=True)
        self._drain.start()

    def _wait_for_url(self, timeout: float) -> str:
        stream = self.process.stderr
        assert stream is not None
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = stream.readline()
            if not line:
                break
            seen.append(line.rstrip())
            if line.startswith("clearance gateway on "):
                return line.split()[3]
        self.kill()
        raise ClusterError("replica did not start: " + " | ".join(seen[-5:]))

    def _discard(self) -> None:
        stream: IO[str] | None = self.process.stderr
        if stream is not None:
            for line in stream:
                self.stderr_tail = [*self.stderr_tail[-19:], line.rstrip()]

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """``kill -9``: no clean-up of any kind in the replica."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

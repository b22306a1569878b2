"""The gateway's background threads: inspection workers, the rollout ticker, witness rounds."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from clearance.errors import ClearanceError
from clearance.log import CheckpointSupersededError

log = logging.getLogger("clearance.gateway")


class Background:
    """Daemon threads sharing one stop event; :meth:`close` stops and joins them."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.witness_status: dict[str, Any] = {}
        self._wake_witness = threading.Event()
        self._threads: list[threading.Thread] = []

    def spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def every(self, name: str, seconds: float, step: Callable[[], object]) -> None:
        """Run ``step`` every ``seconds`` until stopped; an error is logged, the next runs."""

        def loop() -> None:
            while not self.stopping.wait(seconds):
                try:
                    step()
                except ClearanceError as exc:
                    log.warning("%s: %s", name, exc)

        self.spawn(name, loop)

    def witness_rounds(self, round_: Callable[[], dict[str, Any]]) -> None:
        """Run a witness round after each :meth:`wake_witnesses` (and every 30 s)."""

        def loop() -> None:
            while not self.stopping.is_set():
                self._wake_witness.wait(timeout=30)
                self._wake_witness.clear()
                if self.stopping.is_set():
                    return
                try:
                    self.witness_status = round_()
                except CheckpointSupersededError:
                    # The log grew during the round: witness the newer checkpoint right away.
                    self._wake_witness.set()
                except ClearanceError as exc:
                    log.warning("witness round failed: %s", exc)

        self.spawn("witness", loop)

    def wake_witnesses(self) -> None:
        self._wake_witness.set()

    def close(self) -> None:
        self.stopping.set()
        self._wake_witness.set()
        for thread in self._threads:
            thread.join(timeout=10)

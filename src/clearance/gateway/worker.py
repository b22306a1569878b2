"""Inspection workers: take jobs from the queue, inspect, submit the signed verdict.

The embedded default runs them as threads of the gateway process (the
inspection itself runs the engines in sandboxed child processes).  A job
that raises is retried by the queue, then marked failed with its error,
and the release shows ``inspection-failed`` with that error.

A worker talks to the gateway's inspections through :class:`InspectionSource` and
hands verdicts to ``submit``, so this module does not import the gateway.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from clearance.attest import Envelope
from clearance.errors import ClearanceError
from clearance.gateway._inspect import InspectFunction, InspectionRequest
from clearance.gateway._inspect import run_inspection as default_inspect
from clearance.gateway.queue import Job
from clearance.keys import Signer

__all__ = [
    "InspectFunction",
    "InspectionRequest",
    "InspectionSource",
    "InspectionWorker",
    "default_inspect",
]

#: What a worker does with a claimed job; returns the job's result.
JobRunner = Callable[[Job], Mapping[str, Any]]


class InspectionSource(Protocol):
    """The gateway's inspections as a worker sees them (:class:`~clearance.gateway.inspections.Inspections`)."""

    def inspector_signer(self) -> Signer | None: ...

    def run_job(
        self, worker: str, run: JobRunner, expected_errors: tuple[type[BaseException], ...]
    ) -> bool: ...

    def scratch(self) -> AbstractContextManager[Path]: ...

    def request(self, release_sha256: str, work_dir: Path, signer: Signer) -> InspectionRequest: ...


#: How a worker hands its signed verdict to the gateway (``Gateway.submit``).
SubmitVerdict = Callable[[bytes, str], Mapping[str, Any]]


class InspectionWorker:
    def __init__(
        self,
        inspections: InspectionSource,
        submit: SubmitVerdict,
        stopping: threading.Event,
        name: str,
        inspect: InspectFunction = default_inspect,
    ) -> None:
        self.inspections = inspections
        self.submit = submit
        self.stopping = stopping
        self.name = name
        self.inspect = inspect
        self.signer = inspections.inspector_signer()

    def run_forever(self, poll_seconds: float = 0.2) -> None:
        while not self.stopping.is_set():
            if not self.run_once():
                self.stopping.wait(poll_seconds)

    def run_once(self) -> bool:
        """Run one job if there is one; False when the queue was empty."""
        return self.inspections.run_job(
            self.name, self._run, (ClearanceError, OSError, ValueError, RuntimeError)
        )

    def _run(self, job: Job) -> dict[str, Any]:
        if job.kind != "inspect":
            raise ValueError(f"unknown job kind {job.kind!r}")
        if self.signer is None:
            raise RuntimeError("this gateway has no embedded inspector key")
        with self.inspections.scratch() as work:
            request = self.inspections.request(str(job.payload["release"]), work, self.signer)
            verdict: Envelope = self.inspect(request)
        receipt = self.submit(verdict.to_bytes(), "inspector")
        return {"verdict_sha256": receipt["sha256"], "verdict_log_index": receipt["log_index"]}

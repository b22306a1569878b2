"""Inspection workers: take jobs from the queue, inspect, submit the signed verdict.

The embedded default runs them as threads of the gateway process (the
inspection itself runs the engines in sandboxed child processes).  A job
that raises is retried by the queue, then marked failed with its error,
and the release shows ``inspection-failed`` with that error.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearance.attest import Envelope, Release
from clearance.errors import ClearanceError
from clearance.gateway.queue import Job, run_one_job
from clearance.keys import Signer, load_signer

if TYPE_CHECKING:
    from clearance.gateway.service import Gateway


@dataclass(frozen=True)
class InspectionRequest:
    """What one inspection job needs: the logged release and where its artifacts are."""

    release_envelope: Envelope
    release: Release
    artifact_paths: dict[str, Path]
    previous_envelope: Envelope | None
    previous_artifact_paths: dict[str, Path]
    corpus: tuple[Path, ...]
    work_dir: Path
    signer: Signer
    #: Where to keep the SARIF of each inspection (``<release sha256>.sarif``), if anywhere.
    reports_dir: Path | None = None


#: Runs one inspection and returns the signed verdict envelope.
InspectFunction = Callable[[InspectionRequest], Envelope]


def default_inspect(request: InspectionRequest) -> Envelope:
    """The real inspection of :mod:`clearance.inspection` (engines in sandboxes)."""
    from clearance.gateway._inspect import run_inspection

    return run_inspection(request)


class InspectionWorker:
    def __init__(
        self, gateway: Gateway, name: str, inspect: InspectFunction = default_inspect
    ) -> None:
        self.gateway = gateway
        self.name = name
        self.inspect = inspect
        key = gateway.config.inspector_key
        self.signer = load_signer(gateway.data_dir / key) if key else None

    def run_forever(self, poll_seconds: float = 0.2) -> None:
        while not self.gateway.stopping.is_set():
            if not self.run_once():
                self.gateway.stopping.wait(poll_seconds)

    def run_once(self) -> bool:
        """Run one job if there is one; False when the queue was empty."""

        def mark_failed(job: Job, message: str) -> None:
            self.gateway.store.set_release_state(
                str(job.payload.get("release")), "inspection-failed", message
            )

        return run_one_job(
            self.gateway.queue,
            self.name,
            self._run,
            (ClearanceError, OSError, ValueError, RuntimeError),
            on_failed_for_good=mark_failed,
        )

    def _run(self, job: Job) -> dict[str, Any]:
        if job.kind != "inspect":
            raise ValueError(f"unknown job kind {job.kind!r}")
        if self.signer is None:
            raise RuntimeError("this gateway has no embedded inspector key")
        release_sha = str(job.payload["release"])
        gw = self.gateway
        row = gw.store.release(release_sha)
        if row is None:
            raise ValueError(f"release {release_sha} is not indexed")
        envelope = Envelope.from_bytes(gw.log.entry(row.log_index))
        release = Release.from_envelope(envelope)
        paths = {a.name: gw.artifact_path(a.sha256) for a in release.artifacts}
        previous_env: Envelope | None = None
        previous_paths: dict[str, Path] = {}
        if release.previous is not None:
            prev_row = gw.store.release(release.previous)
            if prev_row is not None:
                previous_env = Envelope.from_bytes(gw.log.entry(prev_row.log_index))
                previous_paths = {
                    a["name"]: gw.artifact_path(a["sha256"]) for a in prev_row.artifacts
                }
        corpus = tuple((gw.data_dir / c).resolve() for c in gw.config.corpus_dirs)
        scratch = gw.data_dir / "work"
        scratch.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="inspect-", dir=scratch) as work:
            verdict = self.inspect(
                InspectionRequest(
                    envelope,
                    release,
                    paths,
                    previous_env,
                    previous_paths,
                    corpus,
                    Path(work),
                    self.signer,
                    gw.data_dir / "reports",
                )
            )
        receipt = gw.submit(verdict.to_bytes(), "inspector")
        return {"verdict_sha256": receipt["sha256"], "verdict_log_index": receipt["log_index"]}

"""An inspection worker on another machine: shares only the job queue (PostgreSQL) and HTTP.

It claims a job, reads the release envelope from the gateway's public log
(tiles authenticated against the log-signed checkpoint, the entry's digest
checked against the job), downloads the artifacts with the inspector token
(each checked against the release's digests), runs the same inspection as the
embedded workers, signs the verdict with its own inspector key and submits it
like any inspector.  Nothing it receives is trusted without a check.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from pathlib import Path
from typing import Any

from clearance.attest import Envelope, Release
from clearance.attest.trust_root import TrustRoot
from clearance.errors import ClearanceError
from clearance.gateway.client import GatewayClient
from clearance.gateway.errors import GatewayRefused
from clearance.gateway.queue import Job, JobQueue, run_one_job
from clearance.gateway.worker import InspectFunction, InspectionRequest, default_inspect
from clearance.keys import Signer
from clearance.log import read_entry


class RemoteInspectionWorker:
    def __init__(
        self,
        queue: JobQueue,
        client: GatewayClient,
        trust_root: TrustRoot,
        signer: Signer,
        *,
        name: str = "remote",
        corpus: tuple[Path, ...] = (),
        inspect: InspectFunction = default_inspect,
    ) -> None:
        self.queue = queue
        self.client = client
        self.trust_root = trust_root
        self.signer = signer
        self.name = name
        self.corpus = corpus
        self.inspect = inspect

    def run_forever(self, stop: threading.Event, poll_seconds: float = 0.5) -> None:
        while not stop.is_set():
            if not self.run_once():
                stop.wait(poll_seconds)

    def run_once(self) -> bool:
        """Run one job if there is one; False when the queue was empty."""
        return run_one_job(
            self.queue, self.name, self._run, (ClearanceError, OSError, ValueError, KeyError)
        )

    def _logged_release(self, sha256: str, index: int) -> tuple[Envelope, Release]:
        tiles = self.client.log(self.trust_root.log_key, self.trust_root.log_origin)
        checkpoint, _ = tiles.checkpoint()
        entry = read_entry(tiles, index, checkpoint.size)
        if hashlib.sha256(entry).hexdigest() != sha256:
            raise GatewayRefused(f"log entry {index} is not release {sha256}")
        envelope = Envelope.from_bytes(entry)
        envelope.verify(self.trust_root.vendors.keys, 1)
        return envelope, Release.from_envelope(envelope)

    def _download(self, release: Release, into: Path) -> dict[str, Path]:
        into.mkdir(parents=True, exist_ok=True)
        paths = {}
        for artifact in release.artifacts:
            path = into / artifact.sha256
            if not path.exists():
                path.write_bytes(self.client.artifact(artifact.sha256))
            paths[artifact.name] = path
        return paths

    def _run(self, job: Job) -> dict[str, Any]:
        if job.kind != "inspect":
            raise ValueError(f"unknown job kind {job.kind!r}")
        sha = str(job.payload["release"])
        envelope, release = self._logged_release(sha, int(job.payload["log_index"]))
        with tempfile.TemporaryDirectory(prefix="clearance-remote-") as tmp:
            work = Path(tmp)
            paths = self._download(release, work / "store")
            previous_env: Envelope | None = None
            previous_paths: dict[str, Path] = {}
            if release.previous is not None:
                status = self.client.status(release.previous)
                previous_env, previous = self._logged_release(
                    release.previous, int(status["log_index"])
                )
                previous_paths = self._download(previous, work / "store")
            verdict = self.inspect(
                InspectionRequest(
                    envelope,
                    release,
                    paths,
                    previous_env,
                    previous_paths,
                    self.corpus,
                    work / "inspect",
                    self.signer,
                )
            )
        receipt = self.client.submit(verdict.to_bytes())
        return {"verdict_sha256": receipt["sha256"], "verdict_log_index": receipt["log_index"]}

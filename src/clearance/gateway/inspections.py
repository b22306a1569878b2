"""Uploads and inspection jobs: artifact files, queueing a release, an inspection's inputs.

The gateway's collaborator for everything between a logged release and its
verdict: the uploaded artifacts (content-addressed files under the data
directory, accepted only when a logged release names them; with replicas on
PostgreSQL also kept in the database, and fetched from it into the data
directory by a replica that lacks one), the job queue
(one job per release whose artifacts are all there), and what a worker
needs to inspect a release.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from clearance.attest import Envelope, Release
from clearance.gateway._inspect import InspectionRequest
from clearance.gateway._log import GatewayLog
from clearance.gateway.config import GatewayConfig
from clearance.gateway.errors import GatewayInputError, GatewayRefused
from clearance.gateway.queue import Job, JobQueue, run_one_job
from clearance.gateway.states import ReleaseState, awaiting_artifacts_detail
from clearance.gateway.store import MetadataStore, ReleaseRow
from clearance.gateway.worker import JobRunner
from clearance.keys import Signer, load_signer
from clearance.log import read_entry


class ArtifactBlobs(Protocol):
    """Uploaded artifacts shared by replicas (:class:`~clearance.gateway.shared_files.PostgresArtifactBlobs`)."""

    def put(self, sha256: str, data: bytes) -> None: ...
    def copy_to(self, sha256: str, path: Path) -> bool: ...
    def close(self) -> None: ...


class Inspections:
    def __init__(
        self,
        data_dir: Path,
        config: GatewayConfig,
        store: MetadataStore,
        queue: JobQueue,
        log: GatewayLog,
        shared_blobs: ArtifactBlobs | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._shared_blobs = shared_blobs
        self._config = config
        self._store = store
        self._queue = queue
        self._log = log
        self._artifacts = data_dir / "artifacts"
        self._artifacts.mkdir(parents=True, exist_ok=True)

    # -- uploads ---------------------------------------------------------------

    def artifact_path(self, sha256: str) -> Path:
        """Where the artifact is in this data directory (fetched there first from the shared
        store when another replica received it; the path does not exist if nobody did)."""
        path = self._artifacts / sha256
        if self._shared_blobs is not None and not path.exists():
            self._shared_blobs.copy_to(sha256, path)
        return path

    def close(self) -> None:
        if self._shared_blobs is not None:
            self._shared_blobs.close()

    def put_artifact(self, data: bytes, declared_sha256: str | None = None) -> dict[str, Any]:
        """Keep an uploaded artifact that a logged release names; queue what it completes."""
        if len(data) > self._config.max_artifact_bytes:
            raise GatewayInputError(
                f"artifact is {len(data)} bytes, the limit is {self._config.max_artifact_bytes}"
            )
        digest = hashlib.sha256(data).hexdigest()
        if declared_sha256 is not None and declared_sha256 != digest:
            raise GatewayInputError(
                f"artifact content has SHA-256 {digest}, not the declared {declared_sha256}"
            )
        if not self._store.artifact_referenced(digest):
            # Uploads are not signed themselves: only bytes a logged, vendor-signed release
            # names by digest are accepted, so the store holds nothing unaccounted for.
            raise GatewayRefused(
                f"no logged release names an artifact with SHA-256 {digest}: "
                "submit the signed release first"
            )
        path = self._artifacts / digest
        if not path.exists():
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        if self._shared_blobs is not None:  # stored before it counts as uploaded
            self._shared_blobs.put(digest, data)
        self._store.add_artifact(digest, len(data))
        self.maybe_enqueue(self._store.releases_awaiting_artifact(digest))
        return {"sha256": digest, "size": len(data)}

    # -- jobs ------------------------------------------------------------------

    def maybe_enqueue(self, rows: Sequence[ReleaseRow]) -> None:
        """Queue each release awaiting artifacts once all are uploaded (at most once); note
        on the others which artifacts they wait for.  One query for all their artifacts."""
        waiting = [row for row in rows if row.state == ReleaseState.AWAITING_ARTIFACTS]
        if not waiting:
            return
        present = self._store.artifacts_present(
            [a["sha256"] for row in waiting for a in row.artifacts]
        )
        details: list[tuple[str, str]] = []
        for row in waiting:
            missing = [a["name"] for a in row.artifacts if a["sha256"] not in present]
            if missing:
                detail = awaiting_artifacts_detail(missing)
                if row.detail != detail:  # reconciliation re-runs this for every such release
                    details.append((row.sha256, detail))
            else:
                self._start_inspection(row)
        self._store.set_awaiting_details(details)

    def _start_inspection(self, row: ReleaseRow) -> None:
        if self._config.inspector_key is None and not self._config.job_queue_dsn:
            self._store.set_release_state(
                row.sha256,
                ReleaseState.AWAITING_VERDICT,
                "waiting for an inspector's signed verdict",
            )
            return
        queued = "queued for inspection"
        # Enqueue once, even if two uploads race here.
        if not self._store.move_release_state(
            row.sha256, ReleaseState.AWAITING_ARTIFACTS, ReleaseState.INSPECTING, queued
        ):
            return
        job_id = self._queue.enqueue("inspect", {"release": row.sha256, "log_index": row.log_index})
        self._store.set_release_state(row.sha256, ReleaseState.INSPECTING, queued, job_id)

    def requeue_interrupted(self) -> None:
        """Releases left inspecting without a job (a crash before enqueueing): queue again."""
        for row in self._store.releases(ReleaseState.INSPECTING):
            if row.job_id is None:
                self._store.set_release_state(
                    row.sha256, ReleaseState.AWAITING_ARTIFACTS, "re-queued"
                )
        self.maybe_enqueue(self._store.releases(ReleaseState.AWAITING_ARTIFACTS))

    def job(self, job_id: int) -> dict[str, Any]:
        job = self._queue.get(job_id)
        return {"id": job.id, "state": job.state, "attempts": job.attempts, "error": job.error}

    def job_counts(self) -> dict[str, int]:
        return self._queue.counts()

    def run_job(
        self, worker: str, run: JobRunner, expected_errors: tuple[type[BaseException], ...]
    ) -> bool:
        """Claim and run one inspection job; a job failed for good marks its release."""

        def mark_failed(job: Job, message: str) -> None:
            self._store.set_release_state(
                str(job.payload.get("release")), ReleaseState.INSPECTION_FAILED, message
            )

        return run_one_job(
            self._queue, worker, run, expected_errors, on_failed_for_good=mark_failed
        )

    # -- what a worker needs -------------------------------------------------------

    def inspector_signer(self) -> Signer | None:
        """The embedded inspector's key, if the config names one."""
        key = self._config.inspector_key
        return load_signer(self._data_dir / key) if key else None

    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """A fresh scratch directory for one inspection, removed afterwards."""
        root = self._data_dir / "work"
        root.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="inspect-", dir=root) as work:
            yield Path(work)

    def request(self, release_sha256: str, work_dir: Path, signer: Signer) -> InspectionRequest:
        """What inspecting a logged release needs: its envelope, its previous release's,
        and where their uploaded artifacts are."""
        row = self._store.release(release_sha256)
        if row is None:
            raise ValueError(f"release {release_sha256} is not indexed")
        envelope = Envelope.from_bytes(read_entry(self._log, row.log_index, self._log.size))
        release = Release.from_envelope(envelope)
        paths = {a.name: self.artifact_path(a.sha256) for a in release.artifacts}
        previous_env: Envelope | None = None
        previous_paths: dict[str, Path] = {}
        if release.previous is not None:
            prev_row = self._store.release(release.previous)
            if prev_row is not None:
                previous_env = Envelope.from_bytes(
                    read_entry(self._log, prev_row.log_index, self._log.size)
                )
                previous_paths = {
                    a["name"]: self.artifact_path(a["sha256"]) for a in prev_row.artifacts
                }
        return InspectionRequest(
            envelope,
            release,
            paths,
            previous_env,
            previous_paths,
            tuple((self._data_dir / c).resolve() for c in self._config.corpus_dirs),
            work_dir,
            signer,
            self._data_dir / "reports",
        )

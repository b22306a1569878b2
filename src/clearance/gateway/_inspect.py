"""An inspection job's inputs, and the bridge to :func:`clearance.inspection.inspect_release`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from clearance.attest import Envelope, Release
from clearance.keys import Signer


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


def _stage(release: Release, stored: Mapping[str, Path], directory: Path) -> Path:
    """Lay the content-addressed artifacts out under their release names (hard links)."""
    directory.mkdir(parents=True, exist_ok=True)
    for artifact in release.artifacts:
        # `Artifact` admitted only clean relative paths (attest._fields.relative_path).
        target = directory.joinpath(*PurePosixPath(artifact.name).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = stored[artifact.name]
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    return directory


def run_inspection(request: InspectionRequest) -> Envelope:
    """The real inspection of :mod:`clearance.inspection` (engines in sandboxes)."""
    from clearance.inspection import inspect_release
    from clearance.inspection.report import render_html

    current = _stage(request.release, request.artifact_paths, request.work_dir / "current")
    previous: Release | None = None
    previous_dir: Path | None = None
    if request.previous_envelope is not None:
        previous = Release.from_envelope(request.previous_envelope)
        previous_dir = _stage(
            previous, request.previous_artifact_paths, request.work_dir / "previous"
        )
    outcome = inspect_release(
        request.release,
        current,
        previous=previous,
        previous_artifacts_dir=previous_dir,
        corpus=request.corpus,
        work_dir=request.work_dir / "scratch",
    )
    if request.reports_dir is not None:
        request.reports_dir.mkdir(parents=True, exist_ok=True)
        (request.reports_dir / f"{request.release_envelope.sha256}.sarif").write_bytes(
            outcome.sarif_bytes
        )
        # The human-readable report the dashboard links to, beside the SARIF.
        (request.reports_dir / f"{request.release_envelope.sha256}.html").write_text(
            render_html(outcome), encoding="utf-8"
        )
    return outcome.verdict(request.release_envelope, request.signer)

"""The default re-inspection: the same :func:`clearance.inspection.inspect_release` an
inspector runs, on the artifacts the auditor fetched and the previous release it logged."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from clearance.attest import Release
from clearance.audit.reinspect import Reinspection, Reinspector, ReleaseFiles
from clearance.inspection import inspect_release


def inspection_reinspector(corpus: Sequence[Path] = ()) -> Reinspector:
    """Re-run every registered inspector; ``corpus`` as the inspector's ``--corpus``."""

    def reinspect(
        release: ReleaseFiles, previous: ReleaseFiles | None, work_dir: Path
    ) -> Reinspection:
        work_dir.mkdir(parents=True, exist_ok=True)
        outcome = inspect_release(
            Release.from_envelope(release.envelope),
            release.artifacts_dir,
            previous=None if previous is None else Release.from_envelope(previous.envelope),
            previous_artifacts_dir=None if previous is None else previous.artifacts_dir,
            corpus=tuple(corpus),
            work_dir=work_dir,
        )
        return Reinspection(outcome.summary, outcome.sarif_sha256, dict(outcome.engines))

    return reinspect

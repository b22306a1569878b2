"""Re-running the deterministic inspections on a logged release.

The auditor does not trust the inspector: for each release whose artifacts
it can fetch it recomputes the findings and compares them with the verdict.
:class:`Reinspector` is the seam: the default one calls
``clearance.inspection.inspect_release``; tests and other deployments can pass
their own (e.g. a pinned container running another inspector version).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from clearance.attest import Envelope, Release


@dataclass(frozen=True)
class Reinspection:
    """What the inspections say now: the findings summary ``{ruleId: {severity: count}}``
    (the verdict's format) and the SHA-256 of the SARIF they produce."""

    findings: Mapping[str, Mapping[str, int]]
    sarif_sha256: str | None = None
    engines: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReleaseFiles:
    """A logged release envelope and a folder holding its artifacts under their names."""

    envelope: Envelope
    artifacts_dir: Path


class Reinspector(Protocol):
    def __call__(
        self, release: ReleaseFiles, previous: ReleaseFiles | None, work_dir: Path
    ) -> Reinspection: ...


def summary_of(findings: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """A comparable form: zero counts and empty rules dropped, keys sorted."""
    out: dict[str, dict[str, int]] = {}
    for rule, by_severity in sorted(findings.items()):
        counts = {s: int(n) for s, n in sorted(by_severity.items()) if int(n)}
        if counts:
            out[rule] = counts
    return out


def default_reinspector(corpus: Sequence[Path] = ()) -> Reinspector:
    """The same :func:`clearance.inspection.inspect_release` an inspector runs, on the
    artifacts the auditor fetched and the previous release it logged; ``corpus`` as the
    inspector's ``--corpus``.  :mod:`clearance.inspection` is imported only when
    re-inspecting."""

    def reinspect(
        release: ReleaseFiles, previous: ReleaseFiles | None, work_dir: Path
    ) -> Reinspection:
        from clearance.inspection import inspect_release

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

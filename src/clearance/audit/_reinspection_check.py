"""Re-inspection in an audit: re-run an automated verdict's inspection and compare.

The auditor hands every automated, validly signed verdict on a release it
holds to :meth:`ReinspectionCheck.compare`; the release's artifacts are
fetched from the audit's artifact sources, inspected again (once per release,
the result kept in the audit state) and the findings and SARIF digest
compared with the verdict's.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clearance.attest import Envelope, Release, Verdict
from clearance.audit.reinspect import Reinspection, Reinspector, ReleaseFiles, summary_of
from clearance.audit.rules import AuditFinding
from clearance.audit.sources import ArtifactSource
from clearance.audit.state import AuditState
from clearance.errors import ClearanceError

#: Findings whose counts depend on the machine's speed: they may differ without a lie.
TIMING_RULES = frozenset({"content.slow"})


class ReinspectionCheck:
    def __init__(
        self,
        reinspector: Reinspector | None,
        sources: Sequence[ArtifactSource],
        report: Callable[[AuditFinding], None],
    ) -> None:
        self._reinspector = reinspector
        self._sources = tuple(sources)
        self._report = report

    def compare(
        self, state: AuditState, index: int, verdict: Verdict, release_bytes: bytes
    ) -> None:
        """Re-run the inspection of a release once (cached in ``state``) and report how an
        automated verdict on it differs."""
        if self._reinspector is None:
            return
        cached = state.reinspection(verdict.release_sha256)
        if cached is None:
            status, summary, sarif = self._reinspect(state, release_bytes)
            state.set_reinspection(verdict.release_sha256, status, summary, sarif)
            if status == "unavailable":
                self._report(
                    AuditFinding(
                        "audit.not-reinspected",
                        f"entry {index}: artifacts of {verdict.product} {verdict.version} "
                        "not available, verdict not recomputed",
                        index,
                        {"release_sha256": verdict.release_sha256, **summary},
                    )
                )
            elif status == "failed":
                self._report(
                    AuditFinding(
                        "audit.reinspection-failed",
                        f"entry {index}: re-inspection of {verdict.product} {verdict.version} "
                        f"failed: {summary.get('error', '')}",
                        index,
                        {"release_sha256": verdict.release_sha256, **summary},
                    )
                )
        else:
            status, summary, sarif = cached
        if status != "done":
            return
        logged = summary_of(verdict.findings)
        exact = {k: v for k, v in logged.items() if k not in TIMING_RULES}
        recomputed = {k: v for k, v in summary.items() if k not in TIMING_RULES}
        if exact != recomputed:
            self._report(
                AuditFinding(
                    "audit.findings-mismatch",
                    f"entry {index}: verdict of {verdict.inspector} on {verdict.product} "
                    f"{verdict.version} lists other findings than re-inspection",
                    index,
                    {"verdict": logged, "reinspection": summary},
                )
            )
        elif logged != summary:
            self._report(
                AuditFinding(
                    "audit.timing-differs",
                    f"entry {index}: {verdict.product} {verdict.version}: only timing-dependent "
                    f"findings ({', '.join(sorted(TIMING_RULES))}) differ from the verdict",
                    index,
                    {"verdict": logged, "reinspection": summary},
                )
            )
        # The SARIF digest is compared when the findings agree: a timing difference
        # already explains a different SARIF.
        if logged == summary and verdict.sarif_sha256 and sarif and verdict.sarif_sha256 != sarif:
            self._report(
                AuditFinding(
                    "audit.sarif-mismatch",
                    f"entry {index}: SARIF digest {verdict.sarif_sha256[:16]}… in the verdict, "
                    f"{sarif[:16]}… on re-inspection",
                    index,
                    {"verdict": verdict.sarif_sha256, "reinspection": sarif},
                )
            )

    def _reinspect(
        self, state: AuditState, release_bytes: bytes
    ) -> tuple[str, dict[str, Any], str | None]:
        assert self._reinspector is not None
        envelope = Envelope.from_bytes(release_bytes)
        release = Release.from_envelope(envelope)
        with self._workspace() as work:
            files = self._materialise(envelope, release, work / "release")
            if isinstance(files, list):
                return "unavailable", {"missing": files}, None
            previous = None
            if release.previous is not None:
                held = state.release(release.previous)
                logged = None if held is None else held[4]
                if logged is not None:
                    prev_env = Envelope.from_bytes(logged)
                    prev = self._materialise(
                        prev_env, Release.from_envelope(prev_env), work / "previous"
                    )
                    if not isinstance(prev, list):
                        previous = prev
            try:
                result: Reinspection = self._reinspector(files, previous, work / "work")
            except ClearanceError as exc:
                return "failed", {"error": str(exc)}, None
            except Exception as exc:  # a crash of the inspector is a finding, not a crash
                return "failed", {"error": f"{type(exc).__name__}: {exc}"}, None
        return "done", summary_of(result.findings), result.sarif_sha256

    def _materialise(
        self, envelope: Envelope, release: Release, directory: Path
    ) -> ReleaseFiles | list[str]:
        directory.mkdir(parents=True, exist_ok=True)
        missing: list[str] = []
        for artifact in release.artifacts:
            data = None
            for source in self._sources:
                data = source.fetch(release, artifact)
                if data is not None:
                    break
            if data is None:
                missing.append(artifact.name)
                continue
            target = directory / artifact.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if missing:
            return missing
        return ReleaseFiles(envelope, directory)

    @contextmanager
    def _workspace(self) -> Iterator[Path]:
        path = Path(tempfile.mkdtemp(prefix="clearance-audit-"))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

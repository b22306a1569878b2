"""``inspect_release``: artifacts in, findings + SARIF + decision out."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearance.attest.dsse import Envelope
from clearance.attest.release import Release
from clearance.attest.verdict import create_verdict
from clearance.inspection.base import (
    Artifact,
    InspectionInput,
    InspectionResult,
    Inspector,
    NullProgress,
    ProgressSink,
)
from clearance.inspection.errors import ArtifactError
from clearance.inspection.findings import Finding
from clearance.inspection.policy import VerdictDecision, VerdictPolicy, default_policy
from clearance.inspection.sarif import sarif_bytes, summary, to_sarif
from clearance.keys import Signer

#: A verdict's note is kept short: it travels in every bundle and log entry.
MAX_VERDICT_NOTE = 2000


@dataclass(frozen=True)
class InspectionOutcome:
    """Everything one inspection produced (``sarif`` is deterministic; ``results`` may hold timings)."""

    product: str
    version: str
    previous_version: str | None
    findings: tuple[tuple[str, Finding], ...]
    results: tuple[InspectionResult, ...]
    decision: VerdictDecision
    engines: Mapping[str, str]
    sarif: Mapping[str, Any] = field(repr=False)
    policy_source: str = "default"

    @property
    def sarif_bytes(self) -> bytes:
        return sarif_bytes(self.sarif)

    @property
    def sarif_sha256(self) -> str:
        return hashlib.sha256(self.sarif_bytes).hexdigest()

    @property
    def summary(self) -> dict[str, dict[str, int]]:
        return summary([f for _, f in self.findings])

    def verdict(
        self, release_envelope: Envelope, signers: Signer | Sequence[Signer], note: str = ""
    ) -> Envelope:
        """The signed verdict statement on ``release_envelope`` for this outcome: the one
        place it is built, for ``clearance inspect`` and the gateway's workers alike.

        The note is ``note`` (the inspector's own words, if any) then the policy's
        reasons, cut to :data:`MAX_VERDICT_NOTE` characters.
        """
        reasons = "; ".join(self.decision.reasons)
        text = f"{note} | {reasons}" if note else reasons
        return create_verdict(
            release_envelope,
            self.decision.decision,
            signers=signers,
            findings_summary=self.summary,
            sarif_sha256=self.sarif_sha256,
            engines=dict(self.engines),
            note=text[:MAX_VERDICT_NOTE],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "version": self.version,
            "decision": self.decision.decision,
            "reasons": list(self.decision.reasons),
            "findings": self.summary,
            "sarif_sha256": self.sarif_sha256,
            "engines": dict(self.engines),
        }


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_artifacts(
    release: Release, directory: Path, what: str = "release"
) -> tuple[Artifact, ...]:
    """Find every artifact of ``release`` in ``directory`` by name; check its size and SHA-256."""
    if not directory.is_dir():
        raise ArtifactError(f"{directory}: artifacts folder not found")
    out = []
    for a in release.artifacts:
        # The name is a clean relative path: the release's Artifact checked it when parsed.
        path = directory.joinpath(*a.name.split("/"))
        if not path.is_file():
            raise ArtifactError(f"{path}: artifact {a.name!r} of the {what} is missing")
        size = path.stat().st_size
        if size != a.size:
            raise ArtifactError(
                f"{path}: artifact {a.name!r} is {size} bytes, the {what} says {a.size}"
            )
        if _sha256_file(path) != a.sha256:
            raise ArtifactError(f"{path}: artifact {a.name!r} does not match the {what}'s SHA-256")
        out.append(Artifact(a.name, a.kind, a.sha256, a.size, path))
    return tuple(out)


def inspect_release(
    release: Release,
    artifacts_dir: Path,
    *,
    previous: Release | None = None,
    previous_artifacts_dir: Path | None = None,
    corpus: Sequence[Path] = (),
    evidence: Sequence[Path] = (),
    policy: VerdictPolicy | None = None,
    inspectors: Sequence[Inspector] | None = None,
    work_dir: Path | None = None,
    cache_dir: Path | None = None,
    progress: ProgressSink | None = None,
) -> InspectionOutcome:
    """Inspect ``release``: resolve and check artifacts, run every inspector, decide.

    Raises :class:`~clearance.inspection.errors.InspectionError` (bad input) when
    artifacts are missing or differ from the release; findings never raise.
    """
    from clearance.inspection.registry import default_inspectors

    sink = progress or NullProgress()
    artifacts = resolve_artifacts(release, artifacts_dir)
    prev_artifacts: tuple[Artifact, ...] = ()
    if previous is not None:
        prev_artifacts = resolve_artifacts(
            previous, previous_artifacts_dir or artifacts_dir, "previous release"
        )
    for c in corpus:
        if not c.exists():
            raise ArtifactError(f"{c}: corpus folder not found")
    for e in evidence:
        if not e.exists():
            raise ArtifactError(f"{e}: evidence folder not found")
    chosen = list(inspectors) if inspectors is not None else default_inspectors()
    with tempfile.TemporaryDirectory(prefix="clearance-inspect-") as tmp:
        inp = InspectionInput(
            product=release.product,
            version=release.version,
            artifacts=artifacts,
            previous_artifacts=prev_artifacts,
            declared_endpoints=tuple(release.endpoints),
            build_recipes={k: v.to_dict() for k, v in release.builds.items()},
            corpus=tuple(corpus),
            work_dir=work_dir or Path(tmp),
            evidence=tuple(evidence),
            declared_evidence=release.evidence,
            previous_declared_evidence=previous.evidence if previous is not None else (),
            cache_dir=cache_dir,
        )
        results = []
        for inspector in chosen:
            if not any(inp.of_kind(k) or inp.previous_of_kind(k) for k in inspector.kinds):
                continue
            results.append(inspector.inspect(inp, sink))
    pairs = sorted(
        ((r.inspector, f) for r in results for f in r.findings),
        key=lambda p: (p[1].sort_key(), p[0]),
    )
    engines: dict[str, str] = {}
    for r in results:
        engines.update(r.engines)
    chosen_policy = policy or default_policy()
    decision = chosen_policy.decide([f for _, f in pairs])
    sarif = to_sarif(
        pairs,
        engines,
        {
            "product": release.product,
            "version": release.version,
            "previousVersion": previous.version if previous else None,
            "decision": decision.decision,
            "decisionReasons": list(decision.reasons),
            "policy": chosen_policy.source,
        },
    )
    return InspectionOutcome(
        product=release.product,
        version=release.version,
        previous_version=previous.version if previous else None,
        findings=tuple(pairs),
        results=tuple(results),
        decision=decision,
        engines=engines,
        sarif=sarif,
        policy_source=chosen_policy.source,
    )

"""The interface every inspector (YARA content, binaries, source, ...) implements.

``clearance inspect`` turns a release into one :class:`InspectionInput`,
runs every registered :class:`Inspector` whose kinds the release carries,
and merges their :class:`InspectionResult` into one SARIF log, one HTML
report and one verdict.  A new content format or analysis plugs in by
adding an inspector; callers do not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from clearance.inspection.findings import Finding

ARTIFACT_KINDS = ("content", "binary", "source")


@dataclass(frozen=True)
class Artifact:
    """One artifact of a release, present on local disk at ``path`` (digest already checked)."""

    name: str
    kind: str
    sha256: str
    size: int
    path: Path


@dataclass(frozen=True)
class InspectionInput:
    """Everything an inspector may look at.  Inspectors must not read the clock or the network."""

    product: str
    version: str
    artifacts: tuple[Artifact, ...]
    previous_artifacts: tuple[Artifact, ...] = ()
    declared_endpoints: tuple[str, ...] = ()
    #: Per-binary build recipes declared by the vendor (artifact name -> recipe), see issue 7.
    build_recipes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    corpus: tuple[Path, ...] = ()
    work_dir: Path = Path()
    #: The inspector's evidence corpus (malware samples it holds; see docs/inspection.md).
    evidence: tuple[Path, ...] = ()
    #: (sample SHA-256, rule names) the release and its predecessor declare as evidence.
    declared_evidence: tuple[tuple[str, tuple[str, ...]], ...] = ()
    previous_declared_evidence: tuple[tuple[str, tuple[str, ...]], ...] = ()
    cache_dir: Path | None = None

    def of_kind(self, kind: str) -> tuple[Artifact, ...]:
        return tuple(a for a in self.artifacts if a.kind == kind)

    def previous_of_kind(self, kind: str) -> tuple[Artifact, ...]:
        return tuple(a for a in self.previous_artifacts if a.kind == kind)


@dataclass(frozen=True)
class InspectionResult:
    """What one inspector found.  ``report`` is JSON-able data for its HTML report section."""

    inspector: str
    findings: tuple[Finding, ...] = ()
    engines: Mapping[str, str] = field(default_factory=dict)
    report: Mapping[str, Any] = field(default_factory=dict)


class ProgressSink(Protocol):
    """Where long work reports progress (a ``rich`` progress bar, or nothing)."""

    def start(self, description: str, total: float | None) -> None: ...

    def advance(self, amount: float = 1.0) -> None: ...


class NullProgress:
    """A progress sink that shows nothing."""

    def start(self, description: str, total: float | None) -> None:
        return None

    def advance(self, amount: float = 1.0) -> None:
        return None


class Inspector(Protocol):
    """One analysis of one or more artifact kinds."""

    #: Short stable name, e.g. ``"yara"`` or ``"binary"``.
    name: str
    #: The artifact kinds it examines.
    kinds: tuple[str, ...]

    def inspect(self, inp: InspectionInput, progress: ProgressSink) -> InspectionResult: ...

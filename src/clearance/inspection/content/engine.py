"""The interface a content engine implements (YARA via yara-x first).

An engine turns content files into :class:`~.model.RuleFile` values
(parsing), compiles them in the sandbox (reporting errors, warnings, crashes
and per-file cost) and scans a corpus with the whole set.  The checks only
see the engine-neutral results below, so a new format plugs in by adding an
engine, without touching the checks or the callers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from clearance.inspection.base import ProgressSink
from clearance.inspection.content.model import RuleFile
from clearance.inspection.sandbox import Limits


@dataclass(frozen=True)
class EngineSettings:
    """What the settings of every sandboxed engine hold; each engine adds its own."""

    scan_limits: Limits = field(
        default_factory=lambda: Limits(
            cpu_seconds=7200, address_space_bytes=4 * 2**30, wall_seconds=7200
        )
    )
    #: Per corpus file scan timeout (seconds); beyond it the file is reported as too slow.
    scan_timeout: int = 30
    #: A content file may take at most this long to compile alone.
    compile_budget_seconds: float = 5.0
    #: Matched corpus files kept as evidence per rule (all are counted).
    evidence_files: int = 20
    #: Sandboxed children running at once.
    workers: int = 2
    #: Shards the clean corpus is split into for scanning, each scanned by its own
    #: child; the report is the same bytes whatever the number.
    shards: int = 2


@dataclass(frozen=True)
class Diagnostic:
    """An engine error or warning about a content file."""

    uri: str
    level: str  # "error" | "warning"
    code: str
    message: str
    line: int = 0
    text: str = ""


@dataclass(frozen=True)
class Crash:
    """Compiling or scanning crashed, hung or ran out of memory in the sandbox."""

    uri: str
    phase: str  # "parse" | "compile" | "scan"
    evidence: Mapping[str, Any]
    message: str
    rule_name: str | None = None


@dataclass(frozen=True)
class FileCost:
    """Measured cost of one content file (never written into deterministic output raw)."""

    uri: str
    compile_seconds: float
    #: Extra scan time this file's rules add per MiB of the cost sample.
    scan_ms_per_mib: float
    #: Per-rule cost (rule name -> ms per MiB) when the file was drilled into.
    rules: Mapping[str, float] = field(default_factory=dict)
    #: The engine's own budget for one content file (None: the check settings' budget).
    budget_ms_per_mib: float | None = None
    #: How many content files were timed together to give ``scan_ms_per_mib`` (1: this
    #: file alone).  Engines time groups first and split only groups over budget, so a
    #: figure timed with others is a bound for the file, and never over budget.
    timed_with: int = 1


@dataclass(frozen=True)
class CompileReport:
    """What compiling every content file, one at a time and as a whole, gave."""

    diagnostics: tuple[Diagnostic, ...]
    crashes: tuple[Crash, ...]
    costs: tuple[FileCost, ...]
    #: Files that compiled cleanly and went into the scanning set.
    compiled_uris: tuple[str, ...]
    #: The whole compiled set, serialized (engine-specific), or None if nothing compiled.
    compiled_set: Path | None
    compile_seconds: float
    sample_bytes: int


@dataclass(frozen=True)
class Match:
    """One rule matching one corpus file."""

    rule_name: str
    uri: str
    corpus_file: str
    #: (pattern id, offset, excerpt) for the first few pattern matches.
    strings: tuple[tuple[str, int, str], ...] = ()


@dataclass(frozen=True)
class ScanReport:
    """Result of scanning the clean corpus with the whole set."""

    matches: tuple[Match, ...]
    #: Rule -> how many corpus files it matched (all of them, even beyond kept evidence).
    match_counts: Mapping[tuple[str, str], int]
    files_scanned: int
    bytes_scanned: int
    timeouts: tuple[str, ...]
    crashes: tuple[Crash, ...]
    seconds: float


class ContentEngine(Protocol):
    """One content format and its real engine."""

    #: Short name, e.g. ``"yara"``; also the ``engine`` of the rules it produces.
    name: str

    def version(self) -> str: ...

    def claims(self, path: Path) -> bool:
        """True when ``path`` is content this engine reads (by name/suffix)."""
        ...

    def parse(
        self, files: Sequence[tuple[str, Path]], progress: ProgressSink
    ) -> list[RuleFile]: ...

    def compile(
        self,
        files: Sequence[tuple[str, Path]],
        work_dir: Path,
        sample: Sequence[Path],
        progress: ProgressSink,
    ) -> CompileReport:
        """Compile each (uri, path) alone (errors, warnings, crashes, cost), then the clean ones together."""
        ...

    def scan(
        self,
        report: CompileReport,
        files: Sequence[tuple[str, Path]],
        corpus: Sequence[Path],
        corpus_label: Callable[[Path], str],
        progress: ProgressSink,
        keep: int | None = None,
    ) -> ScanReport:
        """Scan ``corpus`` with the compiled set; keep up to ``keep`` matched files per rule."""
        ...

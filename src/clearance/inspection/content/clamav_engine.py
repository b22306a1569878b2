"""The ClamAV engine: Debian's ``clamscan`` (libclamav) compiles and scans, our parser analyses.

* ``claims``: loose databases (``.hdb .hsb .mdb .msb .ndb .ldb .cdb .fp .sfp
  .ign2 .ign``); ``.cvd``/``.cld`` containers are opened by :meth:`expand`
  (see :mod:`.clamav_container`) into their member databases first.
* ``parse``: :func:`.clamav_format.parse_database` (in-process, linear in the
  size of the file).
* ``compile``: each database is loaded alone by ``clamscan`` in the sandbox;
  a malformed line is an error and is dropped, and loading is retried, so
  every malformed line is named and the rest of the file is still inspected;
  ``clamscan`` dying or hanging is a crash.  The cost of each database on the
  cost sample is measured in CPU time (scan minus load, minus a trivial
  database's); over budget, the database is bisected down to the signatures
  that are over budget (measured per signature in the real engine).
* ``scan``: the cleaned databases together scan the corpus with ``clamscan
  --allmatch`` in 2 sandboxed workers; a corpus file that kills the engine is
  a crash naming it, and the scan resumes after it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearance.inspection.base import ProgressSink
from clearance.inspection.content import _clamav_child as child
from clearance.inspection.content import _orchestration as orchestration
from clearance.inspection.content import clamav_container, clamav_format
from clearance.inspection.content.engine import (
    CompileReport,
    Crash,
    Diagnostic,
    EngineSettings,
    FileCost,
)
from clearance.inspection.content.model import RuleFile
from clearance.inspection.sandbox import Limits, SandboxOutcome, run_sandboxed


@dataclass(frozen=True)
class ClamAVSettings(EngineSettings):
    """Budgets and limits of the ClamAV engine (documented in docs/inspection.md).

    ``scan_timeout`` is also clamscan's ``--max-scantime`` and the limit of one clamscan run.
    """

    compile_limits: Limits = field(
        default_factory=lambda: Limits(
            cpu_seconds=900, address_space_bytes=4 * 2**30, wall_seconds=1800
        )
    )
    #: A database may add at most this much scan CPU time per MiB.  The whole real
    #: maldet database (11,235 signatures) costs under 10 ms/MiB; libclamav bounds
    #: each PCRE by its match limits, so a pathological signature costs tens of ms/MiB.
    budget_ms_per_mib: float = 20.0
    #: Bisect over-budget databases down to their slow signatures.
    drill: bool = True


class ClamAVEngine(orchestration.EngineBase):
    """ClamAV signature databases via Debian's clamscan."""

    name = "clamav"

    def __init__(self, settings: ClamAVSettings | None = None) -> None:
        self.settings = settings or ClamAVSettings()
        self.evidence_files = self.settings.evidence_files
        self._version: str | None = None
        # Parses by (uri, content digest): the analysis, the scan's name-to-database
        # map and the slow-signature names all read the same databases.
        self._parses: dict[tuple[str, str], RuleFile] = {}
        self._parse_lock = threading.Lock()

    def version(self) -> str:
        if self._version is None:
            try:
                out = subprocess.run(
                    [child.CLAMSCAN, "--version"], capture_output=True, timeout=30, check=False
                ).stdout.decode("utf-8", "replace")
                self._version = out.strip().split("/")[0] or "clamscan (unknown version)"
            except (OSError, subprocess.TimeoutExpired):
                self._version = "clamscan not installed"
        return self._version

    def claims(self, path: Path) -> bool:
        return clamav_format.suffix(path.name) != ""

    def expand(self, path: Path, dest: Path) -> tuple[list[Path], list[Diagnostic]] | None:
        """Open a ``.cvd``/``.cld`` container (None for anything else)."""
        if not path.name.lower().endswith(clamav_format.CONTAINER_SUFFIXES):
            return None
        return clamav_container.expand(path, dest)

    def parse(self, files: Sequence[tuple[str, Path]], progress: ProgressSink) -> list[RuleFile]:
        return [self._parse(uri, path) for uri, path in files]

    def _parse(self, uri: str, path: Path) -> RuleFile:
        key = (uri, hashlib.sha256(path.read_bytes()).hexdigest())
        with self._parse_lock:
            if key not in self._parses:
                if len(self._parses) >= 256:  # a long-lived engine must not grow forever
                    self._parses.clear()
                self._parses[key] = clamav_format.parse_database(uri, path)
            return self._parses[key]

    def _available(self) -> bool:
        return shutil.which(child.CLAMSCAN) is not None

    def _compile(self, request: orchestration.CompileRequest) -> CompileReport:
        files = request.files
        work_dir = request.work_dir
        sample = request.sample
        progress = request.progress
        set_dir = work_dir / "clamav-set"
        set_dir.mkdir(parents=True, exist_ok=True)
        if not self._available():
            diags = tuple(
                Diagnostic(uri, "error", "engine_missing", "clamscan is not installed", 0, "")
                for uri, _ in files
            )
            return CompileReport(diags, (), (), (), None, 0.0, 0)
        items = [
            [
                uri,
                str(path),
                clamav_format.suffix(uri) or clamav_format.suffix(path.name),
                str(
                    set_dir / f"f{i}{clamav_format.suffix(uri) or clamav_format.suffix(path.name)}"
                ),
            ]
            for i, (uri, path) in enumerate(files)
        ]
        job = orchestration.ChildJob(
            child.check_databases,
            lambda idx: {
                "items": [items[i] for i in idx],
                "timeout": self.settings.scan_timeout,
            },
            self.settings.compile_limits,
            lambda i, outcome: Crash(
                items[i][0], "compile", outcome.evidence(), f"loading {outcome.describe()}"
            ),
            started_key="start",
        )
        entries, crashes = orchestration.run_per_item(
            job, len(items), self.settings.workers, progress, "loading ClamAV databases"
        )
        measured = self._measure(items, entries, set_dir, sample, crashes)
        diagnostics: list[Diagnostic] = []
        costs: list[FileCost] = []
        clean: list[str] = []
        for index in sorted(entries):
            entry = entries[index]
            uri = entry["uri"]
            for e in entry["errors"]:
                diagnostics.append(
                    Diagnostic(
                        uri, "error", "malformed_signature", e["message"], e["line"], e["text"]
                    )
                )
            for w in entry["warnings"]:
                diagnostics.append(
                    Diagnostic(uri, "warning", "engine_warning", w["message"], 0, "")
                )
            if entry["crash"]:
                c = entry["crash"]
                evidence = {k: v for k, v in c.items() if v}
                crashes.append(
                    Crash(
                        uri,
                        "compile",
                        evidence,
                        f"loading it, clamscan {'hung' if c['status'] == 'timeout' else 'crashed'}"
                        + (f" ({c['signal']})" if c.get("signal") else ""),
                    )
                )
            if not entry["errors"] and not entry["crash"]:
                clean.append(uri)
            cost, together, per_line = measured.get(index, (0.0, 1, {}))
            costs.append(
                FileCost(
                    uri,
                    float(entry["load_s"]),
                    float("inf") if cost == -1.0 else cost,
                    self._rule_names(files[index], per_line),
                    self.settings.budget_ms_per_mib,
                    together,
                )
            )
        loaded = any(p.is_file() for p in set_dir.iterdir())
        return CompileReport(
            diagnostics=tuple(diagnostics),
            crashes=tuple(sorted(crashes, key=lambda c: (c.uri, c.phase))),
            costs=tuple(costs),
            compiled_uris=tuple(clean),
            compiled_set=set_dir if loaded else None,
            compile_seconds=0.0,
            sample_bytes=0,
        )

    def _measure(
        self,
        items: list[list[str]],
        entries: dict[int, dict[str, Any]],
        set_dir: Path,
        sample: Sequence[Path],
        crashes: list[Crash],
    ) -> dict[int, tuple[float, int, dict[str, float]]]:
        """Cost of the loaded databases: the whole set once, each alone only if it is over."""
        loaded = [i for i in sorted(entries) if entries[i]["loads"]]
        if not sample or not loaded:
            return {}
        group: list[int] = []

        def relay(entry: Any) -> None:
            if isinstance(entry, dict) and "measuring" in entry:
                group[:] = entry["measuring"]

        outcome = run_sandboxed(
            child.measure_costs,
            {
                "set": str(set_dir),
                "dbs": [
                    [i, items[i][3], items[i][2], [e["line"] for e in entries[i]["errors"]]]
                    for i in loaded
                ],
                "sample": [str(p) for p in sample],
                "timeout": self.settings.scan_timeout,
                "budget": self.settings.budget_ms_per_mib,
                "drill": self.settings.drill,
            },
            self.settings.compile_limits,
            on_progress=relay,
        )
        if not outcome.ok or not isinstance(outcome.value, dict):
            crashes.append(
                Crash(
                    items[group[0]][0] if len(group) == 1 else "ruleset",
                    "compile",
                    outcome.evidence(),
                    f"measuring the cost of {len(group)} database(s) on the cost sample "
                    f"{outcome.describe()}",
                )
            )
            return {}
        return {
            int(key): (float(cost), int(together), dict(per_line))
            for key, (cost, together, per_line) in outcome.value.items()
        }

    def _rule_names(self, file: tuple[str, Path], per_line: dict[str, float]) -> dict[str, float]:
        if not per_line:
            return {}
        parsed = self._parse(*file)
        by_line = {r.start_line: r.name for r in parsed.rules}
        return {by_line.get(int(n), f"line {n}"): ms for n, ms in per_line.items()}

    def _scan(
        self, request: orchestration.ScanRequest, tally: orchestration.ScanTally
    ) -> list[Crash]:
        if request.report.compiled_set is None:
            return []
        # Signature name -> the database that declares it (clamscan reports names only).
        owner: dict[str, str] = {}
        for uri, path in request.files:
            for rule in self._parse(uri, path).rules:
                owner.setdefault(rule.name, uri)
        # clamscan reads its file list a line each.
        scannable = [p for p in request.corpus if "\n" not in str(p)]
        labels = [request.label(p) for p in scannable]
        crashes: list[Crash] = []

        def on_entry(index: int, entry: dict[str, Any]) -> None:
            if "fatal" in entry:
                # Every shard sees it; one finding says it.
                if not any(c.uri == "ruleset" and c.phase == "scan" for c in crashes):
                    crashes.append(
                        Crash(
                            "ruleset",
                            "scan",
                            {"status": "error", "detail": str(entry["fatal"])[-2000:]},
                            "clamscan could not load the whole set for the corpus scan "
                            "(each database loads alone); nothing was scanned",
                        )
                    )
            elif "crash" in entry:
                crashes.append(self._scan_crash(labels[index], entry["crash"]))
            else:
                tally.file(labels[index], int(entry.get("b", 0)), bool(entry.get("t")))
                for name in entry.get("m", []):
                    tally.match(owner.get(name, "ruleset"), name, labels[index])

        job = orchestration.ChildJob(
            child.scan_corpus,
            lambda idx: {
                "db": str(request.report.compiled_set),
                "files": [str(scannable[i]) for i in idx],
                "timeout": self.settings.scan_timeout,
            },
            self.settings.scan_limits,
            lambda i, outcome: self._sandbox_crash(labels[i], outcome),
        )
        crashes += orchestration.scan_shards(
            job,
            labels,
            [orchestration.file_size(p) for p in scannable],
            self.settings.shards,
            self.settings.workers,
            on_entry,
            request.progress,
            "scanning the clean corpus with clamscan",
        )
        return crashes

    @staticmethod
    def _scan_crash(label: str, crash: dict[str, Any]) -> Crash:
        evidence = {k: v for k, v in crash.items() if v}
        return Crash(
            "ruleset",
            "scan",
            {**evidence, "corpus_file": label},
            f"scanning {label}, clamscan crashed"
            + (f" ({crash['signal']})" if crash.get("signal") else ""),
        )

    @staticmethod
    def _sandbox_crash(label: str, outcome: SandboxOutcome) -> Crash:
        return Crash(
            "ruleset",
            "scan",
            {**outcome.evidence(), "corpus_file": label},
            f"scanning {label} {outcome.describe()}",
        )

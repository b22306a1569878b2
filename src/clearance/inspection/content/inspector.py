"""The detection-content inspector: engine + checks over a release's content artifacts."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from clearance.inspection.archive import ArchiveLimits, is_archive, unpack_archive
from clearance.inspection.base import Artifact, InspectionInput, InspectionResult, ProgressSink
from clearance.inspection.content import analysis_sandbox, lexicon
from clearance.inspection.content._yara_child import probe_regexes
from clearance.inspection.content.checks import Check, CheckContext, default_checks
from clearance.inspection.content.checks._base import CheckSettings
from clearance.inspection.content.clamav_engine import ClamAVEngine
from clearance.inspection.content.engine import CompileReport, ContentEngine, Diagnostic, ScanReport
from clearance.inspection.content.evidence import EvidenceScan, evidence_roots, list_samples
from clearance.inspection.content.hashlist_engine import HashListEngine
from clearance.inspection.content.model import REGEX, RuleFile
from clearance.inspection.content.yara_engine import YaraEngine
from clearance.inspection.corpus import DEFAULT_CAP_BYTES, cost_sample, default_roots, list_corpus
from clearance.inspection.findings import Finding
from clearance.inspection.sandbox import Limits, run_sandboxed

_Source = tuple[str, Path, int]  # (uri, path, index of the engine that reads it)


def _merge_compile(parts: list[CompileReport]) -> CompileReport:
    """One report for the checks out of each engine's report."""
    return CompileReport(
        diagnostics=tuple(d for p in parts for d in p.diagnostics),
        crashes=tuple(c for p in parts for c in p.crashes),
        costs=tuple(c for p in parts for c in p.costs),
        compiled_uris=tuple(u for p in parts for u in p.compiled_uris),
        compiled_set=parts[0].compiled_set if len(parts) == 1 else None,
        compile_seconds=sum(p.compile_seconds for p in parts),
        sample_bytes=max((p.sample_bytes for p in parts), default=0),
    )


def _merge_scan(parts: list[ScanReport]) -> ScanReport:
    counts: dict[tuple[str, str], int] = {}
    for p in parts:
        counts.update(p.match_counts)
    return ScanReport(
        matches=tuple(
            sorted(
                (m for p in parts for m in p.matches),
                key=lambda m: (m.uri, m.rule_name, m.corpus_file),
            )
        ),
        match_counts=counts,
        files_scanned=max((p.files_scanned for p in parts), default=0),
        bytes_scanned=max((p.bytes_scanned for p in parts), default=0),
        timeouts=tuple(sorted({t for p in parts for t in p.timeouts})),
        crashes=tuple(c for p in parts for c in p.crashes),
        seconds=sum(p.seconds for p in parts),
    )


class _Quiet:
    """Progress of background work is not shown (one bar at a time)."""

    def start(self, description: str, total: float | None) -> None:
        return None

    def advance(self, amount: float = 1.0) -> None:
        return None


class ContentInspector:
    """Inspects ``content`` artifacts: rule files and archives of them, one engine per format.

    Each file goes to the first engine whose ``claims()`` accepts it (a single
    artifact nobody claims goes to the first engine, YARA); each engine
    compiles and scans its own files; the checks see the merged results.
    """

    name: str = "content"
    kinds: tuple[str, ...] = ("content",)

    def __init__(
        self,
        engine: ContentEngine | Sequence[ContentEngine] | None = None,
        checks: Sequence[Check] | None = None,
        settings: CheckSettings | None = None,
        archive_limits: ArchiveLimits | None = None,
        default_corpus_bytes: int = DEFAULT_CAP_BYTES,
        analysis_limits: Limits | None = None,
    ) -> None:
        #: Content engines, in routing order; the first also takes files nobody claims.
        self.engines: list[ContentEngine]
        if engine is None:
            self.engines = [YaraEngine(), HashListEngine(), ClamAVEngine()]
        elif isinstance(engine, Sequence):
            self.engines = list(engine)
        else:
            self.engines = [engine]
        self.checks = list(checks) if checks is not None else default_checks()
        first = getattr(self.engines[0], "settings", None)
        self.settings = settings or CheckSettings(
            budget_ms_per_mib=getattr(first, "budget_ms_per_mib", 100.0),
            compile_budget_seconds=getattr(first, "compile_budget_seconds", 5.0),
        )
        self.archive_limits = archive_limits or ArchiveLimits()
        #: Limits of the sandboxed rule analysis: by default the first engine's parse limits.
        engine_limits = getattr(first, "parse_limits", None)
        self.analysis_limits: Limits = analysis_limits or (
            engine_limits if isinstance(engine_limits, Limits) else analysis_sandbox.ANALYSIS_LIMITS
        )
        self.default_corpus_bytes = default_corpus_bytes

    def inspect(self, inp: InspectionInput, progress: ProgressSink) -> InspectionResult:
        artifacts = inp.of_kind("content")
        work = inp.work_dir / "content"
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        self._container_notes: list[Diagnostic] = []
        sources, ignored = self._sources(artifacts, work / "current")
        container_notes = self._container_notes
        prev_sources: list[_Source] | None = None
        if inp.previous_artifacts:
            prev_sources, _ = self._sources(inp.previous_of_kind("content"), work / "previous")
        self._container_notes = []
        corpus_roots = list(inp.corpus) or default_roots()
        progress.start("listing the clean corpus", None)
        corpus = list_corpus(corpus_roots, None if inp.corpus else self.default_corpus_bytes)
        sample = cost_sample(corpus)
        # The independent parse (plyara) and the engine pipeline (compile, cost,
        # corpus scan) need nothing from each other: run them side by side.
        with ThreadPoolExecutor(max_workers=1) as background:
            parsed = background.submit(self._parse_side, sources, prev_sources)
            compiled_parts: list[CompileReport] = []
            scan_parts: list[ScanReport] = []
            runs: dict[int, tuple[CompileReport, list[tuple[str, Path]]]] = {}
            for index, engine in enumerate(self.engines):
                mine = [(uri, path) for uri, path, e in sources if e == index]
                if not mine:
                    continue
                engine_dir = work / f"engine-{engine.name}"
                engine_dir.mkdir(exist_ok=True)
                part = engine.compile(mine, engine_dir, sample, progress)
                compiled_parts.append(part)
                runs[index] = (part, mine)
                scan_parts.append(engine.scan(part, mine, corpus, str, progress))
            compiled, scan = _merge_compile(compiled_parts), _merge_scan(scan_parts)
            evidence = None
            if prev_sources is not None or inp.declared_evidence:
                evidence = self._scan_evidence(inp, runs, prev_sources, work, progress)
            if container_notes:
                compiled = dataclasses.replace(
                    compiled, diagnostics=(*container_notes, *compiled.diagnostics)
                )
            files, previous, pii = parsed.result()
        # The checks that read the rules run in their own sandboxed child, under the engine's
        # limits; after the engines, so that they do not share the CPU with the cost timing.
        analysed, analysis_failures = analysis_sandbox.run_sandboxed_checks(
            [c for c in self.checks if analysis_sandbox.is_sandboxed(c)],
            files,
            pii,
            self.settings,
            self.analysis_limits,
        )
        if evidence is not None:
            evidence = dataclasses.replace(
                evidence,
                previous_rules=frozenset(r.name for f in previous or () for r in f.rules),
            )
        ctx = CheckContext(files, compiled, scan, previous, pii, self.settings, evidence)
        findings: list[Finding] = []
        sandboxed = iter(analysed)
        for check in self.checks:
            if analysis_sandbox.is_sandboxed(check):
                findings.extend(next(sandboxed))
            else:
                findings.extend(check.run(ctx))
        findings.extend(analysis_failures)
        return InspectionResult(
            inspector=self.name,
            findings=tuple(findings),
            engines={e.name: e.version() for e in self.engines},
            report=self._report(files, previous, compiled, scan, ignored, corpus_roots, inp),
        )

    def _scan_evidence(
        self,
        inp: InspectionInput,
        runs: dict[int, tuple[CompileReport, list[tuple[str, Path]]]],
        prev_sources: list[_Source] | None,
        work: Path,
        progress: ProgressSink,
    ) -> EvidenceScan | None:
        """Scan the evidence corpus with this release and with the previous one."""
        samples, digests = list_samples(evidence_roots(inp.evidence))
        if not samples:
            return None

        def label(path: Path) -> str:
            return f"sha256:{digests[path]}"

        def detections(scans: list[ScanReport]) -> dict[str, frozenset[tuple[str, str]]]:
            out: dict[str, set[tuple[str, str]]] = {}
            for part in scans:
                for m in part.matches:
                    out.setdefault(m.corpus_file.removeprefix("sha256:"), set()).add(
                        (m.uri, m.rule_name)
                    )
            return {k: frozenset(v) for k, v in out.items()}

        quiet = _Quiet()
        current = [
            self.engines[i].scan(part, mine, samples, label, quiet, keep=len(samples))
            for i, (part, mine) in sorted(runs.items())
        ]
        previous: list[ScanReport] | None = None
        if prev_sources is not None:
            progress.start("scanning the evidence corpus with the previous release", None)
            previous = []
            for index, engine in enumerate(self.engines):
                mine = [(uri, path) for uri, path, e in prev_sources if e == index]
                if not mine:
                    continue
                engine_dir = work / f"evidence-previous-{engine.name}"
                engine_dir.mkdir(exist_ok=True)
                part = engine.compile(mine, engine_dir, [], quiet)
                previous.append(engine.scan(part, mine, samples, label, quiet, keep=len(samples)))
        return EvidenceScan(
            samples=frozenset(digests.values()),
            current=detections(current),
            previous=detections(previous) if previous is not None else None,
            declared=inp.declared_evidence,
            previous_declared=inp.previous_declared_evidence,
        )

    def _parse_side(
        self, sources: list[_Source], prev_sources: list[_Source] | None
    ) -> tuple[
        tuple[RuleFile, ...],
        tuple[RuleFile, ...] | None,
        dict[tuple[str, str, str], tuple[str, ...]],
    ]:
        # An update usually keeps most files unchanged: parse each distinct content once.
        everything = list(sources) + list(prev_sources or [])
        digests = [
            f"{e}:{hashlib.sha256(path.read_bytes()).hexdigest()}" for _, path, e in everything
        ]
        first: dict[str, int] = {}
        for index, digest in enumerate(digests):
            first.setdefault(digest, index)
        unique = sorted(set(first.values()))
        parsed: dict[int, RuleFile] = {}
        for number, engine in enumerate(self.engines):
            mine = [i for i in unique if everything[i][2] == number]
            results = engine.parse([everything[i][:2] for i in mine], _Quiet())
            parsed.update(zip(mine, results, strict=True))
        out: list[RuleFile] = []
        for index, (uri, path, _) in enumerate(everything):
            base = parsed[first[digests[index]]]
            if base.uri == uri:
                out.append(base)
            else:
                rules = tuple(dataclasses.replace(r, uri=uri) for r in base.rules)
                out.append(dataclasses.replace(base, uri=uri, path=path, rules=rules))
        files = tuple(out[: len(sources)])
        previous = tuple(out[len(sources) :]) if prev_sources is not None else None
        return files, previous, self._probe_pii(files)

    # --- inputs -------------------------------------------------------------------------------

    def _route(self, path: Path) -> int | None:
        return next((i for i, e in enumerate(self.engines) if e.claims(path)), None)

    def _expand(self, uri: str, path: Path, dest: Path) -> list[_Source] | None:
        """Containers an engine opens itself (ClamAV .cvd/.cld): their member files."""
        for index, engine in enumerate(self.engines):
            expand = getattr(engine, "expand", None)
            if expand is None:
                continue
            opened = expand(path, dest)
            if opened is None:
                continue
            members, notes = opened
            self._container_notes.extend(dataclasses.replace(n, uri=uri) for n in notes)
            root = dest / "members"
            return [(f"{uri}/{m.relative_to(root).as_posix()}", m, index) for m in members]
        return None

    def _sources(
        self, artifacts: Sequence[Artifact], dest: Path
    ) -> tuple[list[_Source], list[str]]:
        sources: list[_Source] = []
        ignored: list[str] = []
        for artifact in sorted(artifacts, key=lambda a: a.name):
            safe = artifact.name.replace("/", "_")
            opened = self._expand(artifact.name, artifact.path, dest / f"{safe}.d")
            if opened is not None:
                sources.extend(opened)
            elif is_archive(artifact.path):
                target = dest / safe
                for path in unpack_archive(artifact.path, target, self.archive_limits):
                    uri = f"{artifact.name}/{path.relative_to(target).as_posix()}"
                    inner = self._expand(uri, path, dest / f"{safe}.{len(sources)}.d")
                    if inner is not None:
                        sources.extend(inner)
                        continue
                    engine = self._route(path)
                    if engine is not None:
                        sources.append((uri, path, engine))
                    else:
                        ignored.append(uri)
            else:
                # A single content file goes to the first engine (YARA) unless one claims it.
                engine = self._route(artifact.path)
                sources.append((artifact.name, artifact.path, engine or 0))
        return sorted(sources), sorted(ignored)

    def _probe_pii(self, files: Sequence[RuleFile]) -> dict[tuple[str, str, str], tuple[str, ...]]:
        regexes: list[list[str]] = []
        owners: list[tuple[str, str, str]] = []
        for f in files:
            for rule in f.rules:
                for p in rule.patterns:
                    if p.kind == REGEX:
                        owners.append((f.uri, rule.name, p.identifier))
                        regexes.append([str(len(regexes)), p.value])
        if not regexes:
            return {}
        outcome = run_sandboxed(
            probe_regexes,
            {
                "regexes": regexes,
                "samples": [list(s) for s in lexicon.PII_SAMPLES],
                "control": lexicon.PII_CONTROL,
            },
            Limits(cpu_seconds=120, wall_seconds=300),
        )
        if not outcome.ok or not isinstance(outcome.value, dict):
            return {}
        return {
            owners[int(key)]: tuple(sorted(set(labels))) for key, labels in outcome.value.items()
        }

    # --- the report's data (JSON-able; timings allowed here, never in SARIF) ---------------------

    def _report(
        self,
        files: Sequence[RuleFile],
        previous: Sequence[RuleFile] | None,
        compiled: CompileReport,
        scan: ScanReport,
        ignored: list[str],
        corpus_roots: list[Path],
        inp: InspectionInput,
    ) -> dict[str, Any]:
        rules = [r for f in files for r in f.rules]
        costs: list[dict[str, Any]] = sorted(
            (
                {
                    "uri": c.uri,
                    "ms_per_mib": c.scan_ms_per_mib if c.scan_ms_per_mib != float("inf") else -1.0,
                    "compile_s": round(c.compile_seconds, 4),
                    "rules": dict(c.rules),
                }
                for c in compiled.costs
            ),
            key=lambda c: (
                -float(c["ms_per_mib"]) if c["ms_per_mib"] != -1.0 else float("-inf"),
                str(c["uri"]),
            ),
        )
        rate = scan.bytes_scanned / scan.seconds / 2**20 if scan.seconds else 0.0
        diff: dict[str, list[str]] | None = None
        if previous is not None:
            old = {r.name for f in previous for r in f.rules}
            new = {r.name for r in rules}
            diff = {"added": sorted(new - old), "removed": sorted(old - new)}
        stats = [
            ["content files", str(len(files))],
            ["rules parsed", str(len(rules))],
            ["files compiled cleanly", str(len(compiled.compiled_uris))],
            ["compiling every file alone + measuring cost (s)", f"{compiled.compile_seconds:.2f}"],
            ["clean corpus", ", ".join(str(r) for r in corpus_roots)],
            ["corpus files scanned", str(scan.files_scanned)],
            ["corpus bytes scanned", f"{scan.bytes_scanned / 2**20:.1f} MiB"],
            [
                "whole-set scan rate",
                f"{rate:.1f} MiB/s ({scan.seconds:.1f} s, {getattr(getattr(self.engines[0], 'settings', None), 'workers', 2)} workers)",
            ],
            ["scan budget per content file", f"{self.settings.budget_ms_per_mib:g} ms per MiB"],
            ["cost sample", f"{compiled.sample_bytes / 2**20:.2f} MiB"],
        ]
        if ignored:
            stats.append(["files in archives not read as content", str(len(ignored))])
        return {
            "costs": costs[:200],
            "diff": diff,
            "scan": {
                "files": scan.files_scanned,
                "bytes": scan.bytes_scanned,
                "seconds": scan.seconds,
                "mib_per_s": rate,
            },
            "sections": [
                {
                    "title": "Detection content: engine and corpus",
                    "paragraphs": [
                        "Content was compiled and scanned with the real engines "
                        f"({', '.join(e.version() for e in self.engines)}) in sandboxed child "
                        "processes; the clean corpus was scanned with the whole set.",
                    ],
                    "tables": [
                        {
                            "caption": "Figures of this run",
                            "columns": ["what", "value"],
                            "rows": stats,
                        }
                    ],
                    "code": [],
                }
            ],
        }

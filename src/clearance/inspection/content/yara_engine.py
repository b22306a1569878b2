"""The YARA engine: yara-x for compiling and scanning, plyara as the independent parser.

Every call into either runs in the sandbox (:mod:`clearance.inspection.sandbox`).
Work is streamed item by item, so when the engine dies on one content file
(or one corpus file) the parent records a :class:`~.engine.Crash` for exactly
that item and resumes with the next one.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yara_x

from clearance.inspection.base import ProgressSink
from clearance.inspection.content import _yara_child as child
from clearance.inspection.content import _yara_compile
from clearance.inspection.content._bisect import split_buildable
from clearance.inspection.content._orchestration import (
    ChildJob,
    CompileRequest,
    EngineBase,
    ScanRequest,
    ScanTally,
    crash_order,
    file_size,
    run_per_item,
    run_resumable,
    scan_shards,
)
from clearance.inspection.content._yara_rules import to_rule
from clearance.inspection.content.engine import (
    CompileReport,
    Crash,
    Diagnostic,
    EngineSettings,
    FileCost,
)
from clearance.inspection.content.model import RuleFile
from clearance.inspection.sandbox import Limits, SandboxOutcome, run_sandboxed

YARA_SUFFIXES = (".yar", ".yara", ".rule", ".rules")
#: A condition comparing the ``md5`` external (hashing every corpus file is only paid then).
_USES_MD5 = re.compile(
    r"(?<![\w.])md5\s*(?:==|!=|contains|icontains|matches|startswith|endswith|iequals|istartswith|iendswith)"
    r"|(?:==|!=)\s*md5(?![\w(])"
)


@dataclass(frozen=True)
class YaraSettings(EngineSettings):
    """Budgets and limits of the YARA engine (documented in docs/inspection.md)."""

    parse_limits: Limits = field(
        default_factory=lambda: Limits(
            cpu_seconds=300, address_space_bytes=3 * 2**30, wall_seconds=600
        )
    )
    compile_limits: Limits = field(
        default_factory=lambda: Limits(
            cpu_seconds=300, address_space_bytes=4 * 2**30, wall_seconds=600
        )
    )
    #: A content file may add at most this many milliseconds of scan time per MiB scanned.
    budget_ms_per_mib: float = 100.0
    #: Crashing corpus files for which the culprit content file is searched.
    attribute_crashes: int = 3


class YaraEngine(EngineBase):
    """YARA rules via yara-x (the real engine) and plyara (the parser)."""

    name = "yara"

    def __init__(self, settings: YaraSettings | None = None) -> None:
        self.settings = settings or YaraSettings()
        self.evidence_files = self.settings.evidence_files

    def version(self) -> str:
        try:
            from importlib.metadata import version

            return f"yara-x {version('yara-x')}, plyara {version('plyara')}"
        except Exception:  # metadata missing only in broken installs
            return f"yara-x {getattr(yara_x, '__version__', 'unknown')}"

    def claims(self, path: Path) -> bool:
        return path.name.lower().endswith(YARA_SUFFIXES)

    # --- parsing ---------------------------------------------------------------------------

    def parse(self, files: Sequence[tuple[str, Path]], progress: ProgressSink) -> list[RuleFile]:
        items = [[uri, str(path)] for uri, path in files]
        job = ChildJob(
            child.parse_files,
            lambda idx: {"files": [items[i] for i in idx]},
            self.settings.parse_limits,
            lambda i, outcome: Crash(
                items[i][0], "parse", outcome.evidence(), f"parsing {outcome.describe()}"
            ),
        )
        results, crashes = run_per_item(
            job, len(items), self.settings.workers, progress, "parsing rules"
        )
        crashed = {c.uri: c for c in crashes}
        out = []
        for index, (uri, path) in enumerate(files):
            text = path.read_bytes().decode("utf-8", "replace")
            entry = results.get(index)
            if entry is None:
                error = crashed[uri].message if uri in crashed else "not parsed"
                out.append(RuleFile(uri, path, self.name, text, (), error))
                continue
            lines = tuple(text.splitlines())
            rules = tuple(to_rule(uri, lines, r) for r in entry["rules"])
            out.append(RuleFile(uri, path, self.name, text, rules, entry["error"], lines))
        return out

    # --- compiling ------------------------------------------------------------------------

    def _compile(self, request: CompileRequest) -> CompileReport:
        files = request.files
        work_dir = request.work_dir
        sample = request.sample
        progress = request.progress
        items = [[uri, str(path)] for uri, path in files]
        set_path = work_dir / "ruleset.yarc"
        progress.start("compiling rules and measuring their cost", len(items))
        run = _CompileRun(self.settings, items, sample, set_path, progress)
        run.run(list(range(len(items))))
        clean = [i for i in sorted(run.entries) if not run.entries[i]["errors"]]
        crashes = list(run.crashes)
        compiled: Path | None = set_path if run.built else None
        if clean and run.failure is not None:
            # Files that compile alone but not together: find and set aside each
            # culprit, then build and scan the rest (one failure must not hide all).
            progress.start("isolating the files that break the rule set", None)
            failure = run.failure
            clean, culprits = split_buildable(clean, lambda idx: self._build(items, idx).ok)
            for index in culprits:
                alone = self._build(items, [index])
                crashes.append(
                    Crash(
                        items[index][0],
                        "compile",
                        alone.evidence(),
                        f"compiling {alone.describe()}",
                    )
                    if not alone.ok
                    else Crash(
                        items[index][0],
                        "compile",
                        failure.evidence(),
                        "compiling it together with the other files of the release "
                        f"{failure.describe()} (it compiles alone); the rest was inspected",
                    )
                )
            if clean:
                again = _CompileRun(self.settings, items, sample, set_path, progress)
                again.run(clean)
                crashes += again.crashes
                run.costs.update(again.costs)
                compiled = set_path if again.built else None
        costs = []
        for index in sorted(run.entries):
            cost, timed_with, per_rule = run.costs.get(index, (0.0, 1, {}))
            costs.append(
                FileCost(
                    items[index][0],
                    float(run.entries[index]["compile_s"]),
                    float("inf") if cost == -1.0 else cost,
                    per_rule,
                    timed_with=timed_with,
                )
            )
        return CompileReport(
            diagnostics=tuple(
                Diagnostic(items[i][0], d["level"], d["code"], d["message"], d["line"], d["text"])
                for i in sorted(run.entries)
                for d in run.entries[i]["errors"] + run.entries[i]["warnings"]
            ),
            crashes=tuple(sorted(crashes, key=lambda c: (c.uri, c.phase))),
            costs=tuple(costs),
            compiled_uris=tuple(items[i][0] for i in clean),
            compiled_set=compiled,
            compile_seconds=0.0,
            sample_bytes=0,
        )

    def _build(self, items: list[list[str]], indexes: list[int]) -> SandboxOutcome:
        """Build ``indexes`` alone into a throw-away set (is it the set that breaks?)."""
        with tempfile.TemporaryDirectory(prefix="yara-build-") as tmp:
            return run_sandboxed(
                child.build_set,
                {"files": [[f"f{i}", *items[i]] for i in indexes], "out": f"{tmp}/set.yarc"},
                self.settings.compile_limits,
            )

    # --- scanning the corpus ---------------------------------------------------------------

    def _scan(self, request: ScanRequest, tally: ScanTally) -> list[Crash]:
        report = request.report
        files = request.files
        corpus = request.corpus
        corpus_label = request.label
        progress = request.progress
        if report.compiled_set is None:
            return []
        # Namespaces are named by each file's position in ``files`` (as compiled).
        uri_of_ns = {f"f{i}": uri for i, (uri, _) in enumerate(files)}
        uses_md5 = any(_USES_MD5.search(path.read_text(errors="replace")) for _, path in files)
        labels = [corpus_label(p) for p in corpus]

        def on_entry(index: int, entry: dict[str, Any]) -> None:
            tally.file(labels[index], int(entry.get("b", 0)), bool(entry.get("t")))
            for namespace, rule, strings in entry.get("m", []):
                found = tuple((s[0], int(s[1]), s[2]) for s in strings)
                tally.match(uri_of_ns.get(namespace, namespace), rule, labels[index], found)

        job = ChildJob(
            child.scan_corpus,
            lambda idx: {
                "compiled": str(report.compiled_set),
                "files": [str(corpus[i]) for i in idx],
                "timeout": self.settings.scan_timeout,
                "md5": uses_md5,
            },
            self.settings.scan_limits,
            lambda i, outcome: Crash(
                "ruleset",
                "scan",
                {**outcome.evidence(), "corpus_file": labels[i]},
                f"scanning {labels[i]} {outcome.describe()}",
            ),
        )
        crashes = scan_shards(
            job,
            labels,
            [file_size(p) for p in corpus],
            self.settings.shards,
            self.settings.workers,
            on_entry,
            progress,
            "scanning the clean corpus",
        )
        return self._attribute(crashes, report, files)

    def _attribute(
        self, crashes: list[Crash], report: CompileReport, files: Sequence[tuple[str, Path]]
    ) -> list[Crash]:
        """Re-run a crashing corpus file with each content file alone to name the culprit.

        Bounded: only the first few crashing corpus files are attributed; a crash that
        needs the whole set together stays on ``ruleset``.
        """
        clean = set(report.compiled_uris)
        items = [[uri, str(path)] for uri, path in files if uri in clean]
        out: list[Crash] = []
        for number, crash in enumerate(sorted(crashes, key=crash_order)):
            corpus_file = crash.evidence.get("corpus_file")
            if number >= self.settings.attribute_crashes or not corpus_file or not items:
                out.append(crash)
                continue
            target = str(corpus_file)

            def blame(index: int, outcome: SandboxOutcome, target: str = target) -> Crash:
                return Crash(
                    items[index][0],
                    "scan",
                    {**outcome.evidence(), "corpus_file": target},
                    f"scanning {target} with this file's rules alone {outcome.describe()}",
                )

            job = ChildJob(
                child.scan_with_each,
                lambda idx, target=target: {  # type: ignore[misc]
                    "files": [items[i] for i in idx],
                    "target": target,
                    "timeout": self.settings.scan_timeout,
                },
                self.settings.scan_limits,
                blame,
                started_key="start",
            )
            blamed = run_resumable(job, list(range(len(items))), lambda i, entry: None)
            out.extend(blamed or [crash])
        return out


class _CompileRun:
    """One sandboxed compile of a set of files; a file the engine dies on is set aside."""

    def __init__(
        self,
        settings: YaraSettings,
        items: list[list[str]],
        sample: Sequence[Path],
        out: Path,
        progress: ProgressSink,
    ) -> None:
        self.settings = settings
        self.items = items
        self.sample = [str(p) for p in sample]
        self.out = out
        self.progress = progress
        self.entries: dict[int, dict[str, Any]] = {}
        self.costs: dict[int, tuple[float, int, dict[str, float]]] = {}
        self.crashes: list[Crash] = []
        self.built = False
        #: Set when building (not adding one file) failed: bisect the set.
        self.failure: SandboxOutcome | None = None

    def run(self, indexes: list[int]) -> None:
        remaining = list(indexes)
        while remaining:
            batch = list(remaining)
            seen: dict[str, Any] = {"start": -1, "stage": "", "measuring": []}

            def relay(entry: Any, batch: list[int] = batch, seen: dict[str, Any] = seen) -> None:
                if not isinstance(entry, dict):
                    return
                if "uri" in entry:
                    if batch[entry["i"]] not in self.entries:
                        self.progress.advance(1)
                    self.entries[batch[entry["i"]]] = entry
                elif "start" in entry:
                    seen["start"] = batch[entry["start"]]
                elif "measuring" in entry:
                    seen["measuring"] = [batch[i] for i in entry["measuring"]]
                elif "stage" in entry:
                    seen["stage"] = entry["stage"]
                elif "built" in entry:
                    self.built = True
                elif "cost" in entry:
                    for key, (cost, together) in entry["cost"].items():
                        rules = entry["per_rule"].get(key, {})
                        self.costs[batch[int(key)]] = (float(cost), int(together), rules)

            outcome = run_sandboxed(
                _yara_compile.compile_files,
                {
                    "files": [self.items[i] for i in batch],
                    "namespaces": [f"f{i}" for i in batch],
                    "sample": self.sample,
                    "budget_ms_per_mib": self.settings.budget_ms_per_mib,
                    "timeout": self.settings.scan_timeout,
                    "out": str(self.out),
                },
                self.settings.compile_limits,
                on_progress=relay,
            )
            if outcome.ok:
                return
            if self.built:
                self._measuring_crash(seen["measuring"], outcome)
            elif seen["stage"]:
                self.failure = outcome
            else:
                # The engine died adding one file (or before the first): blame that
                # file, compile the others again.
                culprit = seen["start"] if seen["start"] >= 0 else batch[0]
                self.crashes.append(
                    Crash(
                        self.items[culprit][0],
                        "compile",
                        outcome.evidence(),
                        f"compiling {outcome.describe()}",
                    )
                )
                self.entries.pop(culprit, None)
                remaining.remove(culprit)
                continue
            return

    def _measuring_crash(self, group: list[int], outcome: SandboxOutcome) -> None:
        uri = self.items[group[0]][0] if len(group) == 1 else "ruleset"
        self.crashes.append(
            Crash(
                uri,
                "compile",
                outcome.evidence(),
                f"measuring the cost of {len(group)} file(s) on the cost sample "
                f"{outcome.describe()}",
            )
        )

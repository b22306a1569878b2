"""The YARA engine: yara-x for compiling and scanning, plyara as the independent parser.

Every call into either runs in the sandbox (:mod:`clearance.inspection.sandbox`).
Work is streamed item by item, so when the engine dies on one content file
(or one corpus file) the parent records a :class:`~.engine.Crash` for exactly
that item and resumes with the next one.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yara_x

from clearance.inspection.base import ProgressSink
from clearance.inspection.content import _yara_child as child
from clearance.inspection.content._bisect import split_buildable
from clearance.inspection.content.engine import (
    CompileReport,
    Crash,
    Diagnostic,
    FileCost,
    Match,
    ScanReport,
)
from clearance.inspection.content.model import ContentRule, RuleFile, RulePattern
from clearance.inspection.sandbox import Limits, SandboxOutcome, run_sandboxed

YARA_SUFFIXES = (".yar", ".yara", ".rule", ".rules")
#: A condition comparing the ``md5`` external (hashing every corpus file is only paid then).
_USES_MD5 = re.compile(
    r"(?<![\w.])md5\s*(?:==|!=|contains|icontains|matches|startswith|endswith|iequals|istartswith|iendswith)"
    r"|(?:==|!=)\s*md5(?![\w(])"
)


@dataclass(frozen=True)
class YaraSettings:
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
    scan_limits: Limits = field(
        default_factory=lambda: Limits(
            cpu_seconds=7200, address_space_bytes=4 * 2**30, wall_seconds=7200
        )
    )
    #: Per corpus file scan timeout (seconds); beyond it the file is reported as too slow.
    scan_timeout: int = 30
    #: A content file may add at most this many milliseconds of scan time per MiB scanned.
    budget_ms_per_mib: float = 100.0
    #: A content file may take at most this long to compile alone.
    compile_budget_seconds: float = 5.0
    #: Matched corpus files kept as evidence per rule (all are counted).
    evidence_files: int = 20
    workers: int = 2
    #: Crashing corpus files for which the culprit content file is searched.
    attribute_crashes: int = 3


class YaraEngine:
    """YARA rules via yara-x (the real engine) and plyara (the parser)."""

    name = "yara"

    def __init__(self, settings: YaraSettings | None = None) -> None:
        self.settings = settings or YaraSettings()

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
        results: dict[int, dict[str, Any]] = {}
        progress.start("parsing rules", len(items))
        lock = threading.Lock()

        def run_part(part: list[int]) -> list[Crash]:
            def on_item(entry: dict[str, Any]) -> None:
                with lock:
                    results[part[entry["i"]]] = entry
                    progress.advance(1)

            return _run_resumable(
                child.parse_files,
                part,
                lambda idx: {"files": [items[i] for i in idx]},
                self.settings.parse_limits,
                on_item,
                lambda idx, outcome: Crash(
                    items[idx][0], "parse", outcome.evidence(), f"parsing {outcome.describe()}"
                ),
                started_key=None,
            )

        crashes = _in_parallel(
            run_part, _split_even(list(range(len(items))), self.settings.workers)
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
            rules = tuple(_to_rule(uri, lines, r) for r in entry["rules"])
            out.append(RuleFile(uri, path, self.name, text, rules, entry["error"], lines))
        return out

    # --- compiling ------------------------------------------------------------------------

    def compile(
        self,
        files: Sequence[tuple[str, Path]],
        work_dir: Path,
        sample: Sequence[Path],
        progress: ProgressSink,
    ) -> CompileReport:
        started = time.perf_counter()
        items = [[uri, str(path)] for uri, path in files]
        entries: dict[int, dict[str, Any]] = {}
        progress.start("compiling rules", len(items))
        lock = threading.Lock()

        def run_part(part: list[int]) -> list[Crash]:
            def on_item(entry: dict[str, Any]) -> None:
                with lock:
                    entries[part[entry["i"]]] = entry
                    progress.advance(1)

            return _run_resumable(
                child.compile_files,
                part,
                lambda idx: {
                    "files": [items[i] for i in idx],
                    "sample": [str(p) for p in sample],
                    "budget_ms_per_mib": self.settings.budget_ms_per_mib,
                    "timeout": self.settings.scan_timeout,
                },
                self.settings.compile_limits,
                on_item,
                lambda idx, outcome: Crash(
                    items[idx][0], "compile", outcome.evidence(), f"compiling {outcome.describe()}"
                ),
                started_key="start",
            )

        crashes = _in_parallel(
            run_part, _split_even(list(range(len(items))), self.settings.workers)
        )
        diagnostics: list[Diagnostic] = []
        costs: list[FileCost] = []
        clean: list[int] = []
        for index in sorted(entries):
            entry = entries[index]
            uri = entry["uri"]
            for d in entry["errors"] + entry["warnings"]:
                diagnostics.append(
                    Diagnostic(uri, d["level"], d["code"], d["message"], d["line"], d["text"])
                )
            if not entry["errors"]:
                clean.append(index)
            cost = entry["cost"]
            costs.append(
                FileCost(
                    uri,
                    float(entry["compile_s"]),
                    float("inf") if cost == -1.0 else float(cost or 0.0),
                    {k: float(v) for k, v in entry["per_rule"].items()},
                )
            )
        compiled: Path | None = None
        if clean:
            progress.start("building the rule set", None)
            set_path = work_dir / "ruleset.yarc"
            compiled = set_path
            outcome = self._build_set([items[i] for i in clean], set_path)
            if not outcome.ok:
                # Files that compile alone but not together: find and set aside each
                # culprit, then build and scan the rest (one failure must not hide all).
                progress.start("isolating the files that break the rule set", None)
                kept, culprits = split_buildable(
                    clean, lambda idx: self._build_set([items[i] for i in idx], set_path).ok
                )
                for index in culprits:
                    crashes.append(
                        Crash(
                            items[index][0],
                            "compile",
                            outcome.evidence(),
                            "compiling it together with the other files of the release "
                            f"{outcome.describe()} (it compiles alone); the rest was inspected",
                        )
                    )
                clean = kept
                if not clean or not self._build_set([items[i] for i in clean], set_path).ok:
                    crashes.append(
                        Crash(
                            "ruleset",
                            "compile",
                            outcome.evidence(),
                            f"compiling the whole set {outcome.describe()}",
                        )
                    )
                    compiled = None
        return CompileReport(
            diagnostics=tuple(diagnostics),
            crashes=tuple(sorted(crashes, key=lambda c: (c.uri, c.phase))),
            costs=tuple(costs),
            compiled_uris=tuple(items[i][0] for i in clean),
            compiled_set=compiled,
            compile_seconds=time.perf_counter() - started,
            sample_bytes=sum(p.stat().st_size for p in sample),
        )

    def _build_set(self, files: list[list[str]], out: Path) -> SandboxOutcome:
        return run_sandboxed(
            child.build_set, {"files": files, "out": str(out)}, self.settings.compile_limits
        )

    # --- scanning the corpus ---------------------------------------------------------------

    def scan(
        self,
        report: CompileReport,
        files: Sequence[tuple[str, Path]],
        corpus: Sequence[Path],
        corpus_label: Callable[[Path], str],
        progress: ProgressSink,
        keep: int | None = None,
    ) -> ScanReport:
        started = time.perf_counter()
        if report.compiled_set is None or not corpus:
            return ScanReport((), {}, 0, 0, (), (), 0.0)
        uri_of_ns = {f"f{i}": uri for i, uri in enumerate(report.compiled_uris)}
        uses_md5 = any(_USES_MD5.search(path.read_text(errors="replace")) for _, path in files)
        sizes = [_size(p) for p in corpus]
        progress.start("scanning the clean corpus", float(sum(sizes)))
        lock = threading.Lock()
        state = _ScanState(keep or self.settings.evidence_files)

        def run_part(part: list[int]) -> list[Crash]:
            def on_item(entry: dict[str, Any]) -> None:
                path = corpus[part[entry["i"]]]
                with lock:
                    state.add(entry, corpus_label(path), uri_of_ns)
                    progress.advance(float(sizes[part[entry["i"]]]))

            return _run_resumable(
                child.scan_corpus,
                part,
                lambda idx: {
                    "compiled": str(report.compiled_set),
                    "files": [str(corpus[i]) for i in idx],
                    "timeout": self.settings.scan_timeout,
                    "md5": uses_md5,
                },
                self.settings.scan_limits,
                on_item,
                lambda idx, outcome: Crash(
                    "ruleset",
                    "scan",
                    {**outcome.evidence(), "corpus_file": corpus_label(corpus[idx])},
                    f"scanning {corpus_label(corpus[idx])} {outcome.describe()}",
                ),
                started_key=None,
            )

        crashes = _in_parallel(run_part, _balance(sizes, self.settings.workers))
        crashes = self._attribute(crashes, report, files)
        return ScanReport(
            matches=tuple(state.matches()),
            match_counts=dict(state.counts),
            files_scanned=state.files,
            bytes_scanned=state.bytes,
            timeouts=tuple(sorted(state.timeouts)),
            crashes=tuple(sorted(crashes, key=lambda c: c.message)),
            seconds=time.perf_counter() - started,
        )

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
        for number, crash in enumerate(sorted(crashes, key=lambda c: c.message)):
            corpus_file = crash.evidence.get("corpus_file")
            if number >= self.settings.attribute_crashes or not corpus_file or not items:
                out.append(crash)
                continue
            target = str(corpus_file)

            def make_args(idx: list[int], target: str = target) -> dict[str, Any]:
                return {
                    "files": [items[i] for i in idx],
                    "target": target,
                    "timeout": self.settings.scan_timeout,
                }

            def blame(index: int, outcome: SandboxOutcome, target: str = target) -> Crash:
                return Crash(
                    items[index][0],
                    "scan",
                    {**outcome.evidence(), "corpus_file": target},
                    f"scanning {target} with this file's rules alone {outcome.describe()}",
                )

            blamed = _run_resumable(
                child.scan_with_each,
                list(range(len(items))),
                make_args,
                self.settings.scan_limits,
                lambda entry: None,
                blame,
                started_key="start",
            )
            out.extend(blamed or [crash])
        return out


class _ScanState:
    """Aggregates scan results with memory bounded by rules, not by corpus size."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.counts: dict[tuple[str, str], int] = {}
        self.kept: dict[tuple[str, str], list[Match]] = {}
        self.files = 0
        self.bytes = 0
        self.timeouts: list[str] = []

    def add(self, entry: dict[str, Any], label: str, uri_of_ns: dict[str, str]) -> None:
        self.files += 1
        self.bytes += int(entry.get("b", 0))
        if entry.get("t"):
            self.timeouts.append(label)
        for namespace, rule, strings in entry.get("m", []):
            key = (uri_of_ns.get(namespace, namespace), rule)
            self.counts[key] = self.counts.get(key, 0) + 1
            kept = self.kept.setdefault(key, [])
            kept.append(Match(rule, key[0], label, tuple((s[0], int(s[1]), s[2]) for s in strings)))
            if len(kept) > self.keep:
                kept.sort(key=lambda m: m.corpus_file)
                del kept[self.keep :]

    def matches(self) -> list[Match]:
        out = [m for kept in self.kept.values() for m in kept]
        return sorted(out, key=lambda m: (m.uri, m.rule_name, m.corpus_file))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _split_even(items: list[int], parts: int) -> list[list[int]]:
    return [p for p in (items[i::parts] for i in range(parts)) if p]


def _balance(sizes: list[int], parts: int) -> list[list[int]]:
    """Longest-processing-time-first: both workers finish at about the same time."""
    bins: list[list[int]] = [[] for _ in range(parts)]
    loads = [0] * parts
    for index in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        target = loads.index(min(loads))
        bins[target].append(index)
        loads[target] += sizes[index]
    return [b for b in bins if b]


def _in_parallel(func: Callable[[list[int]], list[Crash]], parts: list[list[int]]) -> list[Crash]:
    if len(parts) <= 1:
        return [c for p in parts for c in func(p)]
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        return [c for crashes in pool.map(func, parts) for c in crashes]


def _run_resumable(
    func: Callable[..., Any],
    part: list[int],
    make_args: Callable[[list[int]], dict[str, Any]],
    limits: Limits,
    on_item: Callable[[dict[str, Any]], None],
    on_crash: Callable[[int, SandboxOutcome], Crash],
    started_key: str | None,
) -> list[Crash]:
    """Run ``func`` over ``part``; when the child dies, blame the item it was on and resume."""
    crashes: list[Crash] = []
    remaining = list(part)
    while remaining:
        done = -1
        started = -1
        batch = remaining

        def relay(entry: Any, batch: list[int] = batch) -> None:
            nonlocal done, started
            if not isinstance(entry, dict):
                return
            if started_key and started_key in entry and "uri" not in entry:
                started = int(entry[started_key])
                return
            done = int(entry["i"])
            # Translate the batch-local index into the part-local index.
            on_item({**entry, "i": part.index(batch[done])})

        outcome = run_sandboxed(func, make_args(batch), limits, on_progress=relay)
        if outcome.ok:
            break
        culprit = started if started_key and started > done else done + 1
        if culprit >= len(batch):
            break
        crashes.append(on_crash(batch[culprit], outcome))
        remaining = batch[culprit + 1 :]
    return crashes


def _unescape(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt == "x" and i + 3 < len(value) + 0:
                try:
                    out.append(chr(int(value[i + 2 : i + 4], 16)))
                    i += 4
                    continue
                except ValueError:
                    pass
            out.append({"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"'}.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _to_rule(uri: str, lines: tuple[str, ...], raw: dict[str, Any]) -> ContentRule:
    start, end = int(raw["start"]), int(raw["end"])
    # One pass over the rule's lines: the line of each declared string identifier
    # (a lookup per string would be quadratic in a rule of 40,000 strings).
    declared: dict[str, int] = {}
    for number in range(start, min(end, len(lines)) + 1):
        stripped = lines[number - 1].lstrip()
        if stripped.startswith("$"):
            ident_end = 1
            while ident_end < len(stripped) and (
                stripped[ident_end].isalnum() or stripped[ident_end] == "_"
            ):
                ident_end += 1
            if stripped[ident_end:].lstrip().startswith("="):
                declared.setdefault(stripped[:ident_end], number)
    patterns = []
    for s in raw["strings"]:
        ident = s["id"]
        line = declared.get(ident, 0)
        value = _unescape(s["value"]) if s["kind"] == "text" else s["value"]
        patterns.append(RulePattern(ident, s["kind"], value, tuple(s["modifiers"]), line))
    return ContentRule(
        name=raw["name"],
        uri=uri,
        start_line=start,
        end_line=end,
        patterns=tuple(patterns),
        condition=raw["condition"],
        condition_terms=tuple(raw["terms"]),
        metadata=tuple((k, v) for k, v in raw["metadata"]),
        tags=tuple(raw["tags"]),
        scopes=tuple(raw["scopes"]),
        imports=tuple(raw["imports"]),
        engine="yara",
    )

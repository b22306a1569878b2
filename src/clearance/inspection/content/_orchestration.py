"""How every content engine drives its sandboxed children, and tallies a corpus scan.

Two shapes of work, shared by the YARA, ClamAV and hash-list engines:

* **per item** (:func:`run_per_item`): parse or compile each content file once,
  spread over ``workers`` sandboxed children.  Each child streams one entry per
  item; when it dies, the item it was on is blamed (a :class:`~.engine.Crash`)
  and a new child resumes with the next item, so one bad file never hides the rest.
* **per shard** (:func:`scan_shards`): the clean corpus is partitioned
  deterministically by the digest of each file's label into ``shards`` shards,
  each scanned by its own sandboxed child, at most ``workers`` at a time.  The
  per-file entries go into a :class:`ScanTally`, whose result does not depend on
  the number of shards nor on the order in which they finish, so the report is
  the same bytes with 1 shard or 16.  A shard whose child dies before its first
  file (the engine cannot even load the set) is one crash naming the shard; one
  that dies on a file blames that file and resumes after it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearance.inspection.base import ProgressSink
from clearance.inspection.content.engine import CompileReport, Crash, Match, ScanReport
from clearance.inspection.sandbox import Limits, SandboxOutcome, run_sandboxed

#: The progress entry a scanning child sends once its rules are loaded: dying before
#: it blames the shard (the set), after it the corpus file being scanned.
READY = "ready"


@dataclass(frozen=True)
class ChildJob:
    """One kind of sandboxed child: its target, its arguments for a batch, its limits."""

    #: Module-level function ``f(args, progress)`` run in the sandbox.
    target: Callable[..., Any]
    #: Arguments for the child given the (global) indexes of the items it gets.
    make_args: Callable[[list[int]], dict[str, Any]]
    limits: Limits
    #: The crash to report when the child dies on item ``index``.
    on_crash: Callable[[int, SandboxOutcome], Crash]
    #: Key of the entry a child sends before it starts an item (None: items are atomic).
    started_key: str | None = None


def run_per_item(
    job: ChildJob, count: int, workers: int, progress: ProgressSink, description: str
) -> tuple[dict[int, dict[str, Any]], list[Crash]]:
    """Run ``job`` once over items ``0..count-1`` in ``workers`` children: (entries, crashes)."""
    entries: dict[int, dict[str, Any]] = {}
    lock = threading.Lock()
    progress.start(description, count)

    def run_part(part: list[int]) -> list[Crash]:
        def on_item(index: int, entry: dict[str, Any]) -> None:
            with lock:
                entries[index] = entry
                progress.advance(1)

        return run_resumable(job, part, on_item)

    crashes = in_parallel(run_part, split_even(list(range(count)), workers), workers)
    return entries, crashes


def shard_of(label: str, shards: int) -> int:
    """The shard of a corpus file: its label's SHA-256, modulo the shard count.

    Derived from the label alone (no read of the file), so any process can
    compute it and it never changes with the rest of the corpus.
    """
    return int.from_bytes(hashlib.sha256(label.encode()).digest()[:8], "big") % shards


def partition(labels: Sequence[str], sizes: Sequence[int], shards: int) -> list[list[int]]:
    """Indexes of each non-empty shard; largest files first within a shard."""
    out: list[list[int]] = [[] for _ in range(max(shards, 1))]
    for index, label in enumerate(labels):
        out[shard_of(label, len(out))].append(index)
    for part in out:
        part.sort(key=lambda i: (-sizes[i], labels[i]))
    return [p for p in out if p]


def scan_shards(
    job: ChildJob,
    labels: Sequence[str],
    sizes: Sequence[int],
    shards: int,
    workers: int,
    on_entry: Callable[[int, dict[str, Any]], None],
    progress: ProgressSink,
    description: str,
) -> list[Crash]:
    """Scan every corpus file once, shard by shard; ``on_entry(index, entry)`` is serialized."""
    lock = threading.Lock()
    progress.start(description, float(sum(sizes)))
    parts = partition(labels, sizes, shards)

    def run_shard(numbered: tuple[int, list[int]]) -> list[Crash]:
        number, part = numbered

        def on_item(index: int, entry: dict[str, Any]) -> None:
            with lock:
                on_entry(index, entry)
                progress.advance(float(sizes[index]))

        def on_death(outcome: SandboxOutcome) -> Crash:
            return Crash(
                "ruleset",
                "scan",
                {**outcome.evidence(), "shard": f"{number + 1} of {len(parts)}"},
                f"scanning shard {number + 1} of {len(parts)} ({len(part)} corpus files, "
                f"from {labels[part[0]]}) {outcome.describe()} before its first file; "
                "those files were not scanned",
            )

        return run_resumable(job, part, on_item, on_death=on_death)

    return in_parallel(run_shard, list(enumerate(parts)), workers)


def run_resumable(
    job: ChildJob,
    part: list[int],
    on_item: Callable[[int, dict[str, Any]], None],
    on_death: Callable[[SandboxOutcome], Crash] | None = None,
) -> list[Crash]:
    """Run ``job`` over ``part``; when the child dies, blame the item it was on and resume.

    With ``on_death``, a child that dies before sending :data:`READY` is one crash
    for the whole part (blaming each item in turn would start a child per item).
    """
    crashes: list[Crash] = []
    remaining = list(part)
    while remaining:
        done = -1
        started = -1
        ready = False
        batch = remaining

        def relay(entry: Any, batch: list[int] = batch) -> None:
            nonlocal done, started, ready
            if not isinstance(entry, dict):
                return
            if entry.get(READY):
                ready = True
                return
            if job.started_key and job.started_key in entry and "uri" not in entry:
                started = int(entry[job.started_key])
                return
            done = int(entry["i"])
            on_item(batch[done], entry)

        outcome = run_sandboxed(job.target, job.make_args(batch), job.limits, on_progress=relay)
        if outcome.ok:
            break
        if on_death is not None and not ready:
            crashes.append(on_death(outcome))
            break
        culprit = started if job.started_key and started > done else done + 1
        if culprit >= len(batch):
            break
        crashes.append(job.on_crash(batch[culprit], outcome))
        remaining = batch[culprit + 1 :]
    return crashes


def split_even(items: list[int], parts: int) -> list[list[int]]:
    return [p for p in (items[i::parts] for i in range(max(parts, 1))) if p]


def in_parallel(
    func: Callable[[Any], list[Crash]], parts: Sequence[Any], workers: int
) -> list[Crash]:
    """``func`` over ``parts``, at most ``workers`` at a time; crashes in a fixed order."""
    if len(parts) <= 1 or workers <= 1:
        return [c for p in parts for c in func(p)]
    with ThreadPoolExecutor(max_workers=min(workers, len(parts))) as pool:
        return [c for crashes in pool.map(func, parts) for c in crashes]


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def crash_order(crash: Crash) -> tuple[str, str, str]:
    """A total order on crashes, so merged reports do not depend on finishing order."""
    return (crash.uri, crash.phase, crash.message)


class ScanTally:
    """A corpus scan's bookkeeping, with memory bounded by rules, not by corpus size.

    Counts every match, keeps the ``keep`` smallest corpus labels per rule as
    evidence (so the kept set does not depend on the order files arrive in),
    and sums files and bytes.  Not thread-safe: feed it from one thread or under
    a lock (:func:`scan_shards` serializes its callback).
    """

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.counts: dict[tuple[str, str], int] = {}
        self._kept: dict[tuple[str, str], list[Match]] = {}
        self.files = 0
        self.bytes = 0
        self.timeouts: list[str] = []

    def file(self, label: str, size: int, timed_out: bool = False) -> None:
        self.files += 1
        self.bytes += size
        if timed_out:
            self.timeouts.append(label)

    def match(
        self, uri: str, rule: str, label: str, strings: tuple[tuple[str, int, str], ...] = ()
    ) -> None:
        key = (uri, rule)
        self.counts[key] = self.counts.get(key, 0) + 1
        kept = self._kept.setdefault(key, [])
        kept.append(Match(rule, uri, label, strings))
        if len(kept) > 2 * self.keep:
            self._trim(kept)

    def _trim(self, kept: list[Match]) -> None:
        kept.sort(key=lambda m: m.corpus_file)
        del kept[self.keep :]

    def report(self, crashes: Sequence[Crash], seconds: float) -> ScanReport:
        matches: list[Match] = []
        for kept in self._kept.values():
            self._trim(kept)
            matches.extend(kept)
        return ScanReport(
            matches=tuple(sorted(matches, key=lambda m: (m.uri, m.rule_name, m.corpus_file))),
            match_counts=dict(sorted(self.counts.items())),
            files_scanned=self.files,
            bytes_scanned=self.bytes,
            timeouts=tuple(sorted(self.timeouts)),
            crashes=tuple(sorted(crashes, key=crash_order)),
            seconds=seconds,
        )


@dataclass(frozen=True)
class CompileRequest:
    """What :meth:`EngineBase.compile` was asked (see :class:`~.engine.ContentEngine`)."""

    files: Sequence[tuple[str, Path]]
    work_dir: Path
    sample: Sequence[Path]
    progress: ProgressSink


@dataclass(frozen=True)
class ScanRequest:
    """What :meth:`EngineBase.scan` was asked (see :class:`~.engine.ContentEngine`)."""

    report: CompileReport
    files: Sequence[tuple[str, Path]]
    corpus: Sequence[Path]
    label: Callable[[Path], str]
    progress: ProgressSink


class EngineBase:
    """The ``compile`` and ``scan`` every engine shares: timing, the tally, the report.

    An engine implements ``_compile(request)`` (its report's timing and sample size
    are filled in here) and ``_scan(request, tally) -> crashes`` (called only when
    there is a corpus to scan).
    """

    #: Matched corpus files kept as evidence per rule, unless the caller says.
    evidence_files = 20

    def _compile(self, request: CompileRequest) -> CompileReport:
        raise NotImplementedError

    def _scan(self, request: ScanRequest, tally: ScanTally) -> list[Crash]:
        raise NotImplementedError

    def compile(
        self,
        files: Sequence[tuple[str, Path]],
        work_dir: Path,
        sample: Sequence[Path],
        progress: ProgressSink,
    ) -> CompileReport:
        started = time.perf_counter()
        report = self._compile(CompileRequest(files, work_dir, sample, progress))
        return dataclasses.replace(
            report,
            compile_seconds=time.perf_counter() - started,
            sample_bytes=sum(file_size(p) for p in sample),
        )

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
        tally = ScanTally(keep or self.evidence_files)
        request = ScanRequest(report, files, corpus, corpus_label, progress)
        crashes = self._scan(request, tally) if corpus else []
        return tally.report(crashes, time.perf_counter() - started)

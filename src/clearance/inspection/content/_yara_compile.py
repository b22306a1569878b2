"""Compiling YARA content in the sandbox: diagnostics per file, the scanning set, cost.

One child compiles every file into one compiler, each in its own namespace,
so each file's errors and warnings are its own (a file that fails to compile
leaves the compiler as it was) and the set is built once: the same compiled
rules are measured on the cost sample and then serialized for the corpus scan.

Cost is measured top-down.  The whole set is timed on the sample; a group of
files whose cost is within the budget cannot hold a file over budget (a file's
rules alone cost at most what they cost among others: one pass over the data
either way, and fewer atoms and conditions), so its files get the group's
cost as their bound and are not timed again.  A group over budget is split in
two, each half built and timed, down to single files, whose rules are then timed
one by one.  An honest release costs one build and one timing; a slow file costs
about ``2 log2(n)`` more (a set over budget is split into parts expected
to be within it, not only halves).  Every step streams a progress entry, so the parent
knows which file or group the engine died on.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yara_x

from clearance.inspection.content._yara_child import _compiler, _read_text

Progress = Callable[[Any], None]

_IMPORT_LINE = re.compile(r'^\s*import\s+"[^"]+"\s*$', re.MULTILINE)
#: A rule can hide its cost behind a size gate ("filesize > 2MB and for all i in ..."):
#: the cost sample is small files, so such a file is also timed on a large synthetic one.
_SIZE_GATE = re.compile(r"filesize\s*>=?\s*(\d+)\s*(KB|MB)?|\(\s*\d+\s*\.\.\s*filesize", re.I)
_LARGE_MIN = 8 * 2**20
_LARGE_MAX = 64 * 2**20
_RULE_HEAD = re.compile(r"^\s*(?:(?:private|global)\s+)*rule\s+([A-Za-z_]\w*)", re.MULTILINE)


def _diagnostics(items: list[dict[str, Any]], level: str) -> list[dict[str, Any]]:
    return [
        {
            "level": level,
            "code": str(d.get("code", "")),
            "message": str(d.get("title", "")),
            "line": int(d.get("line") or 0),
            "text": str(d.get("text", "")),
        }
        for d in items
    ]


def _large_size(text: str) -> int | None:
    """Size of the synthetic file that exercises the file's size-gated rules, if any."""
    sizes = []
    for m in _SIZE_GATE.finditer(text):
        if m.group(1) is None:
            sizes.append(_LARGE_MIN)
            continue
        unit = {"KB": 2**10, "MB": 2**20}.get((m.group(2) or "").upper(), 1)
        sizes.append(int(m.group(1)) * unit + 2**20)
    if not sizes:
        return None
    return min(max(max(sizes), _LARGE_MIN), _LARGE_MAX)


def _synthetic(size: int) -> bytes:
    """Deterministic filler: an executable header, text and pseudo-random bytes."""
    head = b"MZ\x90\x00" + b"This program cannot be run in DOS mode.\r\n" * 4
    block = head + random.Random(0x2545F491).randbytes(65536 - len(head))
    return (block * (size // len(block) + 1))[:size]


class _Meter:
    """Times rule sets on the cost sample (and a large synthetic file), minus an empty set."""

    def __init__(self, sample: list[bytes], timeout: int) -> None:
        self.sample = sample
        self.timeout = timeout
        # Per-scan setup dominates on a tiny sample; never divide by less than 256 KiB.
        self.sample_mib = max(sum(len(s) for s in sample) / 2**20, 0.25)
        self.empty = _compiler().build()
        self.baseline = min(self._cpu(self.empty, sample) for _ in range(2))
        self._large: dict[int, tuple[bytes, float]] = {}

    def _cpu(self, rules: yara_x.Rules, data: list[bytes]) -> float:
        scanner = yara_x.Scanner(rules)
        scanner.set_timeout(self.timeout)
        # CPU time of this thread, not wall time: other processes on the machine must
        # not make honest rules look slow.
        started = time.thread_time()
        for item in data:
            scanner.scan(item)
        return time.thread_time() - started

    def sample_cost(self, rules: yara_x.Rules) -> float:
        """Extra ms per MiB of the sample (raises yara_x.TimeoutError)."""
        spent = self._cpu(rules, self.sample) - self.baseline
        return max(spent, 0.0) * 1000 / self.sample_mib

    def large_cost(self, rules: yara_x.Rules, size: int | None) -> float:
        if size is None:
            return 0.0
        if size not in self._large:
            data = _synthetic(size)
            self._large[size] = (data, self._cpu(self.empty, [data]))
        data, baseline = self._large[size]
        return max(self._cpu(rules, [data]) - baseline, 0.0) * 1000 / (size / 2**20)

    def cost(self, rules: yara_x.Rules, large: int | None, budget: float, alone: bool) -> float:
        """Cost on the sample, or on a large file.

        A file timed ``alone`` near the budget gets the least of three runs (a
        finding must not come from a noisy run); a group gets one run, since a
        high reading only splits it further, and is not timed on the large file
        when the sample already puts it over budget (it is split anyway).
        """
        if not self.sample:
            return 0.0
        try:
            cost = self.sample_cost(rules)
            if alone and budget and cost > budget / 2:
                cost = min(cost, *(self.sample_cost(rules) for _ in range(2)))
            if not alone and budget and cost > budget:
                return cost
            return max(cost, self.large_cost(rules, large))
        except yara_x.TimeoutError:
            return float("inf")


def compile_files(args: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Compile ``files`` ([uri, path]) as one set; serialize it to ``out``; measure cost.

    Streams ``{"start": i}`` then ``{"i", "uri", "errors", "warnings", "compile_s"}``
    per file, ``{"stage": "build"}``, ``{"built": n}``, then ``{"measuring": [i...]}``
    before each timing and ``{"cost": {i: [ms per MiB, files timed together]},
    "per_rule": {i: {rule: ms}}}`` at the end.  ``namespaces`` (default ``f<i>``)
    name each file's namespace in the set.
    """
    files = args["files"]
    namespaces = args.get("namespaces") or [f"f{i}" for i in range(len(files))]
    compiler = _compiler()
    texts: dict[int, str] = {}
    for index, (uri, path) in enumerate(files):
        progress({"start": index})
        text = _read_text(path)
        errors_before, warnings_before = len(compiler.errors()), len(compiler.warnings())
        compiler.new_namespace(namespaces[index])
        # CPU time of this thread, as for cost: load on the machine must not make an
        # honest file slow to compile.
        started = time.thread_time()
        try:
            compiler.add_source(text, origin=uri)
            texts[index] = text
        except yara_x.CompileError:
            pass
        compile_s = time.thread_time() - started
        errors = _diagnostics(compiler.errors()[errors_before:], "error")
        if errors:
            texts.pop(index, None)
        progress(
            {
                "i": index,
                "uri": uri,
                "errors": errors,
                "warnings": _diagnostics(compiler.warnings()[warnings_before:], "warning"),
                "compile_s": compile_s,
            }
        )
    if not texts:
        return {"built": 0}
    progress({"stage": "build"})
    rules = compiler.build()
    with Path(args["out"]).open("wb") as out:
        rules.serialize_into(out)
    progress({"built": len(texts)})
    progress({"measuring": sorted(texts)})
    meter = _Meter([Path(p).read_bytes() for p in args["sample"]], int(args.get("timeout", 20)))
    cost, per_rule = _descend(
        sorted(texts), rules, texts, meter, float(args.get("budget_ms_per_mib", 0.0)), progress
    )
    result = {"cost": cost, "per_rule": per_rule}
    progress(result)
    return result


def _build(texts: dict[int, str], group: list[int]) -> yara_x.Rules:
    compiler = _compiler()
    for index in group:
        compiler.new_namespace(f"f{index}")
        compiler.add_source(texts[index])
    return compiler.build()


def _descend(
    group: list[int],
    rules: yara_x.Rules,
    texts: dict[int, str],
    meter: _Meter,
    budget: float,
    progress: Progress,
) -> tuple[dict[str, list[float]], dict[str, dict[str, float]]]:
    """Each file's cost (bounded by its smallest timed group) and its slow rules' costs."""
    cost: dict[str, list[float]] = {}
    per_rule: dict[str, dict[str, float]] = {}
    pending: list[tuple[list[int], yara_x.Rules | None]] = [(group, rules)]
    while pending:
        members, built = pending.pop()
        progress({"measuring": members})
        if built is None:
            built = _build(texts, members)
        sizes = [s for s in (_large_size(texts[i]) for i in members) if s is not None]
        spent = meter.cost(built, max(sizes) if sizes else None, budget, len(members) == 1)
        if budget and spent > budget and len(members) > 1:
            # A large set is over one file's budget by nature: split it into parts
            # expected to be well within it (halves when the set hit the timeout).
            parts = 2 if math.isinf(spent) else math.ceil(4 * spent / budget)
            size = math.ceil(len(members) / min(len(members), max(parts, 2)))
            starts = range(0, len(members), size)
            pending += [(members[i : i + size], None) for i in reversed(starts)]
            continue
        for index in members:
            cost[str(index)] = [-1.0 if spent == float("inf") else spent, float(len(members))]
        if budget and spent > budget and len(members) == 1:
            text = texts[members[0]]
            per_rule[str(members[0])] = _drill_down(text, rule_spans(text), meter)
    return cost, per_rule


def rule_spans(text: str) -> list[list[Any]]:
    """[name, first line, last line] of each rule, to time rules one by one.

    Only locates text for timing (a rule that does not compile alone is skipped);
    the checks never use it -- they work on the parsed rules.
    """
    heads = [(m.group(1), text.count("\n", 0, m.start()) + 1) for m in _RULE_HEAD.finditer(text)]
    total = text.count("\n") + 1
    return [
        [name, start, (heads[i + 1][1] - 1) if i + 1 < len(heads) else total]
        for i, (name, start) in enumerate(heads)
    ]


def _drill_down(text: str, spans: list[list[Any]], meter: _Meter) -> dict[str, float]:
    """Time each rule of an over-budget file alone (rules that need others are skipped)."""
    imports = "\n".join(_IMPORT_LINE.findall(text))
    lines = text.splitlines()
    costs: dict[str, float] = {}
    for name, start, end in spans:
        source = imports + "\n" + "\n".join(lines[int(start) - 1 : int(end)])
        compiler = _compiler()
        try:
            compiler.add_source(source)
            costs[str(name)] = meter.sample_cost(compiler.build())
        except (yara_x.CompileError, yara_x.TimeoutError):
            continue
    return costs

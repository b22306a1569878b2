"""Source review aids: the diff of each source artifact against the previous release's.

No finding id of its own (endpoints in source become
``binary.undeclared-endpoint``; capabilities seen in source corroborate
``binary.capability-added``): this inspector writes the report section a
human inspector reads -- a summary by file, the added lines that matter, and
the bandit issues that are new in this release.
"""

from __future__ import annotations

import shutil
from typing import Any

from clearance.inspection.base import InspectionInput, InspectionResult, ProgressSink
from clearance.inspection.code._common import (
    previous_for,
    scratch_dir,
    section,
    table,
    unpack_source,
)
from clearance.inspection.code._source_diff import SourceReview, review

_CONTEXT = 2
_MAX_BLOCKS = 20
_MAX_ROWS = 500


def _code_blocks(result: SourceReview) -> list[dict[str, Any]]:
    """Each file with call-outs: its added lines around them, the call-out lines highlighted."""
    blocks: list[dict[str, Any]] = []
    by_file: dict[str, list[int]] = {}
    for callout in result.callouts:
        if callout.line > 0:
            by_file.setdefault(callout.path, []).append(callout.line)
    changes = {c.path: c for c in result.changes}
    for path, lines in sorted(by_file.items())[:_MAX_BLOCKS]:
        text = changes[path].new_text
        first = max(1, min(lines) - _CONTEXT)
        last = min(len(text), max(lines) + _CONTEXT)
        numbered = [f"{n:5d}  {text[n - 1]}" for n in range(first, last + 1)]
        blocks.append(
            {
                "caption": f"{path} (lines {first}-{last})",
                "text": "\n".join(numbered),
                "highlight_lines": sorted({n - first + 1 for n in lines}),
            }
        )
    return blocks


def review_section(result: SourceReview) -> dict[str, Any]:
    added = sum(len(c.added_lines) for c in result.changes)
    against = f"against {result.previous}" if result.previous else "(no previous release: all new)"
    paragraphs = [
        f"{result.artifact} {against}: {len(result.changes)} of {result.files_total} file(s) "
        f"changed, {added} line(s) added; {len(result.callouts)} added line(s) call for "
        f"attention and bandit reports {len(result.bandit_new)} new issue(s)."
    ]
    if result.bandit_error:
        paragraphs.append(result.bandit_error)
    callout_count: dict[str, int] = {}
    for c in result.callouts:
        callout_count[c.path] = callout_count.get(c.path, 0) + 1
    summary = [
        [
            c.path,
            c.status,
            str(len(c.added_lines)),
            str(c.removed_count),
            str(callout_count.get(c.path, 0)),
        ]
        for c in result.changes
    ]
    callouts = [
        [f"{c.path}:{c.line}" if c.line else c.path, c.category, c.text] for c in result.callouts
    ]
    if len(callouts) > _MAX_ROWS:
        paragraphs.append(
            f"Only the first {_MAX_ROWS} of {len(callouts)} call-outs are listed; "
            "report['reviews'] holds them all."
        )
        callouts = callouts[:_MAX_ROWS]
    bandit = [
        [f"{i.path}:{i.line}", f"{i.test_id} {i.test_name}", f"{i.severity}/{i.confidence}", i.text]
        for i in result.bandit_new
    ]
    tables = [
        table("changes by file", ["file", "change", "+lines", "-lines", "call-outs"], summary),
        table("added lines that matter", ["where", "category", "line"], callouts),
    ]
    if bandit:
        tables.append(
            table("new bandit issues", ["where", "test", "severity/confidence", "issue"], bandit)
        )
    return section(f"Source review of {result.artifact}", paragraphs, tables, _code_blocks(result))


class SourceReviewInspector:
    """Diff, call-outs and new bandit issues for every source artifact."""

    name: str = "source-review"
    kinds: tuple[str, ...] = ("source",)

    def inspect(self, inp: InspectionInput, progress: ProgressSink) -> InspectionResult:
        sources = inp.of_kind("source")
        if not sources:
            return InspectionResult(self.name, report={"sections": []})
        progress.start("source review", float(len(sources)))
        scratch = scratch_dir(inp, "review")
        sections: list[dict[str, Any]] = []
        reviews: list[dict[str, Any]] = []
        try:
            for artifact in sources:
                new_root = unpack_source(artifact, scratch, "new")
                old = previous_for(artifact, inp.previous_of_kind("source"))
                old_root = unpack_source(old, scratch, "old") if old is not None else None
                result = review(artifact.name, new_root, old.name if old else None, old_root)
                sections.append(review_section(result))
                reviews.append(
                    {
                        "artifact": artifact.name,
                        "callouts": [c.to_dict() for c in result.callouts],
                        "bandit_new": [
                            {
                                "file": i.path,
                                "line": i.line,
                                "test_id": i.test_id,
                                "severity": i.severity,
                            }
                            for i in result.bandit_new
                        ],
                    }
                )
                progress.advance()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        import bandit

        engines = {"bandit": str(getattr(bandit, "__version__", "unknown"))}
        return InspectionResult(self.name, (), engines, {"sections": sections, "reviews": reviews})

"""``clearance inspect``: inspect a release, write the signed verdict, SARIF and HTML report.

Exit codes: 0 when the inspection ran (whatever the decision: it is printed
and signed into the verdict); 2 on bad input (unreadable release, missing or
altered artifact, bad policy, unreadable key); 1 is never used by this command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from clearance.attest.release import Release
from clearance.cli._common import EXIT_OK, SubParsers, add_json_flag, emit, set_handler
from clearance.cli._files import write_output
from clearance.cli.release import load_envelope
from clearance.keys import load_signer


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "inspect",
        help="inspect a release's content, binaries and source; sign a verdict",
        description="Inspect RELEASE.json (a signed release envelope) with the artifacts in "
        "--artifacts, decide with the verdict policy and write the signed verdict. Exit code 0 "
        "whenever the inspection ran, even if the decision is 'rejected'; 2 on bad input.",
    )
    p.add_argument("release", metavar="RELEASE.json", type=Path)
    p.add_argument(
        "--artifacts",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder holding the release's artifacts by name",
    )
    p.add_argument("--key", required=True, type=Path, metavar="inspector.key")
    p.add_argument(
        "--previous",
        type=Path,
        metavar="PREV_RELEASE.json",
        help="the previous release, to find removed or weakened detections",
    )
    p.add_argument(
        "--previous-artifacts",
        type=Path,
        metavar="DIR",
        help="folder of the previous release's artifacts (default: --artifacts)",
    )
    p.add_argument(
        "--corpus",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="clean corpus folder (repeatable; default: this machine's system files, capped)",
    )
    p.add_argument(
        "--verdict-policy",
        "--policy",
        dest="policy",
        type=Path,
        metavar="FILE.yaml",
        help="verdict policy (default: the shipped policy; --policy is the old name)",
    )
    p.add_argument("--out", required=True, type=Path, metavar="VERDICT.json")
    p.add_argument("--sarif", type=Path, metavar="FINDINGS.sarif")
    p.add_argument("--html", type=Path, metavar="REPORT.html")
    p.add_argument("--note", default="", help="a note added to the verdict")
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    add_json_flag(p)
    set_handler(p, _inspect)


class _RichProgress:
    """A ``rich`` progress bar on stderr implementing the ProgressSink protocol."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task: Any = None

    def __enter__(self) -> _RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, description: str, total: float | None) -> None:
        if self._task is not None:
            task = self._progress.tasks[-1]
            if task.total is not None:
                self._progress.update(self._task, completed=task.total)
        self._task = self._progress.add_task(description, total=total)

    def advance(self, amount: float = 1.0) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)


class _Quiet:
    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def start(self, description: str, total: float | None) -> None:
        return None

    def advance(self, amount: float = 1.0) -> None:
        return None


def _inspect(args: argparse.Namespace) -> int:
    from clearance.inspection import default_policy, inspect_release, load_policy
    from clearance.inspection.report import render_html

    envelope = load_envelope(args.release, "release")
    release = Release.from_envelope(envelope)
    previous = None
    if args.previous:
        previous = Release.from_envelope(load_envelope(args.previous, "previous release"))
    signer = load_signer(args.key)
    policy = load_policy(args.policy) if args.policy else default_policy()
    show = not args.no_progress and sys.stderr.isatty()
    with _RichProgress() if show else _Quiet() as progress:
        outcome = inspect_release(
            release,
            args.artifacts,
            previous=previous,
            previous_artifacts_dir=args.previous_artifacts,
            corpus=args.corpus,
            policy=policy,
            progress=progress,
        )
    sarif = outcome.sarif_bytes
    verdict = outcome.verdict(envelope, signer, args.note or "")
    if args.sarif:
        write_output(args.sarif, sarif, "SARIF findings")
    if args.html:
        write_output(args.html, render_html(outcome).encode("utf-8"), "HTML report")
    write_output(args.out, verdict.to_bytes(), "verdict")
    counts = (
        ", ".join(f"{rule_id}: {sum(by.values())}" for rule_id, by in outcome.summary.items())
        or "no findings"
    )
    text = (
        f"{release.product} {release.version}: {outcome.decision.decision} ({counts})\n"
        + "\n".join(f"  {r}" for r in outcome.decision.reasons)
        + f"\nwrote {args.out}"
        + (f"\nwrote {args.sarif}" if args.sarif else "")
        + (f"\nwrote {args.html}" if args.html else "")
    )
    emit(
        args,
        {
            **outcome.to_dict(),
            "verdict": str(args.out),
            "sarif": str(args.sarif) if args.sarif else None,
            "html": str(args.html) if args.html else None,
        },
        text,
    )
    return EXIT_OK

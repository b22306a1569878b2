"""``clearance verdict sign``: a human inspector's signed decision on a release.

Approving a release the automatic inspection rejected is an override: it
needs ``--note`` (the inspector's justification, signed into the verdict) and
the command says what it overrides.  The automatic decision is read from
``--automatic VERDICT.json`` (the verdict ``inspect`` wrote), found among the
verdicts on this release in ``--log LOGDIR``, or recomputed from ``--findings``
with the verdict policy (``--verdict-policy``, default the shipped one).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from clearance._untrusted import load_json
from clearance.attest import DECISIONS, StatementFormatError, Verdict, create_verdict
from clearance.attest.verdict import SEVERITIES
from clearance.cli._common import (
    EXIT_OK,
    SubParsers,
    add_actions,
    add_json_flag,
    emit,
    read_bytes,
    set_handler,
    stderr,
)
from clearance.cli._files import check_output_dir, write_output
from clearance.cli.release import load_envelope
from clearance.errors import BadInput
from clearance.keys import load_signer

_LEVEL_SEVERITY = {"error": "high", "warning": "medium", "note": "low", "none": "info"}


def register(sub: SubParsers) -> None:
    actions = add_actions(sub, "verdict", help="inspector verdicts")
    sign = actions.add_parser("sign", help="sign a human inspector's decision on RELEASE")
    sign.add_argument("release", metavar="RELEASE.json", type=Path, help="the signed release")
    sign.add_argument(
        "--decision",
        required=True,
        choices=DECISIONS,
        help=f"the inspector's decision ({', '.join(DECISIONS)})",
    )
    sign.add_argument(
        "--key", required=True, action="append", type=Path, help="inspector .key (repeatable)"
    )
    sign.add_argument("--findings", type=Path, metavar="FINDINGS.sarif", help="SARIF 2.1.0 report")
    sign.add_argument(
        "--automatic",
        type=Path,
        metavar="VERDICT.json",
        help="the automatic inspection's verdict on this release (approving what it rejected "
        "is an override and needs --note)",
    )
    sign.add_argument(
        "--log",
        type=Path,
        metavar="LOGDIR",
        help="look for logged verdicts on this release (an automatic rejection among them "
        "makes approving an override that needs --note)",
    )
    sign.add_argument(
        "--verdict-policy",
        "--policy",
        dest="policy",
        type=Path,
        metavar="FILE.yaml",
        help="verdict policy to recompute the automatic decision from --findings "
        "(default: the shipped policy; --policy is the old name)",
    )
    sign.add_argument(
        "--note", default="", help="the inspector's note (required to override a rejection)"
    )
    sign.add_argument("--inspector", help="inspector name (default: the key's name)")
    sign.add_argument(
        "--out", required=True, type=Path, metavar="VERDICT.json", help="the signed verdict"
    )
    add_json_flag(sign)
    set_handler(sign, _sign)


def summarize_sarif(data: bytes, source: str) -> tuple[dict[str, dict[str, int]], dict[str, str]]:
    """Count SARIF results by ruleId and severity; collect the tool, its extensions and versions.

    A result's severity is ``properties.severity`` when it names one, else its
    level mapped error->high, warning->medium, note->low, none->info.
    """
    try:
        doc: Any = load_json(data, str(source))
        runs = doc["runs"]
        if not isinstance(runs, list):
            raise TypeError
    except BadInput as exc:
        raise StatementFormatError(str(exc)) from None
    except (ValueError, KeyError, TypeError):
        raise StatementFormatError(f"{source}: not a SARIF 2.1.0 report (no runs)") from None
    summary: dict[str, dict[str, int]] = {}
    engines: dict[str, str] = {}
    for run in runs:
        if not isinstance(run, dict):
            continue
        tool = run.get("tool")
        if not isinstance(tool, dict):
            tool = {}
        extensions = tool.get("extensions")
        # The driver and its extensions (the engines: yara-x, capa...) with their versions.
        for part in [tool.get("driver"), *(extensions if isinstance(extensions, list) else [])]:
            if isinstance(part, dict) and isinstance(part.get("name"), str):
                engines[part["name"]] = str(
                    part.get("semanticVersion") or part.get("version") or ""
                )
        for result in run.get("results", []) or []:
            if not isinstance(result, dict) or not isinstance(result.get("ruleId"), str):
                raise StatementFormatError(f"{source}: a SARIF result has no ruleId")
            props = result.get("properties")
            severity = props.get("severity") if isinstance(props, dict) else None
            if severity not in SEVERITIES:
                severity = _LEVEL_SEVERITY.get(str(result.get("level", "warning")), "medium")
            counts = summary.setdefault(result["ruleId"], {})
            counts[severity] = counts.get(severity, 0) + 1
    return summary, engines


class OverrideNeedsNoteError(BadInput):
    """Approving a release the automatic inspection rejected, without a justification."""


def automatic_decision(
    args: argparse.Namespace, release_sha256: str, summary: dict[str, dict[str, int]]
) -> tuple[str, str] | None:
    """The automatic decision on this release and where it comes from, when known."""
    if args.automatic:
        automatic = Verdict.from_envelope(load_envelope(args.automatic, "automatic verdict"))
        if automatic.release_sha256 != release_sha256:
            raise BadInput(f"{args.automatic}: this verdict is about another release")
        return automatic.decision, f"{args.automatic}: {automatic.note or automatic.decision}"
    if args.log:
        logged = _logged_rejection(args.log, release_sha256)
        if logged is not None:
            return logged
    if not args.findings:
        return None
    from clearance.inspection import default_policy, load_policy
    from clearance.inspection.findings import FINDING_KINDS, Finding, Severity

    policy = load_policy(args.policy) if args.policy else default_policy()
    findings = [
        Finding(rule_id, Severity.parse(severity), "from the SARIF report")
        for rule_id, counts in summary.items()
        if rule_id in FINDING_KINDS
        for severity, count in counts.items()
        for _ in range(count)
    ]
    decision = policy.decide(findings)
    return decision.decision, "; ".join(decision.reasons)


def _logged_rejection(logdir: Path, release_sha256: str) -> tuple[str, str] | None:
    """A logged ``rejected`` verdict on the release, with its index, inspector and note."""
    from clearance.attest import Envelope
    from clearance.cli._common import existing_dir
    from clearance.log.store import TransparencyLog

    existing_dir(logdir, "log directory")
    with TransparencyLog.open(logdir) as log:
        size = log.size
        for index, entry in enumerate(log.entries(0, size, size)):
            if b"payloadType" not in entry:
                continue
            try:
                verdict = Verdict.from_envelope(Envelope.from_bytes(entry))
            except BadInput:
                continue
            if verdict.release_sha256 == release_sha256 and verdict.decision == "rejected":
                return "rejected", (
                    f"verdict at log index {index} by {verdict.inspector}: "
                    f"{verdict.note or 'rejected'}"
                )
    return None


def _sign(args: argparse.Namespace) -> int:
    release = load_envelope(args.release, "release")
    check_output_dir(args.out, "verdict")
    summary: dict[str, dict[str, int]] = {}
    engines: dict[str, str] = {}
    sarif_sha256 = None
    if args.findings:
        data = read_bytes(args.findings, "SARIF findings")
        summary, engines = summarize_sarif(data, str(args.findings))
        sarif_sha256 = hashlib.sha256(data).hexdigest()
    automatic = automatic_decision(args, release.sha256, summary)
    override = None
    if automatic is not None and automatic[0] != args.decision and automatic[0] == "rejected":
        override = f"overrides the automatic rejection ({automatic[1]})"
        if not args.note.strip():
            raise OverrideNeedsNoteError(
                f"--decision {args.decision} {override}: give --note with the justification"
            )
        stderr(f"note: this verdict {override}")
    note = f"{args.note} [{override}]" if override else args.note
    envelope = create_verdict(
        release,
        args.decision,
        signers=[load_signer(p) for p in args.key],
        findings_summary=summary,
        sarif_sha256=sarif_sha256,
        engines=engines,
        inspector=args.inspector,
        note=note,
    )
    write_output(args.out, envelope.to_bytes(), "verdict")
    verdict = Verdict.from_envelope(envelope)
    emit(
        args,
        {
            "out": str(args.out),
            "sha256": envelope.sha256,
            "decision": verdict.decision,
            "release_sha256": verdict.release_sha256,
            "overrides": override,
        },
        f"wrote {args.out}: {verdict.decision} for {verdict.release_name} by {verdict.inspector}",
    )
    return EXIT_OK

"""``clearance verdict sign``: a human inspector's signed decision on a release."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from clearance._untrusted import load_json
from clearance.attest import DECISIONS, StatementFormatError, Verdict, create_verdict
from clearance.attest.verdict import SEVERITIES
from clearance.cli._common import EXIT_OK, SubParsers, add_json_flag, emit, read_bytes, set_handler
from clearance.cli._files import write_output
from clearance.cli.release import load_envelope
from clearance.errors import BadInput
from clearance.keys import load_signer

_LEVEL_SEVERITY = {"error": "high", "warning": "medium", "note": "low", "none": "info"}


def register(sub: SubParsers) -> None:
    group = sub.add_parser("verdict", help="inspector verdicts")
    actions = group.add_subparsers(dest="verdict_command", metavar="ACTION")
    actions.required = True
    sign = actions.add_parser("sign", help="sign a human inspector's decision on RELEASE")
    sign.add_argument("release", metavar="RELEASE.json", type=Path)
    sign.add_argument("--decision", required=True, choices=DECISIONS)
    sign.add_argument("--key", required=True, action="append", type=Path, help="inspector .key")
    sign.add_argument("--findings", type=Path, metavar="FINDINGS.sarif", help="SARIF 2.1.0 report")
    sign.add_argument("--note", default="", help="the inspector's note")
    sign.add_argument("--inspector", help="inspector name (default: the key's name)")
    sign.add_argument("--out", required=True, type=Path)
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


def _sign(args: argparse.Namespace) -> int:
    release = load_envelope(args.release, "release")
    summary: dict[str, dict[str, int]] = {}
    engines: dict[str, str] = {}
    sarif_sha256 = None
    if args.findings:
        data = read_bytes(args.findings, "SARIF findings")
        summary, engines = summarize_sarif(data, str(args.findings))
        sarif_sha256 = hashlib.sha256(data).hexdigest()
    envelope = create_verdict(
        release,
        args.decision,
        signers=[load_signer(p) for p in args.key],
        findings_summary=summary,
        sarif_sha256=sarif_sha256,
        engines=engines,
        inspector=args.inspector,
        note=args.note,
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
        },
        f"wrote {args.out}: {verdict.decision} for {verdict.release_name} by {verdict.inspector}",
    )
    return EXIT_OK

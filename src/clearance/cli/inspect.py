"""``clearance inspect``: inspect a release, write the signed verdict, SARIF and HTML report.

Exit codes: 0 when the inspection ran (whatever the decision: it is printed
and signed into the verdict); 1 when, with ``--trust-root``, the release's
vendor signatures do not meet the trust root or the key is not one of its
inspectors' (nothing is inspected or written); 2 on bad input (unreadable
release, missing or altered artifact, bad policy, unreadable key).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from clearance.attest.dsse import Envelope
from clearance.attest.release import Release
from clearance.cli._common import (
    EXIT_OK,
    SubParsers,
    add_json_flag,
    emit,
    existing_dir,
    set_handler,
    stderr,
)
from clearance.cli._files import check_output_dir, write_output
from clearance.cli._progress import ProgressBar
from clearance.cli.release import load_envelope
from clearance.errors import Refused
from clearance.keys import Signer, load_signer


class NotAnInspectorKeyError(Refused):
    """``--key`` is not one of the trust root's inspector keys: its verdict would not count."""


class ReleaseNotTrustedError(Refused):
    """The release's vendor signatures do not meet the trust root's vendor threshold."""


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "inspect",
        help="inspect a release's content, binaries and source; sign a verdict",
        description="Inspect RELEASE.json (a signed release envelope) with the artifacts in "
        "--artifacts, decide with the verdict policy and write the signed verdict. Exit code 0 "
        "whenever the inspection ran, even if the decision is 'rejected'; 1 when --trust-root "
        "refuses the release's signatures or the inspector key; 2 on bad input.",
    )
    p.add_argument("release", metavar="RELEASE.json", type=Path, help="the signed release")
    p.add_argument(
        "--artifacts",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder holding the release's artifacts by name",
    )
    p.add_argument(
        "--key", required=True, type=Path, metavar="inspector.key", help="the inspector's key"
    )
    p.add_argument(
        "--trust-root",
        type=Path,
        metavar="trust-root.json",
        help="refuse a release whose vendor signatures do not meet this trust root, and a "
        "--key that is not one of its inspectors' (strongly advised)",
    )
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
        "--evidence",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="the inspector's evidence corpus: malware samples the releases' detections must "
        "keep detecting (repeatable; Debian's clamav-testfiles are added when installed)",
    )
    p.add_argument(
        "--verdict-policy",
        "--policy",
        dest="policy",
        type=Path,
        metavar="FILE.yaml",
        help="verdict policy (default: the shipped policy; --policy is the old name)",
    )
    p.add_argument(
        "--out", required=True, type=Path, metavar="VERDICT.json", help="the signed verdict"
    )
    p.add_argument(
        "--sarif", type=Path, metavar="FINDINGS.sarif", help="also write the findings (SARIF)"
    )
    p.add_argument("--html", type=Path, metavar="REPORT.html", help="also write an HTML report")
    p.add_argument("--note", default="", help="a note added to the verdict")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="do not show the progress bar (it is never shown when stderr is not a terminal)",
    )
    add_json_flag(p)
    set_handler(p, _inspect)


def _inspect(args: argparse.Namespace) -> int:
    from clearance.inspection import default_policy, inspect_release, load_policy
    from clearance.inspection.report import render_html

    envelope = load_envelope(args.release, "release")
    release = Release.from_envelope(envelope)
    previous = None
    if args.previous:
        previous = Release.from_envelope(load_envelope(args.previous, "previous release"))
    signer = load_signer(args.key)
    if args.trust_root:
        _check_trust(envelope, signer, args.trust_root)
    else:
        stderr(
            "note: no --trust-root: the release's vendor signatures and the inspector key "
            "are not checked"
        )
    policy = load_policy(args.policy) if args.policy else default_policy()
    existing_dir(args.artifacts, "artifacts folder")
    for out, what in ((args.out, "verdict"), (args.sarif, "SARIF"), (args.html, "HTML report")):
        if out is not None:
            check_output_dir(out, what)
    with ProgressBar(enabled=not args.no_progress and not args.json) as progress:
        outcome = inspect_release(
            release,
            args.artifacts,
            previous=previous,
            previous_artifacts_dir=args.previous_artifacts,
            corpus=args.corpus,
            evidence=args.evidence,
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


def _check_trust(envelope: Envelope, signer: Signer, path: Path) -> None:
    """Refuse a release the trust root's vendors did not sign, and a key it does not list."""
    from clearance.attest.errors import EnvelopeSignatureError
    from clearance.cli.submit import load_trust_root

    root = load_trust_root(path)
    if root.vendors.threshold < 1:
        raise ReleaseNotTrustedError(f"{path}: the trust root names no vendor key")
    try:
        envelope.verify(list(root.vendors.keys), root.vendors.threshold)
    except EnvelopeSignatureError as exc:
        raise ReleaseNotTrustedError(
            f"the release's vendor signatures do not meet {path}: {exc}"
        ) from None
    if signer.public_key not in {k.public_key for k in root.inspectors.keys}:
        raise NotAnInspectorKeyError(
            f"key {signer.name!r} is not an inspector key of {path}: its verdict would not count"
        )

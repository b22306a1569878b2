"""``clearance report (LOGDIR | --server URL) --trust-root F --from DATE --to DATE
[--jurisdiction J] --out DIR [--key producer.key [--submit-server URL]]``: the regulator's
report as HTML and PDF, signed, and logged with ``--submit-server``.  Exit 0 written, 1 the
report has red flags or audit discrepancies (still written), 2 bad input.

``clearance report verify DIR (--log LOGDIR | --server URL) --trust-root F [--entry N]``:
check a signed report folder against its logged envelope (signers, file digests, the cited
tree size and root against the log's signed checkpoint, inclusion).  Exit 0 it holds, 1 it
does not, 2 bad input."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clearance.attest import TrustRoot
from clearance.audit import log_source
from clearance.cli._common import (
    EXIT_OK,
    EXIT_REFUSED,
    SubParsers,
    add_json_flag,
    add_token_flag,
    emit,
    gateway_client,
    mark_public_server,
    read_bytes,
    read_json,
    set_handler,
)
from clearance.cli._files import output_dir, write_output
from clearance.keys import load_signer
from clearance.policy._time import parse_time
from clearance.policy.commitment import EntitlementOpening
from clearance.report import (
    Period,
    ReportInputError,
    collect,
    print_pdf,
    render_html,
    report_statement,
    sign_report,
    summary,
)
from clearance.report.served import fetch_from_server
from clearance.report.verify import verify_report


def register(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "report",
        help="the regulator's report for a period: updates, decisions, equal treatment (HTML+PDF)",
        description="Reads the public log only; writes DIR/report.html, DIR/report.pdf, "
        "DIR/summary.json and, with --key, DIR/report.dsse.json (signed digests and tree "
        "size), which --submit-server logs.  `clearance report verify DIR (--log LOGDIR | "
        "--server URL) --trust-root F` checks a signed report folder against its logged "
        "envelope and the log's signed tree.",
    )
    parser.add_argument(
        "logdir",
        nargs="?",
        type=Path,
        metavar="LOGDIR",
        help="a log directory (or --server); the word `verify` checks a signed report instead",
    )
    parser.add_argument(
        "folder", nargs="?", type=Path, metavar="DIR", help="with verify: the report folder"
    )
    parser.add_argument("--server", metavar="URL", help="a gateway: reads URL/log/")
    parser.add_argument(
        "--trust-root",
        required=True,
        type=Path,
        metavar="FILE",
        help="the trust root whose keys the logged entries must carry",
    )
    parser.add_argument(
        "--from", dest="start", metavar="DATE", help="first day of the period (required)"
    )
    parser.add_argument(
        "--to", dest="end", metavar="DATE", help="last day of the period (required)"
    )
    parser.add_argument("--jurisdiction", metavar="J", help="only this jurisdiction's decisions")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="folder for the HTML and PDF (required)"
    )
    mark_public_server(parser)
    parser.add_argument("--key", type=Path, metavar="FILE", help="sign the report with this key")
    parser.add_argument(
        "--submit-server",
        metavar="URL",
        help="log the signed report at this gateway (with --key; an inspector or policy token)",
    )
    add_token_flag(parser)
    parser.add_argument(
        "--log", dest="verify_log", type=Path, metavar="LOGDIR", help="with verify: the log"
    )
    parser.add_argument(
        "--entry",
        type=int,
        metavar="N",
        help="with verify: the log index of the report's envelope (default: searched)",
    )
    parser.add_argument("--no-pdf", action="store_true", help="HTML only")
    parser.add_argument(
        "--openings",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="openings of the logged entitlement commitments (a file, or a folder of them, "
        "e.g. a gateway's DATA/openings or GET /api/v1/regulator/openings saved): without "
        "them the report cannot tell whose entitlement a commitment is",
    )
    add_json_flag(parser)
    set_handler(parser, _report)


def _date(text: str, what: str, end: bool) -> datetime:
    try:
        moment = parse_time(text, what)
    except ValueError as exc:
        raise ReportInputError(f"{what} {text!r}: {exc}") from None
    if end and len(text) == 10:  # a bare date ends at the end of that day
        moment += timedelta(days=1) - timedelta(seconds=1)
    return moment.astimezone(UTC)


def _report(args: argparse.Namespace) -> int:
    if args.logdir == Path("verify"):
        return _verify(args)
    if args.folder is not None or args.verify_log is not None or args.entry is not None:
        raise ReportInputError("DIR, --log and --entry belong to `clearance report verify`")
    missing = [
        flag
        for flag, value in (("--from", args.start), ("--to", args.end), ("--out", args.out))
        if value is None
    ]
    if missing:
        raise ReportInputError(f"a report needs {', '.join(missing)}")
    if args.submit_server is not None and args.key is None:
        raise ReportInputError("--submit-server logs the signed report: give --key too")
    if (args.logdir is None) == (args.server is None):
        raise ReportInputError("give either LOGDIR or --server URL (exactly one)")
    if args.logdir is not None and not (args.logdir / "public" / "checkpoint").is_file():
        raise ReportInputError(f"{args.logdir}: no public/checkpoint here, not a log directory")
    period = Period(_date(args.start, "--from", False), _date(args.end, "--to", True))
    if period.end < period.start:
        raise ReportInputError("--to is before --from")
    root = TrustRoot.from_bytes(read_bytes(args.trust_root, "trust root"))
    signer = None if args.key is None else load_signer(args.key)
    output_dir(args.out, "report")
    openings = _openings(args.openings)
    data = collect(
        root,
        log_source(args.logdir, args.server),
        period,
        args.jurisdiction,
        openings=openings,
        fetch_aggregate=None if args.server is None else fetch_from_server(args.server),
    )
    html = render_html(data)
    out: Path = args.out
    files = {"report.html": out / "report.html"}
    write_output(files["report.html"], html.encode(), "HTML report")
    if not args.no_pdf:
        files["report.pdf"] = out / "report.pdf"
        print_pdf(files["report.html"], files["report.pdf"])
    result = summary(data)
    write_output(out / "summary.json", json.dumps(result, indent=2).encode(), "summary")
    if signer is not None:
        statement = report_statement(data, files, signer.name)
        envelope = sign_report(statement, signer)
        write_output(out / "report.dsse.json", envelope.to_bytes(), "signature")
        result["signed_by"] = signer.name
        if args.submit_server is not None:
            with gateway_client(args, args.submit_server) as gateway:
                receipt = gateway.submit(envelope.to_bytes())
            write_output(out / "receipt.json", json.dumps(receipt, indent=2).encode(), "receipt")
            result["log_index"] = receipt.get("log_index")
    result["files"] = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    text = (
        f"report of {data.origin} for {args.start} to {args.end} written to {out}: "
        f"{result['releases']} update(s), {result['withheld']} withheld, "
        f"{result['redFlags']} red flag(s), audit {'clean' if data.audit.clean else 'NOT clean'}"
        + ("" if signer is None else f", signed by {signer.name}")
        + ("" if "log_index" not in result else f", logged at entry {result['log_index']}")
    )
    ok = data.audit.clean and not data.red_flags and not data.served_flags
    emit(args, result, text, ok=ok)
    return EXIT_OK if ok else EXIT_REFUSED


def _verify(args: argparse.Namespace) -> int:
    if args.folder is None:
        raise ReportInputError("clearance report verify DIR: give the report folder")
    if (args.verify_log is None) == (args.server is None):
        raise ReportInputError("report verify: give either --log LOGDIR or --server URL")
    if args.verify_log is not None and not (args.verify_log / "public" / "checkpoint").is_file():
        raise ReportInputError(f"{args.verify_log}: no public/checkpoint here, not a log directory")
    if not args.folder.is_dir():
        raise ReportInputError(f"{args.folder}: not a folder")
    root = TrustRoot.from_bytes(read_bytes(args.trust_root, "trust root"))
    checked = verify_report(args.folder, root, log_source(args.verify_log, args.server), args.entry)
    claim = checked.claim
    result = {
        "log_index": checked.log_index,
        "signers": list(checked.signers),
        "files": {f.name: f.sha256 for f in claim.files},
        "treeSize": claim.tree_size,
        "rootHash": claim.root_hash,
        "checkpointSize": checked.checkpoint_size,
        "checkpointRoot": checked.checkpoint_root,
        "witnesses": list(checked.witnesses),
    }
    text = (
        f"report in {args.folder} verified: {len(claim.files)} file(s) as signed by "
        f"{', '.join(checked.signers)}; it covers tree size {claim.tree_size}, a prefix of the "
        f"log's signed tree of size {checked.checkpoint_size}; logged at entry {checked.log_index}"
    )
    emit(args, result, text)
    return EXIT_OK


def _openings(paths: list[Path]) -> list[EntitlementOpening]:
    """Openings from files or folders: a bare opening, ``{"opening": ...}`` (as a gateway
    keeps them) or ``{"openings": [{"opening": ...}, ...]}`` (the regulator API's answer)."""
    out: list[EntitlementOpening] = []
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    for file in files:
        value = read_json(file, "entitlement opening")
        items = value.get("openings") if isinstance(value, dict) else None
        for item in items if isinstance(items, list) else [value]:
            body = item.get("opening", item) if isinstance(item, dict) else item
            out.append(EntitlementOpening.from_dict(body))
    return out

"""``clearance report (LOGDIR | --server URL) --trust-root F --from DATE --to DATE
[--jurisdiction J] --out DIR [--key producer.key]``: the regulator's report as HTML and PDF,
signed.  Exit 0 written, 1 the report has red flags or audit discrepancies (still written),
2 bad input."""

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
    emit,
    mark_public_server,
    read_bytes,
    set_handler,
)
from clearance.cli._files import output_dir, write_output
from clearance.keys import load_signer
from clearance.policy._time import parse_time
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


def register(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "report",
        help="the regulator's report for a period: updates, decisions, equal treatment (HTML+PDF)",
        description="Reads the public log only; writes DIR/report.html, DIR/report.pdf, "
        "DIR/summary.json and, with --key, DIR/report.dsse.json (signed digests and tree size).",
    )
    parser.add_argument(
        "logdir", nargs="?", type=Path, metavar="LOGDIR", help="a log directory (or --server)"
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
        "--from", dest="start", required=True, metavar="DATE", help="first day of the period"
    )
    parser.add_argument(
        "--to", dest="end", required=True, metavar="DATE", help="last day of the period"
    )
    parser.add_argument("--jurisdiction", metavar="J", help="only this jurisdiction's decisions")
    parser.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="folder for the HTML and PDF"
    )
    mark_public_server(parser)
    parser.add_argument("--key", type=Path, metavar="FILE", help="sign the report with this key")
    parser.add_argument("--no-pdf", action="store_true", help="HTML only")
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
    data = collect(root, log_source(args.logdir, args.server), period, args.jurisdiction)
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
        write_output(
            out / "report.dsse.json", sign_report(statement, signer).to_bytes(), "signature"
        )
        result["signed_by"] = signer.name
    result["files"] = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    text = (
        f"report of {data.origin} for {args.start} to {args.end} written to {out}: "
        f"{result['releases']} update(s), {result['withheld']} withheld, "
        f"{result['redFlags']} red flag(s), audit {'clean' if data.audit.clean else 'NOT clean'}"
        + ("" if signer is None else f", signed by {signer.name}")
    )
    ok = data.audit.clean and not data.red_flags
    emit(args, result, text, ok=ok)
    return EXIT_OK if ok else EXIT_REFUSED

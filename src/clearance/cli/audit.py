"""``clearance audit (LOGDIR | --server URL) --trust-root trust-root.json``: the independent
auditor and monitor.  Exit 0 clean, 1 discrepancies found, 2 bad input, 3 the log server
cannot be reached."""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

from clearance.attest import TrustRoot
from clearance.audit import (
    ArtifactSource,
    AuditInputError,
    AuditOptions,
    DirectoryArtifacts,
    TufTargetArtifacts,
    audit_log,
    log_source,
    sarif_bytes,
    to_html,
    to_text,
)
from clearance.audit.auditor import DEFAULT_DEADLINE, log_identity
from clearance.cli._common import (
    EXIT_OK,
    EXIT_REFUSED,
    WITNESS_METAVAR,
    SubParsers,
    add_json_flag,
    emit,
    mark_public_server,
    parse_witness_spec,
    read_bytes,
    set_handler,
)
from clearance.cli._files import check_output_dir, write_output
from clearance.cli._progress import ProgressBar


def register(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "audit",
        help="replay the public log: signatures, consistency, verdicts, monitor alerts",
        description="Replays the log through its public tiles only and reports every "
        "discrepancy (SARIF and a readable summary). Exit 0 clean, 1 discrepancies, 2 bad "
        "input, 3 the log server cannot be reached.",
    )
    parser.add_argument(
        "logdir", nargs="?", type=Path, metavar="LOGDIR", help="a log directory (or --server)"
    )
    parser.add_argument("--server", metavar="URL", help="a gateway: reads URL/log/ and URL/tuf/")
    parser.add_argument(
        "--trust-root",
        required=True,
        type=Path,
        metavar="FILE",
        help="the trust root (trust-root.json) whose keys the log's entries must carry",
    )
    parser.add_argument(
        "--state", type=Path, metavar="DIR", help="what it saw last time (default: ~/.cache)"
    )
    parser.add_argument(
        "--artifacts",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="folder of release artifacts to re-inspect (repeatable)",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="clean corpus for re-inspection, as the inspector's --corpus (repeatable)",
    )
    parser.add_argument("--no-reinspect", action="store_true", help="do not re-run the inspections")
    parser.add_argument(
        "--witness",
        action="append",
        default=[],
        metavar=WITNESS_METAVAR,
        help="a witness whose cosigned checkpoint is compared with the log's (split views): "
        "its name, URL and public key file, as everywhere else (a bare URL is still "
        "accepted); repeatable",
    )
    parser.add_argument(
        "--deadline-hours",
        type=float,
        default=DEFAULT_DEADLINE / 3600,
        metavar="HOURS",
        help="alert on a release still without verdict this long after first seen "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--max-entries", type=int, metavar="N", help="stop after N entries (resume later)"
    )
    parser.add_argument("--sarif", type=Path, metavar="FILE", help="write the findings as SARIF")
    parser.add_argument("--html", type=Path, metavar="FILE", help="write an HTML summary")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--post",
        metavar="URL",
        help="also post the result to this gateway's dashboard (URL/api/v1/audit-reports)",
    )
    add_json_flag(parser)
    mark_public_server(parser)
    set_handler(parser, _audit)


def default_state_dir(root: TrustRoot) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    tag = hashlib.sha256(log_identity(root).encode()).hexdigest()[:16]
    return cache / "clearance" / "audit" / tag


def _audit(args: argparse.Namespace) -> int:
    if (args.logdir is None) == (args.server is None):
        raise AuditInputError("give either LOGDIR or --server URL (exactly one)")
    if args.logdir is not None and not (args.logdir / "public" / "checkpoint").is_file():
        raise AuditInputError(f"{args.logdir}: no public/checkpoint here, not a log directory")
    if args.max_entries is not None and args.max_entries < 0:
        raise AuditInputError("--max-entries cannot be negative")
    root = TrustRoot.from_bytes(read_bytes(args.trust_root, "trust root"))
    for out, what in ((args.sarif, "SARIF findings"), (args.html, "HTML summary")):
        if out is not None:
            check_output_dir(out, what)
    witness_urls = [_witness_url(spec) for spec in args.witness]
    sources: list[ArtifactSource] = []
    for folder in args.artifacts:
        if not folder.is_dir():
            raise AuditInputError(f"{folder}: artifacts folder not found")
        sources.append(DirectoryArtifacts(folder))
    if args.server is not None:
        sources.append(TufTargetArtifacts(args.server))
    reinspector = None
    if not args.no_reinspect:
        from clearance.audit.reinspect import default_reinspector

        reinspector = default_reinspector(args.corpus)
    with ProgressBar(enabled=not args.quiet and not args.json) as progress:
        report = audit_log(
            AuditOptions(
                trust_root=root,
                source=log_source(args.logdir, args.server),
                state_dir=args.state or default_state_dir(root),
                artifacts=sources,
                reinspector=reinspector,
                witness_urls=witness_urls,
                deadline_seconds=args.deadline_hours * 3600,
                max_entries=args.max_entries,
                progress=progress,
            )
        )
    if args.sarif is not None:
        write_output(args.sarif, sarif_bytes(report), "SARIF findings")
    if args.html is not None:
        write_output(args.html, to_html(report).encode("utf-8"), "HTML summary")
    if args.post is not None:
        _post(args.post, report.to_dict())
    emit(args, report.to_dict(), to_text(report), ok=report.clean)
    return EXIT_OK if report.clean else EXIT_REFUSED


def _post(server: str, result: dict[str, object]) -> None:
    """Hand the result to a gateway's dashboard (``/audit``); a failure is exit 3."""
    import json

    import httpx

    from clearance.errors import Unreachable

    url = server.rstrip("/") + "/api/v1/audit-reports"
    try:
        response = httpx.post(url, content=json.dumps(result), timeout=30)
    except httpx.HTTPError as exc:
        raise Unreachable(f"{url}: cannot post the audit result ({exc})") from None
    if response.status_code != 201:
        raise Unreachable(
            f"{url}: the gateway refused the audit result (HTTP {response.status_code})"
        )


def _witness_url(spec: str) -> str:
    """``NAME=URL=KEYFILE`` (the shared form; the key file must be a witness public key), or
    the bare URL older scripts pass."""
    if "=" not in spec and spec.startswith(("http://", "https://")):
        return spec
    return parse_witness_spec(spec).url

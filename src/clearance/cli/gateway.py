"""``clearance gateway init``: create a gateway data directory for ``clearance serve``."""

from __future__ import annotations

import argparse
from pathlib import Path

from clearance.attest.trust_root import TrustRoot
from clearance.cli._common import (
    EXIT_OK,
    SubParsers,
    add_json_flag,
    add_witness_option,
    emit,
    gateway_client,
    parse_witness_spec,
    read_bytes,
    set_handler,
    stderr,
)
from clearance.errors import BadInput
from clearance.gateway.config import witness_endpoint
from clearance.keys import load_signer


def register(sub: SubParsers) -> None:
    group = sub.add_parser("gateway", help="set up a gateway data directory")
    actions = group.add_subparsers(dest="gateway_command", metavar="ACTION")
    actions.required = True
    init = actions.add_parser("init", help="create DIR with its log, trust root and API tokens")
    init.add_argument("--data", required=True, type=Path, help="new gateway data directory")
    init.add_argument("--trust-root", required=True, type=Path, help="trust-root.json")
    init.add_argument("--log-key", required=True, type=Path, help="the log's private key")
    init.add_argument(
        "--vendor",
        action="append",
        default=[],
        metavar="KEYNAME=PRODUCT[,PRODUCT]",
        help="the products a vendor key may release (repeatable)",
    )
    init.add_argument("--inspector-key", type=Path, help="key of the embedded inspector")
    init.add_argument(
        "--rollout-key",
        type=Path,
        help="the rollout operator's key (signs rollout transitions; must be in the trust "
        "root's rollout role)",
    )
    add_witness_option(init)
    init.add_argument(
        "--job-queue-dsn",
        metavar="DSN",
        help="PostgreSQL job queue shared with remote workers (default: SQLite in DIR)",
    )
    init.add_argument(
        "--database",
        metavar="DSN",
        help="PostgreSQL (empty database) for the log and jobs, shared by `clearance serve` "
        "replicas (default: SQLite in DIR)",
    )
    add_json_flag(init)
    set_handler(init, _init)

    worker = actions.add_parser(
        "worker",
        help="run an inspection worker elsewhere: PostgreSQL job queue + the gateway's HTTP API",
    )
    worker.add_argument("--server", required=True, metavar="URL", help="the gateway")
    worker.add_argument(
        "--queue-dsn", required=True, metavar="DSN", help="PostgreSQL of the job queue"
    )
    worker.add_argument(
        "--queue-table",
        default="clearance_jobs",
        metavar="NAME",
        help="the procrastinate queue (gateway.json's job_queue_table)",
    )
    worker.add_argument("--key", required=True, type=Path, help="this inspector's key")
    worker.add_argument("--trust-root", required=True, type=Path, help="trust-root.json")
    worker.add_argument(
        "--corpus",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="clean corpus folder, as inspect --corpus (repeatable)",
    )
    worker.add_argument("--once", action="store_true", help="run queued jobs, then exit")
    set_handler(worker, _worker)


def _init(args: argparse.Namespace) -> int:
    from clearance.gateway.setup import init_gateway

    root = TrustRoot.from_bytes(read_bytes(args.trust_root, "trust root"))
    vendors: dict[str, list[str]] = {}
    for item in args.vendor:
        name, sep, products = item.partition("=")
        if not sep or not products:
            raise BadInput(f"--vendor {item!r}: expected KEYNAME=PRODUCT[,PRODUCT]")
        vendors.setdefault(name, []).extend(p for p in products.split(",") if p)
    witnesses = []
    for item in args.witness:
        spec = parse_witness_spec(item)
        witnesses.append(witness_endpoint(spec.name, spec.url, spec.vkey))
    tokens = init_gateway(
        args.data,
        trust_root=root,
        log_signer=load_signer(args.log_key),
        vendor_products=vendors,
        inspector_signer=load_signer(args.inspector_key) if args.inspector_key else None,
        rollout_signer=load_signer(args.rollout_key) if args.rollout_key else None,
        witnesses=witnesses,
        job_queue_dsn=args.job_queue_dsn,
        database=args.database,
    )
    emit(
        args,
        {"data": str(args.data), "tokens": tokens},
        f"created {args.data}; API tokens (also in {args.data / 'tokens.json'}):\n"
        + "\n".join(f"  {role}: {token}" for role, token in sorted(tokens.items())),
    )
    return EXIT_OK


def _worker(args: argparse.Namespace) -> int:
    """API token from $CLEARANCE_TOKEN (an inspector token)."""
    import threading

    from clearance.gateway.queue_postgres import PostgresJobQueue
    from clearance.gateway.remote_worker import RemoteInspectionWorker

    root = TrustRoot.from_bytes(read_bytes(args.trust_root, "trust root"))
    signer = load_signer(args.key)
    queue = PostgresJobQueue(args.queue_dsn, args.queue_table)
    try:
        with gateway_client(args) as client:
            worker = RemoteInspectionWorker(
                queue,
                client,
                root,
                signer,
                name=f"worker-{signer.name}",
                corpus=tuple(args.corpus),
            )
            if args.once:
                done = 0
                while worker.run_once():
                    done += 1
                stderr(f"ran {done} job(s)")
                return EXIT_OK
            stderr(f"inspection worker {signer.name}: waiting for jobs (Ctrl-C to stop)")
            worker.run_forever(threading.Event())
    finally:
        queue.close()
    return EXIT_OK

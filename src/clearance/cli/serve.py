"""``clearance serve``: run the gateway (API, log tiles, TUF, dashboard) in one process."""

from __future__ import annotations

import argparse
from pathlib import Path

from clearance.cli._common import EXIT_OK, SubParsers, set_handler, stderr


def register(sub: SubParsers) -> None:
    parser = sub.add_parser("serve", help="run the gateway on a data directory")
    parser.add_argument("--data", required=True, type=Path, help="gateway data directory")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", default=8000, type=int, help="port to listen on (0: any free port)"
    )
    parser.add_argument(
        "--advertise",
        metavar="URL",
        help="where the other replicas reach this one (default http://HOST:PORT; needed "
        "when HOST is 0.0.0.0): the leader takes the others' submissions there",
    )
    set_handler(parser, _serve)


def _serve(args: argparse.Namespace) -> int:
    from clearance.gateway.server import serve

    serve(
        args.data,
        args.host,
        args.port,
        lambda url: stderr(f"clearance gateway on {url} (data {args.data})"),
        advertise=args.advertise,
    )
    return EXIT_OK

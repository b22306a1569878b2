"""``clearance serve``: run the gateway (API, log tiles, TUF, dashboard) in one process."""

from __future__ import annotations

import argparse
from pathlib import Path

from clearance.cli._common import EXIT_OK, SubParsers, set_handler, stderr


def register(sub: SubParsers) -> None:
    parser = sub.add_parser("serve", help="run the gateway on a data directory")
    parser.add_argument("--data", required=True, type=Path, help="gateway data directory")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", default=8000, type=int, help="port to listen on")
    set_handler(parser, _serve)


def _serve(args: argparse.Namespace) -> int:
    from clearance.gateway.server import serve

    stderr(f"clearance gateway on http://{args.host}:{args.port} (data {args.data})")
    serve(args.data, args.host, args.port)
    return EXIT_OK

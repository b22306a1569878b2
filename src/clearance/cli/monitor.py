"""``clearance monitor (LOGDIR | --server URL) --trust-root F --state DIR [--config monitor.yaml]
[--once]``: follow the log and alert (JSON lines on stdout, webhooks, e-mail).

With ``--once`` it makes one pass (for cron): exit 0 when nothing new, 1 when it raised an
alert or could not deliver one, 2 on bad input."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from clearance.attest import TrustRoot
from clearance.audit import log_source
from clearance.cli._common import (
    EXIT_OK,
    EXIT_REFUSED,
    SubParsers,
    mark_public_server,
    read_bytes,
    set_handler,
    stderr,
)
from clearance.monitor import (
    EmailSink,
    Monitor,
    MonitorConfig,
    MonitorInputError,
    MonitorOptions,
    PassResult,
    Sink,
    StdoutSink,
    WebhookSink,
)


def register(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "monitor",
        help="follow the log, verify every checkpoint and entry, alert on suspicious events",
        description="Replays the log through its public tiles and raises alerts with stable "
        "ids (see docs/monitor.md) as JSON lines on stdout, to webhooks and by e-mail. "
        "With --once: exit 0 nothing new, 1 alerts raised (or undelivered), 2 bad input, "
        "3 the log server cannot be reached.",
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
        help="the trust root whose log key signs the checkpoints",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="monitor.yaml: webhooks, e-mail, thresholds (default: alerts on stdout only)",
    )
    parser.add_argument(
        "--state",
        required=True,
        type=Path,
        metavar="DIR",
        help="what the monitor saw last time (created on first use)",
    )
    mark_public_server(parser)
    parser.add_argument("--once", action="store_true", help="one pass; exit 1 if it alerted")
    set_handler(parser, _monitor)


def _monitor(args: argparse.Namespace) -> int:
    if (args.logdir is None) == (args.server is None):
        raise MonitorInputError("give either LOGDIR or --server URL (exactly one)")
    if args.logdir is not None and not (args.logdir / "public" / "checkpoint").is_file():
        raise MonitorInputError(f"{args.logdir}: no public/checkpoint here, not a log directory")
    root = TrustRoot.from_bytes(read_bytes(args.trust_root, "trust root"))
    config = MonitorConfig() if args.config is None else MonitorConfig.load(args.config)
    sinks: list[Sink] = [StdoutSink()]
    sinks.extend(WebhookSink(h) for h in config.webhooks)
    if config.email is not None:
        sinks.append(EmailSink(config.email, root.log_origin))
    monitor = Monitor(
        MonitorOptions(
            trust_root=root,
            source=log_source(args.logdir, args.server),
            state_dir=args.state,
            config=config,
            sinks=sinks,
        )
    )
    if args.once:
        result = monitor.run_once()
        _report_failures(result)
        return EXIT_REFUSED if result.alerts or result.undelivered else EXIT_OK
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    monitor.follow(stop, _report_failures)
    return EXIT_OK


def _report_failures(result: PassResult) -> None:
    for sink, error in result.undelivered.items():
        stderr(f"monitor: could not deliver to {sink}: {error} (kept, retried next pass)")
    sys.stderr.flush()

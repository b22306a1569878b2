"""``clearance channel reset``: the policy authority resets a product's channel (recovery).

``channel reset --product P --channel C --floor V --key K... --reason TEXT --out R.json``
writes a DSSE envelope (``https://clearance.dev/channel-reset/v1``): every release of
the channel logged before it above ``V`` is revoked, and the next release must be
higher than ``V``.  ``clearance submit R.json --log LOGDIR`` logs it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from clearance.attest.recovery import reset_channel
from clearance.cli._common import EXIT_OK, SubParsers, add_actions, add_json_flag, emit, set_handler
from clearance.cli._files import write_output
from clearance.keys import load_signer


def register(sub: SubParsers) -> None:
    actions = add_actions(sub, "channel", help="channel recovery by the policy authority")
    reset = actions.add_parser("reset", help="reset a channel back to a version floor")
    reset.add_argument("--product", required=True, help="the product whose channel is reset")
    reset.add_argument("--channel", required=True, help="the channel to reset (e.g. stable)")
    reset.add_argument("--floor", required=True, metavar="VERSION", help="the last good version")
    reset.add_argument(
        "--key", required=True, action="append", type=Path, help="a policy authority .key"
    )
    reset.add_argument("--reason", required=True, help="why (logged, shown to endpoints)")
    reset.add_argument(
        "--out", required=True, type=Path, metavar="RESET.json", help="the envelope to submit"
    )
    add_json_flag(reset)
    set_handler(reset, _reset)


def _reset(args: argparse.Namespace) -> int:
    envelope = reset_channel(
        args.product, args.channel, args.floor, args.reason, [load_signer(p) for p in args.key]
    )
    write_output(args.out, envelope.to_bytes(), "channel reset")
    emit(
        args,
        {"out": str(args.out), "sha256": envelope.sha256},
        f"wrote {args.out}: reset of {args.product}/{args.channel} to {args.floor} "
        "(submit it to log it)",
    )
    return EXIT_OK

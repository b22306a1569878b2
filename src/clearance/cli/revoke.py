"""``clearance revoke``: the policy authority revokes a release or a key (recovery).

- ``revoke release RELEASE.json --key K... --reason TEXT --out R.json``
- ``revoke key KEY.pub --key K... --reason TEXT --out R.json``

Each writes a DSSE envelope (``https://clearance.dev/revocation/v1``) signed by the
given policy-authority keys; ``clearance submit R.json --log LOGDIR`` (or
``--server URL``) logs it, and endpoints honour it through the verifiable index.
With a policy threshold above one, give every signing authority key (``--key`` repeated).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from clearance.attest.recovery import revoke_key, revoke_release
from clearance.cli._common import EXIT_OK, SubParsers, add_actions, add_json_flag, emit, set_handler
from clearance.cli._files import write_output
from clearance.cli.release import load_envelope
from clearance.keys import load_signer, load_verifier


def register(sub: SubParsers) -> None:
    actions = add_actions(
        sub, "revoke", help="the policy authority revokes a release or a key", metavar="WHAT"
    )
    release = actions.add_parser("release", help="revoke a logged release")
    release.add_argument(
        "release", metavar="RELEASE.json", type=Path, help="the logged release envelope to revoke"
    )
    key = actions.add_parser("key", help="revoke a key: its signatures stop counting everywhere")
    key.add_argument("key_file", metavar="KEY.pub", type=Path, help="the .pub file of the key")
    for parser, handler in ((release, _release), (key, _key)):
        parser.add_argument(
            "--key", required=True, action="append", type=Path, help="a policy authority .key"
        )
        parser.add_argument("--reason", required=True, help="why (logged, shown to endpoints)")
        parser.add_argument(
            "--out", required=True, type=Path, metavar="REVOCATION.json", help="the envelope"
        )
        add_json_flag(parser)
        set_handler(parser, handler)


def _release(args: argparse.Namespace) -> int:
    target = load_envelope(args.release, "release")
    envelope = revoke_release(target, args.reason, [load_signer(p) for p in args.key])
    write_output(args.out, envelope.to_bytes(), "revocation")
    emit(
        args,
        {"out": str(args.out), "sha256": envelope.sha256, "revokes": target.sha256},
        f"wrote {args.out}: revocation of release {target.sha256[:16]}… (submit it to log it)",
    )
    return EXIT_OK


def _key(args: argparse.Namespace) -> int:
    verifier = load_verifier(args.key_file)
    envelope = revoke_key(verifier, args.reason, [load_signer(p) for p in args.key])
    write_output(args.out, envelope.to_bytes(), "revocation")
    emit(
        args,
        {"out": str(args.out), "sha256": envelope.sha256, "revokes": verifier.to_string()},
        f"wrote {args.out}: revocation of key {verifier.name} (submit it to log it)",
    )
    return EXIT_OK

"""``clearance keys``: generate signed-note key pairs."""

from __future__ import annotations

import argparse
from pathlib import Path

from clearance.cli._common import EXIT_OK, SubParsers, add_actions, add_json_flag, emit, set_handler
from clearance.keys import generate_key_files, load_verifier


def register(sub: SubParsers) -> None:
    keys_sub = add_actions(sub, "keys", help="generate and show Ed25519 signed-note keys")

    gen = keys_sub.add_parser("generate", help="write DIR/NAME.key (0600) and DIR/NAME.pub")
    gen.add_argument("name", metavar="NAME", help="key name (no '+' or spaces)")
    gen.add_argument("--dir", required=True, type=Path, help="directory for the key files")
    add_json_flag(gen)
    set_handler(gen, _generate)


def _generate(args: argparse.Namespace) -> int:
    private_path, public_path = generate_key_files(args.name, args.dir)
    vkey = load_verifier(public_path).to_string()
    emit(
        args,
        {"private_key": str(private_path), "public_key": str(public_path), "verifier": vkey},
        f"wrote {private_path} (private, mode 0600)\nwrote {public_path}\n{vkey}",
    )
    return EXIT_OK

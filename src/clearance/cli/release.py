"""``clearance release create``: a vendor's signed release (DSSE envelope, in-toto Statement v1)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clearance.attest import (
    Artifact,
    BuildRecipe,
    Envelope,
    EnvelopeFormatError,
    Release,
    StatementFormatError,
    create_release,
)
from clearance.cli._common import (
    EXIT_OK,
    SubParsers,
    add_actions,
    add_json_flag,
    emit,
    read_bytes,
    read_json,
    set_handler,
)
from clearance.cli._files import write_output
from clearance.keys import load_signer


def register(sub: SubParsers) -> None:
    actions = add_actions(sub, "release", help="vendor releases")
    create = actions.add_parser("create", help="sign a release of content, binaries and source")
    create.add_argument("--product", required=True, help="the product name")
    create.add_argument("--version", required=True, help="dotted numbers, optional -tag")
    create.add_argument("--channel", required=True, help="the release channel (stable, beta...)")
    create.add_argument(
        "--key", required=True, action="append", type=Path, help="vendor .key (repeatable)"
    )
    for kind in ("content", "binary", "source"):
        create.add_argument(
            f"--{kind}",
            action="append",
            type=Path,
            default=[],
            metavar="FILE",
            help=f"a {kind} artifact (repeatable)",
        )
    create.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="HOST",
        help="a network endpoint the software contacts, declared (repeatable)",
    )
    create.add_argument(
        "--previous",
        type=Path,
        metavar="PREV_RELEASE.json",
        help="the previous release of this product and channel (chains the releases)",
    )
    create.add_argument("--notes", default="", help="vendor notes")
    create.add_argument(
        "--evidence",
        action="append",
        default=[],
        metavar="SHA256=RULE[,RULE...]",
        help="a malware sample (by SHA-256 only) that the named detections are for "
        "(repeatable; deposit the file with the inspector)",
    )
    create.add_argument(
        "--build-recipes",
        type=Path,
        metavar="FILE.json",
        help='{binary: {"source": name, "command": [argv], "env": {}, "output": path}}',
    )
    create.add_argument(
        "--out", required=True, type=Path, metavar="RELEASE.json", help="the signed release"
    )
    add_json_flag(create)
    set_handler(create, _create)


def load_envelope(path: Path, what: str) -> Envelope:
    """Read a DSSE envelope file, naming the file in any error."""
    data = read_bytes(path, what)
    try:
        return Envelope.from_bytes(data)
    except EnvelopeFormatError as exc:
        raise EnvelopeFormatError(f"{path}: {what}: {exc}") from None


def _create(args: argparse.Namespace) -> int:
    artifacts = [
        Artifact.from_file(path, kind)
        for kind in ("content", "binary", "source")
        for path in getattr(args, kind)
    ]
    if not artifacts:
        raise StatementFormatError(
            "a release needs at least one --content, --binary or --source file"
        )
    builds = None
    if args.build_recipes:
        raw = read_json(args.build_recipes, "build recipes")
        if not isinstance(raw, dict):
            raise StatementFormatError(f"{args.build_recipes}: build recipes is not a JSON object")
        builds = {
            name: BuildRecipe.from_dict(value, f"build recipe {name!r}")
            for name, value in raw.items()
        }
    previous = load_envelope(args.previous, "previous release") if args.previous else None
    evidence = []
    for item in args.evidence:
        digest, sep, names = item.partition("=")
        if not sep or not names:
            raise StatementFormatError(f"--evidence {item!r}: expected SHA256=RULE[,RULE...]")
        evidence.append(
            (digest.strip().lower(), [n.strip() for n in names.split(",") if n.strip()])
        )
    signers = [load_signer(p) for p in args.key]
    envelope = create_release(
        product=args.product,
        version=args.version,
        channel=args.channel,
        artifacts=artifacts,
        signers=signers,
        previous=previous,
        endpoints=args.endpoint,
        notes=args.notes,
        builds=builds,
        evidence=evidence,
    )
    write_output(args.out, envelope.to_bytes(), "release")
    release = Release.from_envelope(envelope)
    emit(
        args,
        {
            "out": str(args.out),
            "sha256": envelope.sha256,
            "statement": json.loads(envelope.payload),
        },
        f"wrote {args.out}: {release.product} {release.version} ({release.channel}), "
        f"{len(release.artifacts)} artifact(s), sha256 {envelope.sha256}",
    )
    return EXIT_OK

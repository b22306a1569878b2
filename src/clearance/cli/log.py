"""``clearance log``: create, append to, check and inspect an embedded transparency log.

- ``log init LOGDIR --origin ORIGIN --key log.key [--database postgresql://...]``
- ``log export LOGDIR DIR``: write or refresh a static tlog-tiles copy for nginx or a CDN
- ``log append LOGDIR FILE...``: one entry per file; prints ``INDEX<TAB>SHA256`` per entry
- ``log verify LOGDIR``: full self-check of the stored tree and its public tiles
- ``log checkpoint LOGDIR``: the current signed checkpoint
- ``log prove LOGDIR INDEX [--size N]``: an inclusion proof, checked before it is printed
- ``log consistency LOGDIR OLD [NEW]``: a consistency proof, checked before it is printed
- ``log search (LOGDIR | --server URL --trust-root T) --index N | --sha256 H | --artifact F |
  --product P [--version V]``: find entries (see :mod:`clearance.cli._log_search`)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
from pathlib import Path

from clearance.cli._common import (
    EXIT_OK,
    SubParsers,
    add_actions,
    add_json_flag,
    emit,
    read_bytes,
    set_handler,
)
from clearance.cli._log_search import add_search_parser
from clearance.cli._progress import ProgressBar
from clearance.keys import load_signer
from clearance.log import merkle
from clearance.log.checkpoint import Checkpoint
from clearance.log.errors import EntryTooLargeError, LogInputError
from clearance.log.store import TransparencyLog
from clearance.log.tiles import MAX_ENTRY_SIZE

_LOGDIR_HELP = "the log directory"


def register(sub: SubParsers) -> None:
    actions = add_actions(sub, "log", help="the append-only transparency log")

    init = actions.add_parser("init", help="create an empty log in LOGDIR")
    init.add_argument("logdir", metavar="LOGDIR", type=Path, help="new log directory")
    init.add_argument(
        "--origin", required=True, metavar="ORIGIN", help="the checkpoint origin line"
    )
    init.add_argument(
        "--key", required=True, type=Path, metavar="log.key", help="the log's private key file"
    )
    init.add_argument(
        "--database",
        metavar="DSN",
        help="keep the log in this (empty) PostgreSQL database instead of LOGDIR/log.db",
    )
    add_json_flag(init)
    set_handler(init, _init)

    export = actions.add_parser("export", help="write or refresh a static tlog-tiles copy")
    export.add_argument("logdir", metavar="LOGDIR", type=Path, help=_LOGDIR_HELP)
    export.add_argument(
        "target", metavar="DIR", type=Path, help="folder for the static tlog-tiles copy"
    )
    add_json_flag(export)
    set_handler(export, _export)

    append = actions.add_parser("append", help="append one entry per FILE")
    append.add_argument("logdir", metavar="LOGDIR", type=Path, help=_LOGDIR_HELP)
    append.add_argument(
        "files", metavar="FILE", nargs="+", type=Path, help="file(s) to log, one entry each"
    )
    add_json_flag(append)
    set_handler(append, _append)

    verify = actions.add_parser("verify", help="recompute and check the whole stored tree")
    verify.add_argument("logdir", metavar="LOGDIR", type=Path, help=_LOGDIR_HELP)
    add_json_flag(verify)
    set_handler(verify, _verify)

    checkpoint = actions.add_parser("checkpoint", help="print the current signed checkpoint")
    checkpoint.add_argument("logdir", metavar="LOGDIR", type=Path, help=_LOGDIR_HELP)
    add_json_flag(checkpoint)
    set_handler(checkpoint, _checkpoint)

    prove = actions.add_parser("prove", help="inclusion proof of entry INDEX")
    prove.add_argument("logdir", metavar="LOGDIR", type=Path, help=_LOGDIR_HELP)
    prove.add_argument("index", metavar="INDEX", type=int, help="the entry's index")
    prove.add_argument(
        "--size", type=int, metavar="N", help="tree size to prove in (default: current)"
    )
    add_json_flag(prove)
    set_handler(prove, _prove)

    add_search_parser(actions, set_handler)

    consistency = actions.add_parser("consistency", help="consistency proof from OLD to NEW")
    consistency.add_argument("logdir", metavar="LOGDIR", type=Path, help=_LOGDIR_HELP)
    consistency.add_argument("old", metavar="OLD", type=int, help="the older tree size")
    consistency.add_argument(
        "new", metavar="NEW", type=int, nargs="?", help="the newer tree size (default: current)"
    )
    add_json_flag(consistency)
    set_handler(consistency, _consistency)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _init(args: argparse.Namespace) -> int:
    signer = load_signer(args.key)
    database = args.database
    if database is not None and not database.strip():
        raise LogInputError("--database: an empty DSN")
    with TransparencyLog.create(args.logdir, args.origin, signer, database=database) as log:
        vkey = log.verifier.to_string()
        emit(
            args,
            {"logdir": str(args.logdir), "origin": log.origin, "verifier": vkey, "size": 0},
            f"created log {args.logdir} for origin {log.origin!r}\nlog key: {vkey}",
        )
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    with TransparencyLog.open(args.logdir) as log:
        size = log.export(args.target)
    emit(
        args,
        {"target": str(args.target), "size": size},
        f"exported tree size {size} to {args.target}",
    )
    return EXIT_OK


def _append(args: argparse.Namespace) -> int:
    # Read and check every file before touching the log: bad input writes nothing.
    entries = []
    for path in args.files:
        data = read_bytes(path, "entry file")
        if len(data) > MAX_ENTRY_SIZE:
            raise EntryTooLargeError(
                f"{path}: {len(data)} bytes; a log entry holds at most {MAX_ENTRY_SIZE} bytes"
            )
        entries.append(data)
    from clearance.cli._index import index_for, log_trust_root

    index = index_for(log_trust_root(args.logdir))
    with TransparencyLog.open(args.logdir, extension=index) as log:
        results = log.append(entries)
        size = log.size
    emit(
        args,
        {
            "size": size,
            "entries": [
                {"file": str(path), "index": r.index, "sha256": r.sha256}
                for path, r in zip(args.files, results, strict=True)
            ],
        },
        "\n".join(f"{r.index}\t{r.sha256}" for r in results),
    )
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    with TransparencyLog.open(args.logdir) as log, ProgressBar(enabled=not args.json) as bar:
        bar.start("verifying entries", log.size)
        log.verify(lambda done, total: bar.update(done, total))
        checkpoint = Checkpoint.from_note(log.checkpoint())
    emit(
        args,
        {"ok": True, "size": checkpoint.size, "root_hash": _b64(checkpoint.root_hash)},
        f"ok: {checkpoint.size} entries, root {_b64(checkpoint.root_hash)}",
    )
    return EXIT_OK


def _checkpoint(args: argparse.Namespace) -> int:
    with TransparencyLog.open(args.logdir) as log:
        note = log.checkpoint()
    checkpoint = Checkpoint.from_note(note)
    emit(
        args,
        {
            "origin": checkpoint.origin,
            "size": checkpoint.size,
            "root_hash": _b64(checkpoint.root_hash),
            "note": note.to_bytes().decode(),
        },
        note.to_bytes().decode().rstrip("\n"),
    )
    return EXIT_OK


def _prove(args: argparse.Namespace) -> int:
    with TransparencyLog.open(args.logdir) as log:
        size = log.size if args.size is None else args.size
        if size > log.size or size < 0:
            raise merkle.ProofRequestError(f"tree size {size} is past the log size {log.size}")
        if not 0 <= args.index < size:
            raise merkle.ProofRequestError(f"no entry {args.index} in a tree of size {size}")
        entry = log.entry(args.index)
        proof = log.inclusion_proof(args.index, size)
        root = log.root(size)
    leaf = merkle.leaf_hash(entry)
    merkle.verify_inclusion(args.index, size, leaf, proof, root)
    emit(
        args,
        {
            "index": args.index,
            "size": size,
            "sha256": hashlib.sha256(entry).hexdigest(),
            "leaf_hash": _b64(leaf),
            "root_hash": _b64(root),
            "proof": [_b64(p) for p in proof],
        },
        "\n".join(
            [
                f"entry {args.index} in tree size {size} (verified)",
                f"sha256 {hashlib.sha256(entry).hexdigest()}",
                f"leaf hash {_b64(leaf)}",
                f"root hash {_b64(root)}",
                *(f"proof {_b64(p)}" for p in proof),
            ]
        ),
    )
    return EXIT_OK


def _consistency(args: argparse.Namespace) -> int:
    with TransparencyLog.open(args.logdir) as log:
        new = log.size if args.new is None else args.new
        if new > log.size:
            raise merkle.ProofRequestError(f"tree size {new} is past the log size {log.size}")
        if args.old < 0 or args.old > new:
            raise merkle.ProofRequestError(
                f"no consistency proof from size {args.old} to size {new} "
                "(a tree size cannot go backwards)"
            )
        if args.old == 0:
            raise LogInputError("every tree extends the empty tree; give an OLD size of 1 or more")
        proof = log.consistency_proof(args.old, new)
        old_root, new_root = log.root(args.old), log.root(new)
    merkle.verify_consistency(args.old, new, old_root, new_root, proof)
    emit(
        args,
        {
            "old_size": args.old,
            "new_size": new,
            "old_root_hash": _b64(old_root),
            "new_root_hash": _b64(new_root),
            "proof": [_b64(p) for p in proof],
        },
        "\n".join(
            [
                f"tree size {args.old} is a prefix of tree size {new} (verified)",
                f"old root {_b64(old_root)}",
                f"new root {_b64(new_root)}",
                *(f"proof {_b64(p)}" for p in proof),
            ]
        ),
    )
    return EXIT_OK

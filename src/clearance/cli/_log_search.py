"""``clearance log search``: find log entries, like ``rekor-cli search`` and ``get``.

By index (``--index``), by the entry's own digest (``--sha256``: a release,
verdict or policy envelope; for a release, the verdicts about it are listed
too), by artifact (``--artifact FILE`` or ``--artifact-sha256``: the releases
that name it) or by product and version.  Reads a log directory (``LOGDIR``)
or a gateway (``--server URL``: its public tiles, each entry checked against
the checkpoint signed by the log key of ``--trust-root``).  Exit 0 when
something matched, 1 when nothing did (as ``grep``), 2 on bad input, 3 when
the server cannot be reached.
"""

from __future__ import annotations

import argparse
import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from clearance.cli._common import (
    EXIT_OK,
    EXIT_REFUSED,
    add_json_flag,
    emit,
    existing_dir,
    mark_public_server,
    read_bytes,
    stderr,
)
from clearance.cli._progress import ProgressBar
from clearance.errors import BadInput

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def add_search_parser(actions: Any, set_handler: Callable[..., None]) -> None:
    search = actions.add_parser(
        "search",
        help="find entries by index, digest, artifact or product and version",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    search.add_argument(
        "logdir", nargs="?", type=Path, metavar="LOGDIR", help="a log directory (or --server)"
    )
    search.add_argument("--server", metavar="URL", help="a gateway: reads URL/log/")
    search.add_argument(
        "--trust-root",
        type=Path,
        metavar="trust-root.json",
        help="with --server: the trust root whose log key signs the checkpoint (required)",
    )
    search.add_argument("--index", type=int, metavar="N", help="the entry at index N")
    search.add_argument(
        "--sha256", metavar="HEX", help="the entry whose SHA-256 is HEX (release, verdict...)"
    )
    search.add_argument("--artifact", type=Path, metavar="FILE", help="releases naming this file")
    search.add_argument(
        "--artifact-sha256", metavar="HEX", help="releases naming an artifact with this SHA-256"
    )
    search.add_argument("--product", metavar="P", help="releases of product P")
    search.add_argument("--version", metavar="V", help="with --product: only version V")
    add_json_flag(search)
    mark_public_server(search)
    set_handler(search, run_search)


def _describe(index: int, entry: bytes) -> dict[str, Any]:
    """What an entry is: kind, digest and the fields worth showing."""
    from clearance.attest import Envelope, Release, Verdict, statement_of
    from clearance.attest.statement import POLICY_V1, RELEASE_V1, VERDICT_V1

    info: dict[str, Any] = {"index": index, "sha256": hashlib.sha256(entry).hexdigest()}
    try:
        envelope = Envelope.from_bytes(entry)
        statement = statement_of(envelope)
    except BadInput:
        return {**info, "kind": "raw"}
    kind = statement.predicate_type
    try:
        if kind == RELEASE_V1:
            release = Release.from_envelope(envelope)
            return {
                **info,
                "kind": "release",
                "product": release.product,
                "version": release.version,
                "channel": release.channel,
                "artifacts": [{"name": a.name, "sha256": a.sha256} for a in release.artifacts],
            }
        if kind == VERDICT_V1:
            verdict = Verdict.from_envelope(envelope)
            return {
                **info,
                "kind": "verdict",
                "decision": verdict.decision,
                "release_sha256": verdict.release_sha256,
                "release": verdict.release_name,
                "inspector": verdict.inspector,
            }
    except BadInput:
        pass
    # ".../policy/v1" -> "policy", ".../entitlement/v1" -> "entitlement"
    parts = kind.rstrip("/").split("/")
    name = "policy" if kind == POLICY_V1 else (parts[-2] if len(parts) > 1 else kind)
    subjects = [s.name for s in statement.subjects]
    return {**info, "kind": name, "subjects": subjects}


def _matches(info: dict[str, Any], args: argparse.Namespace, artifact: str | None) -> bool:
    if args.index is not None and info["index"] != args.index:
        return False
    if args.sha256 and not (
        info["sha256"] == args.sha256 or info.get("release_sha256") == args.sha256
    ):
        return False
    if artifact and not any(a["sha256"] == artifact for a in info.get("artifacts", [])):
        return False
    if args.product and info.get("product") != args.product:
        return False
    return not (args.version and info.get("version") != args.version)


def _line(info: dict[str, Any]) -> str:
    head = f"{info['index']}\t{info['kind']}\t{info['sha256']}"
    if info["kind"] == "release":
        return f"{head}\t{info['product']} {info['version']} ({info['channel']})"
    if info["kind"] == "verdict":
        return f"{head}\t{info['decision']} for {info['release']} by {info['inspector']}"
    if info.get("subjects"):
        return f"{head}\t{', '.join(info['subjects'])}"
    return head


def _entries(
    args: argparse.Namespace, stack: ExitStack
) -> tuple[int, Callable[[int, int], Iterator[bytes]]]:
    """``(size, read(start, end))`` over LOGDIR or the server's verified tiles."""
    if args.server:
        if args.trust_root is None:
            raise BadInput("--server needs --trust-root: the log key that signs its checkpoint")
        from clearance.cli.submit import load_trust_root
        from clearance.log import HttpTileSource, TiledLogClient

        root = load_trust_root(args.trust_root)
        tiles = TiledLogClient(
            HttpTileSource(args.server.rstrip("/") + "/log/"), root.log_key, root.log_origin
        )
        checkpoint, _ = tiles.checkpoint()
        size = checkpoint.size
        return size, lambda start, end: tiles.entries(start, end, size)
    from clearance.log.store import TransparencyLog

    existing_dir(args.logdir, "log directory")
    log = stack.enter_context(TransparencyLog.open(args.logdir))
    size = log.size
    return size, lambda start, end: log.entries(start, end, size)


def run_search(args: argparse.Namespace) -> int:
    if (args.logdir is None) == (args.server is None):
        raise BadInput("give either LOGDIR or --server URL (exactly one)")
    artifact = args.artifact_sha256
    if artifact is not None and not _HEX64.match(artifact):
        raise BadInput(f"--artifact-sha256 {artifact!r}: expected 64 lowercase hex digits")
    if args.sha256 is not None and not _HEX64.match(args.sha256):
        raise BadInput(f"--sha256 {args.sha256!r}: expected 64 lowercase hex digits")
    if args.artifact is not None:
        artifact = hashlib.sha256(read_bytes(args.artifact, "artifact")).hexdigest()
    if args.version and not args.product:
        raise BadInput("--version needs --product")
    if not any([args.index is not None, args.sha256, artifact, args.product]):
        raise BadInput("say what to search for: --index, --sha256, --artifact or --product")
    found: list[dict[str, Any]] = []
    with ExitStack() as stack:
        size, read = _entries(args, stack)
        if args.index is not None:
            if not 0 <= args.index < size:
                raise BadInput(f"--index {args.index}: the log has {size} entries")
            start, end = args.index, args.index + 1
        else:
            start, end = 0, size
        with ProgressBar(enabled=not args.json and end - start > 1000) as bar:
            bar.start("searching the log", end - start)
            for offset, entry in enumerate(read(start, end)):
                info = _describe(start + offset, entry)
                if _matches(info, args, artifact):
                    found.append(info)
                bar.advance()
    emit(
        args,
        {"ok": bool(found), "tree_size": size, "entries": found},
        "\n".join(_line(i) for i in found) if found else "",
    )
    if not found and not args.json:
        stderr(f"no entry matches (searched {end - start} of {size})")
    return EXIT_OK if found else EXIT_REFUSED

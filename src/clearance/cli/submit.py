"""``clearance submit ENVELOPE (--log LOGDIR | --server URL)``: log a release, verdict or policy.

With ``--log`` the envelope is checked against a trust root (``--trust-root``,
default ``LOGDIR/trust-root.json``): it must be signed by its role's keys,
and a release's version must be higher than every logged release of the same
product and channel.  Then it is appended (its RFC 8785 bytes) and the
receipt is printed: index, SHA-256, inclusion proof and signed checkpoint.
With ``--server`` the gateway does the same checks and returns the receipt.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress

from clearance.attest import Release, TrustRoot, TrustRootFormatError
from clearance.attest.admission import KIND_NAMES, check_admission, releases_in
from clearance.attest.receipt import Receipt
from clearance.attest.recovery import ChannelReset
from clearance.attest.statement import statement_of
from clearance.cli._common import EXIT_OK, SubParsers, add_json_flag, emit, read_bytes, set_handler
from clearance.cli.release import load_envelope
from clearance.errors import BadInput
from clearance.index import LogIndex
from clearance.log.reader import LogReader

TRUST_ROOT_IN_LOG = "trust-root.json"


def register(sub: SubParsers) -> None:
    submit = sub.add_parser("submit", help="append a release, verdict or policy to the log")
    submit.add_argument("envelope", metavar="ENVELOPE.json", type=Path)
    where = submit.add_mutually_exclusive_group(required=True)
    where.add_argument("--log", type=Path, metavar="LOGDIR", help="a local log directory")
    where.add_argument("--server", metavar="URL", help="a Clearance gateway")
    submit.add_argument(
        "--trust-root",
        type=Path,
        help=f"trust root to check the envelope against (default LOGDIR/{TRUST_ROOT_IN_LOG})",
    )
    add_json_flag(submit)
    set_handler(submit, _submit)


def load_trust_root(path: Path) -> TrustRoot:
    try:
        return TrustRoot.from_bytes(read_bytes(path, "trust root"))
    except TrustRootFormatError as exc:
        raise TrustRootFormatError(f"{path}: {exc}") from None


def read_history(
    log: LogReader, size: int, index: LogIndex | None = None
) -> tuple[dict[str, int], list[Release | ChannelReset]]:
    """One streamed pass over the first ``size`` entries (a progress bar on stderr for big
    logs): the index of every entry digest, and the releases and channel resets in log
    order, which is what admission needs.  The entries themselves are not kept; with
    ``index`` (a fresh :class:`~clearance.index.LogIndex`) they are applied to it on the way."""
    digests: dict[str, int] = {}

    def entries() -> Iterator[bytes]:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            console=Console(stderr=True),
            transient=True,
            disable=size < 10_000,
        ) as bar:
            task = bar.add_task("reading the log", total=size)
            for at, entry in enumerate(log.entries(0, size, size)):
                digests.setdefault(hashlib.sha256(entry).hexdigest(), at)
                if index is not None:
                    index.extend((entry,))
                if at % 1000 == 0:
                    bar.update(task, completed=at)
                yield entry

    history = list(releases_in(entries()))
    return digests, history


def _submit(args: argparse.Namespace) -> int:
    envelope = load_envelope(args.envelope, "envelope")
    if args.server:
        if args.trust_root:
            raise BadInput("--trust-root applies to --log; the gateway checks with its own")
        from clearance.gateway.client import GatewayClient

        with GatewayClient(args.server) as gateway:
            receipt = gateway.submit(envelope.to_bytes())
        emit(args, receipt, _receipt_text(receipt))
        return EXIT_OK

    from clearance.log.checkpoint import Checkpoint
    from clearance.log.merkle import leaf_hash, verify_inclusion
    from clearance.log.store import TransparencyLog

    root_path = args.trust_root or args.log / TRUST_ROOT_IN_LOG
    if not args.trust_root and not root_path.exists():
        raise BadInput(
            f"{args.log}: no {TRUST_ROOT_IN_LOG} in the log directory; give --trust-root"
        )
    trust_root = load_trust_root(root_path)
    from clearance.cli._index import index_for, log_trust_root

    # The log's verifiable index (under the log's own trust root) knows the revoked keys;
    # with it as the log's extension, every new checkpoint commits to its root.
    index = index_for(log_trust_root(args.log) or trust_root)
    assert index is not None
    with TransparencyLog.open(args.log, extension=index) as log:
        digests, history = read_history(log, log.size, index)
        digest = envelope.sha256
        existing = digests.get(digest)
        if existing is None:
            admitted = check_admission(
                envelope, trust_root, history, digests, revoked_keys=index.revoked_keys
            )
            (result,) = log.append([admitted.entry])
            at, kind = result.index, admitted.kind
        else:
            # Already logged: the same receipt again, as the gateway does.
            at, kind = existing, KIND_NAMES.get(statement_of(envelope).predicate_type, "")
        note = log.checkpoint()
        size = Checkpoint.from_note(note).size
        proof = log.inclusion_proof(at, size)
        # Check the receipt before handing it out: a wrong proof is a bug here, not later.
        verify_inclusion(at, size, leaf_hash(envelope.to_bytes()), proof, log.root(size))
    receipt = Receipt.of(
        at, digest, size, proof, note.to_bytes().decode(), kind, existing is not None
    ).to_dict()
    emit(args, receipt, _receipt_text(receipt))
    return EXIT_OK


def _receipt_text(receipt: dict[str, Any]) -> str:
    index = receipt.get("log_index", receipt.get("index"))
    lines = [
        f"{index}\t{receipt.get('sha256')}"
        + (" (already logged)" if receipt.get("duplicate") else "")
    ]
    if "tree_size" in receipt:
        lines.append(f"included in tree of size {receipt['tree_size']}")
    if isinstance(receipt.get("checkpoint"), str):
        lines.append(receipt["checkpoint"].rstrip("\n"))
    return "\n".join(lines)

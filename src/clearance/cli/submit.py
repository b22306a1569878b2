"""``clearance submit ENVELOPE (--log LOGDIR | --server URL)``: log a release, verdict, policy
or signed report.

With ``--log`` the envelope is checked against a trust root (``--trust-root``,
default ``LOGDIR/trust-root.json``): it must be signed by its role's keys,
and a release's version must be higher than every logged release of the same
product and channel; a signed report (``clearance report --key``) must cite this log's
root at the tree size it covers.  Then it is appended (its RFC 8785 bytes) and the
receipt is printed: index, SHA-256, inclusion proof and signed checkpoint.
With ``--server`` the gateway does the same checks and returns the receipt;
``--artifacts DIR`` then uploads the release's artifacts (found in DIR by
name, checked against the digests the release names before anything is sent)
so that its inspection can start.  The receipt is printed with labels, or as
JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearance.attest import Release, TrustRoot, TrustRootFormatError
from clearance.attest.admission import (
    KIND_NAMES,
    KIND_REPORT,
    AdmissionRefused,
    check_admission,
    releases_in,
)
from clearance.attest.receipt import Receipt
from clearance.attest.recovery import ChannelReset
from clearance.attest.report import ReportClaim
from clearance.attest.statement import statement_of
from clearance.cli._common import (
    EXIT_OK,
    SubParsers,
    add_json_flag,
    emit,
    existing_dir,
    gateway_client,
    read_bytes,
    set_handler,
)
from clearance.cli._progress import ProgressBar
from clearance.cli.release import load_envelope
from clearance.errors import BadInput
from clearance.index import LogIndex
from clearance.log.reader import LogReader

if TYPE_CHECKING:
    from clearance.log.store import TransparencyLog

TRUST_ROOT_IN_LOG = "trust-root.json"


def register(sub: SubParsers) -> None:
    submit = sub.add_parser(
        "submit",
        help="append a release, verdict, policy, report or entitlement to the log",
        description="Submit a signed envelope (release, verdict, policy; entitlements and "
        "other gateway statements with --server) and print the receipt: log index, tree "
        "size, inclusion proof and the signed checkpoint.",
    )
    submit.add_argument(
        "envelope", metavar="ENVELOPE.json", type=Path, help="the signed envelope to log"
    )
    where = submit.add_mutually_exclusive_group(required=True)
    where.add_argument("--log", type=Path, metavar="LOGDIR", help="a local log directory")
    where.add_argument("--server", metavar="URL", help="a Clearance gateway")
    submit.add_argument(
        "--trust-root",
        type=Path,
        help=f"trust root to check the envelope against (default LOGDIR/{TRUST_ROOT_IN_LOG})",
    )
    submit.add_argument(
        "--artifacts",
        type=Path,
        metavar="DIR",
        help="with --server and a release: upload the release's artifacts found in DIR",
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
        with ProgressBar(enabled=size >= 10_000) as bar:
            bar.start("reading the log", size)
            for at, entry in enumerate(log.entries(0, size, size)):
                digests.setdefault(hashlib.sha256(entry).hexdigest(), at)
                if index is not None:
                    index.extend((entry,))
                if at % 1000 == 0:
                    bar.update(at)
                yield entry

    history = list(releases_in(entries()))
    return digests, history


def _submit(args: argparse.Namespace) -> int:
    envelope = load_envelope(args.envelope, "envelope")
    if args.server:
        if args.trust_root:
            raise BadInput("--trust-root applies to --log; the gateway checks with its own")
        uploads = _artifact_files(args.artifacts, envelope) if args.artifacts else []
        with gateway_client(args) as gateway:
            receipt = gateway.submit(envelope.to_bytes())
            uploaded = [{"name": name, **gateway.upload_artifact(data)} for name, data in uploads]
        if args.artifacts:
            receipt = {**receipt, "uploaded": uploaded}
        emit(args, receipt, _receipt_text(receipt))
        return EXIT_OK
    if args.artifacts:
        raise BadInput("--artifacts applies to --server: a local log holds no artifacts")

    from clearance.log.checkpoint import Checkpoint
    from clearance.log.merkle import leaf_hash, verify_inclusion
    from clearance.log.store import TransparencyLog

    root_path = args.trust_root or args.log / TRUST_ROOT_IN_LOG
    if not args.trust_root and not root_path.exists():
        raise BadInput(
            f"{args.log}: no {TRUST_ROOT_IN_LOG} in the log directory; give --trust-root"
        )
    trust_root = load_trust_root(root_path)
    from clearance.cli._index import index_for, log_trust_root, record_log_trust_root

    # The log's verifiable index (under the log's own trust root) knows the revoked keys;
    # with it as the log's extension, every new checkpoint commits to its root.  A log that
    # names no trust root yet records this one: its index is computed under it from now on.
    index_root = log_trust_root(args.log)
    if index_root is None:
        index_root = trust_root
        record_log_trust_root(args.log, trust_root)
    index = index_for(index_root)
    assert index is not None
    with TransparencyLog.open(args.log, extension=index) as log:
        digests, history = read_history(log, log.size, index)
        digest = envelope.sha256
        existing = digests.get(digest)
        if existing is None:
            admitted = check_admission(
                envelope, trust_root, history, digests, revoked_keys=index.revoked_keys
            )
            if admitted.kind == KIND_REPORT:
                _check_cited_tree(ReportClaim.from_statement(statement_of(envelope)), log)
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


def _check_cited_tree(claim: ReportClaim, log: TransparencyLog) -> None:
    """A report is logged only into the log whose tree it read, at a size it already had."""
    what = f"the report cites {claim.origin!r} at tree size {claim.tree_size}"
    if claim.origin != log.origin:
        raise AdmissionRefused(f"{what}, not this log ({log.origin!r})")
    if claim.tree_size > log.size:
        raise AdmissionRefused(f"{what}, but this log has only {log.size} entries")
    root = log.root(claim.tree_size) if claim.tree_size else hashlib.sha256(b"").digest()
    if root.hex() != claim.root_hash:
        raise AdmissionRefused(
            f"{what} with root {claim.root_hash}, but the log's root at that size is {root.hex()}"
        )


def _artifact_files(directory: Path, envelope: Any) -> list[tuple[str, bytes]]:
    """Every artifact of the release, read from ``directory`` and checked against its digest."""
    from clearance.attest import Release

    existing_dir(directory, "artifacts folder")
    try:
        release = Release.from_envelope(envelope)
    except BadInput:
        raise BadInput("--artifacts: the envelope is not a release") from None
    files = []
    for artifact in release.artifacts:
        candidates = [directory / artifact.name, directory / Path(artifact.name).name]
        path = next((c for c in candidates if c.is_file()), candidates[0])
        data = read_bytes(path, f"artifact {artifact.name!r}")
        if hashlib.sha256(data).hexdigest() != artifact.sha256:
            raise BadInput(
                f"{path}: not the artifact {artifact.name!r} the release names "
                f"(SHA-256 differs); nothing was submitted"
            )
        files.append((artifact.name, data))
    return files


def _receipt_text(receipt: dict[str, Any]) -> str:
    """The receipt with a label per line (``--json`` keeps the machine form)."""
    index = receipt.get("log_index", receipt.get("index"))
    kind = receipt.get("kind") or "entry"
    status = "already logged, same receipt" if receipt.get("duplicate") else "logged"
    lines = [
        f"{kind} {status}",
        f"  log index:  {index}",
        f"  sha256:     {receipt.get('sha256')}",
    ]
    if "tree_size" in receipt:
        lines.append(f"  tree size:  {receipt['tree_size']}")
    proof = receipt.get("inclusion_proof")
    if isinstance(proof, list):
        lines.append(f"  inclusion proof ({len(proof)} hash{'es' if len(proof) != 1 else ''}):")
        lines.extend(f"    {h}" for h in proof)
    if isinstance(receipt.get("checkpoint"), str):
        lines.append("  checkpoint:")
        checkpoint = receipt["checkpoint"].rstrip("\n").split("\n")
        lines.extend(f"    {line}" if line else "" for line in checkpoint)
    for item in receipt.get("uploaded", []) or []:
        lines.append(f"  uploaded:   {item.get('name')} ({item.get('size')} bytes)")
    return "\n".join(lines)

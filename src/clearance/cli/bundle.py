"""``clearance bundle ARTIFACT --release R (--log LOGDIR | --server URL) --out B``.

Collects the release, every verdict on it found in the log, their inclusion
proofs and the log's current checkpoint with its cosignatures into one
offline bundle (``application/vnd.clearance.bundle.v1+json``).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from clearance.attest import Release
from clearance.cli._common import (
    EXIT_OK,
    SubParsers,
    add_json_flag,
    emit,
    gateway_client,
    read_bytes,
    set_handler,
)
from clearance.cli._files import write_output
from clearance.cli.release import load_envelope
from clearance.client import Bundle
from clearance.errors import BadInput
from clearance.log.reader import LogReader


class ArtifactNotInReleaseError(BadInput):
    """The artifact given to ``bundle`` is not one the release names."""


def register(sub: SubParsers) -> None:
    bundle = sub.add_parser("bundle", help="an offline verification bundle for one artifact")
    bundle.add_argument("artifact", metavar="ARTIFACT", type=Path, help="the artifact file")
    bundle.add_argument(
        "--release",
        required=True,
        type=Path,
        metavar="RELEASE.json",
        help="the signed release that names the artifact",
    )
    where = bundle.add_mutually_exclusive_group(required=True)
    where.add_argument("--log", type=Path, metavar="LOGDIR", help="read a local log directory")
    where.add_argument("--server", metavar="URL", help="ask a gateway for the bundle")
    bundle.add_argument(
        "--checkpoint",
        type=Path,
        help="a signed (cosigned) checkpoint of the log to prove against (default: the current one)",
    )
    bundle.add_argument(
        "--distribution-policy",
        "--policy",
        dest="policy",
        type=Path,
        metavar="POLICY.json",
        help="a logged distribution policy to include (--policy is the old name)",
    )
    bundle.add_argument(
        "--entitlement",
        type=Path,
        metavar="ENTITLEMENT.json",
        help="the customer's logged entitlement (commitment) to include, for verify --customer",
    )
    bundle.add_argument(
        "--opening",
        type=Path,
        metavar="OPENING.json",
        help="the opening of --entitlement (the customer's private copy)",
    )
    bundle.add_argument(
        "--since",
        type=int,
        action="append",
        default=[],
        metavar="SIZE",
        help="add a consistency proof from this older tree size (the client's last seen)",
    )
    bundle.add_argument(
        "--out", required=True, type=Path, metavar="BUNDLE.json", help="where to write the bundle"
    )
    add_json_flag(bundle)
    set_handler(bundle, _bundle)


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(read_bytes(path, "artifact")).hexdigest()


def _bundle(args: argparse.Namespace) -> int:
    envelope = load_envelope(args.release, "release")
    release = Release.from_envelope(envelope)
    digest = _sha256_file(args.artifact)
    if release.artifact_by_digest(digest) is None:
        raise ArtifactNotInReleaseError(
            f"{args.artifact}: sha256 {digest} is not an artifact of {args.release}"
        )
    if args.server:
        if args.checkpoint or args.policy or args.since or args.entitlement or args.opening:
            raise BadInput(
                "--checkpoint, --distribution-policy, --entitlement, --opening and --since "
                "apply to --log only"
            )
        with gateway_client(args) as gateway:
            data = gateway.bundle(envelope.sha256)
        bundle = Bundle.from_bytes(data)
    else:
        bundle = _from_log(args, envelope.sha256)
    write_output(args.out, bundle.to_bytes(), "bundle")
    emit(
        args,
        {
            "out": str(args.out),
            "release_sha256": envelope.sha256,
            "log_index": bundle.release.index,
            "verdicts": [v.index for v in bundle.verdicts],
            "policy": None if bundle.policy is None else bundle.policy.index,
        },
        f"wrote {args.out}: release at index {bundle.release.index}, "
        f"{len(bundle.verdicts)} verdict(s)",
    )
    return EXIT_OK


def _from_log(args: argparse.Namespace, release_sha256: str) -> Bundle:
    from clearance.cli._common import read_json
    from clearance.cli._index import index_for, log_trust_root
    from clearance.gateway.bundles import (
        PolicyNotInLogError,
        ReleaseNotInLogError,
        build_bundle,
        find_entries,
    )
    from clearance.keys import Note
    from clearance.log.checkpoint import Checkpoint, open_checkpoint
    from clearance.log.store import TransparencyLog

    policy_sha = load_envelope(args.policy, "policy").sha256 if args.policy else None
    entitlement_sha = (
        load_envelope(args.entitlement, "entitlement").sha256 if args.entitlement else None
    )
    opening = read_json(args.opening, "entitlement opening") if args.opening else None
    if (opening is None) != (entitlement_sha is None):
        raise BadInput("--entitlement and --opening go together")
    index_root = log_trust_root(args.log)
    with TransparencyLog.open(args.log) as log:
        if args.checkpoint:
            data = read_bytes(args.checkpoint, "checkpoint")
            open_checkpoint(data, log.verifier, log.origin)
            note = Note.from_bytes(data)
        else:
            note = log.checkpoint()
        size = Checkpoint.from_note(note).size
        if size > log.size:
            raise BadInput(f"{args.checkpoint}: checkpoint of size {size} is ahead of the log")
        try:
            found = find_entries(log, release_sha256, size, policy_sha256=policy_sha)
        except ReleaseNotInLogError:
            raise ReleaseNotInLogError(
                f"{args.release}: the release is not in the log (submit it first)"
            ) from None
        except PolicyNotInLogError:
            raise PolicyNotInLogError(f"{args.policy}: the policy is not in the log") from None
        entitlement_index, rollout = _distribution_entries(
            log, size, release_sha256, entitlement_sha
        )
        if entitlement_sha is not None and entitlement_index is None:
            raise BadInput(f"{args.entitlement}: the entitlement is not in the log")
        # With the log's index (LOGDIR/trust-root.json), the bundle carries the index proofs of
        # the release and its channel, and every verdict the index lists.
        index = index_for(index_root)
        if index is not None:
            index.extend(log.entries(0, size, size))
        return build_bundle(
            log,
            note,
            found.release,
            found.verdicts,
            found.policy,
            args.since,
            index=index,
            entitlement_index=entitlement_index,
            entitlement_opening=opening,
            rollout_indices=rollout,
        )


def _distribution_entries(
    log: LogReader, size: int, release_sha256: str, entitlement_sha256: str | None
) -> tuple[int | None, list[int]]:
    """Where the customer's entitlement is, and the release's signed rollout transitions."""
    from clearance.attest.dsse import Envelope
    from clearance.attest.statement import TRANSITION_V1, statement_of
    from clearance.log.reader import read_entry

    entitlement: int | None = None
    rollout: list[int] = []
    marker = TRANSITION_V1.encode()
    for index in range(size):
        entry = read_entry(log, index, size)
        if (
            entitlement_sha256 is not None
            and hashlib.sha256(entry).hexdigest() == entitlement_sha256
        ):
            entitlement = index
        elif b"payloadType" in entry:
            try:
                envelope = Envelope.from_bytes(entry)
                if marker in envelope.payload:
                    statement = statement_of(envelope, TRANSITION_V1)
                    if statement.predicate.get("release") == release_sha256:
                        rollout.append(index)
            except BadInput:
                continue
    return entitlement, rollout

"""Building offline bundles from a log: the one bundle builder.

:func:`build_bundle` takes any :class:`~clearance.log.LogReader` (the
embedded :class:`~clearance.log.TransparencyLog`, a
:class:`~clearance.log.TiledLogClient` over a directory or HTTP, the
gateway's log) and the indices of the entries to include.  The gateway
knows the indices from its metadata index; the command line
(``clearance bundle --log``) finds them with :func:`find_entries`, one
streamed pass over the log.  The wire format and its verifier are the
endpoint's (:mod:`clearance.client`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clearance.attest.dsse import Envelope
from clearance.attest.verdict import Verdict
from clearance.client.bundle import Bundle, ConsistencyProof, LoggedEntry
from clearance.client.errors import MalformedBundleError
from clearance.errors import BadInput
from clearance.index import IndexProof, LogIndex, index_root_of
from clearance.keys import Note
from clearance.log.checkpoint import Checkpoint
from clearance.log.merkle import verify_inclusion
from clearance.log.reader import LogReader, read_entry


class EntryNotInLogError(BadInput):
    """An entry a bundle should carry is not in the log (at the checkpoint's size)."""


class ReleaseNotInLogError(EntryNotInLogError):
    """The release to bundle is not in the log."""


class PolicyNotInLogError(EntryNotInLogError):
    """The policy to bundle is not in the log."""


def build_bundle(
    log: LogReader,
    checkpoint: bytes | Note,
    release_index: int,
    verdict_indices: Sequence[int] = (),
    policy_index: int | None = None,
    since_sizes: Sequence[int] = (),
    index: LogIndex | None = None,
    *,
    entitlement_index: int | None = None,
    entitlement_opening: Mapping[str, Any] | None = None,
    rollout_indices: Sequence[int] = (),
) -> Bundle:
    """Assemble a bundle from a log for the entries at the given indices.

    ``checkpoint`` is the signed (ideally witness-cosigned) checkpoint note
    whose tree size every proof is made for.  ``since_sizes`` adds
    consistency proofs from those older sizes (e.g. the client's last seen).
    ``entitlement_index`` and ``entitlement_opening`` add a customer's committed
    entitlement and its opening, ``rollout_indices`` the release's signed rollout
    transitions (what ``verify --customer`` evaluates offline).
    Every inclusion proof is checked against the checkpoint's root before
    the bundle is returned (a wrong proof is the log's bug, caught here).

    ``index`` (the log's :class:`~clearance.index.LogIndex` at the checkpoint's
    size) adds the index records and proofs of the release, its channel and
    ``meta``, and every verdict the index lists for the release that
    ``verdict_indices`` lacks: the bundle is complete by construction.  Its root
    must be the one the checkpoint commits to (else :class:`MalformedBundleError`).
    """
    checkpoint_bytes = checkpoint.to_bytes() if isinstance(checkpoint, Note) else checkpoint
    tree = Checkpoint.from_note(Note.from_bytes(checkpoint_bytes))
    size = tree.size

    def logged(index: int) -> LoggedEntry:
        if not 0 <= index < size:
            raise MalformedBundleError(f"entry {index} is not in the checkpoint's tree of {size}")
        entry = LoggedEntry.of(
            read_entry(log, index, size), index, log.inclusion_proof(index, size)
        )
        verify_inclusion(index, size, entry.leaf_hash, entry.inclusion_proof, tree.root_hash)
        return entry

    release = logged(release_index)
    proofs: tuple[IndexProof, ...] = ()
    verdict_list = list(dict.fromkeys(verdict_indices))
    if index is not None:
        release_sha = hashlib.sha256(release.envelope).hexdigest()
        snapshot = index.snapshot(release_sha, size)
        if snapshot is None or index_root_of(tree) != snapshot[0]:
            raise MalformedBundleError(
                f"the index (size {index.size}) is not the one the checkpoint of size {size} "
                "commits to"
            )
        _, proofs, listed = snapshot
        verdict_list = sorted(set(verdict_list) | set(listed))
    return Bundle(
        checkpoint=checkpoint_bytes,
        release=release,
        verdicts=tuple(logged(i) for i in verdict_list),
        policy=None if policy_index is None else logged(policy_index),
        consistency=tuple(
            ConsistencyProof(old, tuple(log.consistency_proof(old, size)))
            for old in sorted(set(since_sizes))
            if 0 < old < size
        ),
        entitlement=None if entitlement_index is None else logged(entitlement_index),
        entitlement_opening=None if entitlement_opening is None else dict(entitlement_opening),
        rollout=tuple(logged(i) for i in rollout_indices),
        index=proofs,
    )


@dataclass(frozen=True)
class BundleEntries:
    """Where a release, the verdicts on it and (if asked for) a policy are in the log."""

    release: int
    verdicts: tuple[int, ...]
    policy: int | None = None


def find_entries(
    log: LogReader, release_sha256: str, size: int, *, policy_sha256: str | None = None
) -> BundleEntries:
    """One streamed pass over the first ``size`` entries: the release envelope, every
    verdict on it, and the policy envelope with digest ``policy_sha256`` if given.

    For the command line on a log without an index; a server keeps an index
    instead and calls :func:`build_bundle` with the indices.
    """
    release: int | None = None
    policy: int | None = None
    verdicts: list[int] = []
    for index, data in enumerate(log.entries(0, size, size)):
        sha = hashlib.sha256(data).hexdigest()
        if sha == release_sha256:
            release = index
        elif sha == policy_sha256:
            policy = index
        elif b"payloadType" in data:
            try:
                verdict = Verdict.from_envelope(Envelope.from_bytes(data))
            except BadInput:
                continue
            if verdict.release_sha256 == release_sha256:
                verdicts.append(index)
    if release is None:
        raise ReleaseNotInLogError(
            f"release {release_sha256} is not in the first {size} log entries (submit it first)"
        )
    if policy_sha256 is not None and policy is None:
        raise PolicyNotInLogError(f"policy {policy_sha256} is not in the first {size} log entries")
    return BundleEntries(release, tuple(verdicts), policy)

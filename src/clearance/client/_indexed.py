"""The verifier's index step: what the log's verifiable index says about the release.

The bundle's own verdicts are only a selection; the index records (proved
against the root the checkpoint commits to) say what the whole log holds: every
verdict on the release, whether it or one of its keys was revoked, the
channel's epoch and floor, and the revoked keys.  See :mod:`clearance.index`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clearance.client.bundle import Bundle
from clearance.client.errors import (
    IncompleteBundleError,
    IndexMissingError,
    IndexProofError,
    NotApprovedInIndexError,
    ReleaseRevokedError,
)
from clearance.errors import Refused
from clearance.index import (
    META_KEY,
    IndexProof,
    channel_key,
    index_root_of,
    release_key,
    verify_index_proof,
)
from clearance.index import IndexMissingError as _IndexMissing
from clearance.log.checkpoint import Checkpoint


@dataclass(frozen=True)
class IndexedState:
    """The index's view of one release and its channel, at the bundle's checkpoint."""

    epoch: int
    floor: str | None
    latest: str | None
    revoked_keys: frozenset[str]


def _field(record: Mapping[str, Any], name: str, kinds: type | tuple[type, ...], what: str) -> Any:
    value = record.get(name)
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise IndexProofError(f"index record {what}: {name!r} is missing or malformed")
    return value


def _proved(proofs: Mapping[str, IndexProof], key: str, root: bytes, what: str) -> dict[str, Any]:
    proof = proofs.get(key)
    if proof is None:
        raise IndexMissingError(f"the bundle carries no index record for {what}")
    try:
        record = verify_index_proof(proof, root)
    except Refused as exc:
        raise IndexProofError(str(exc)) from None
    return dict(record)


def check_index(
    bundle: Bundle,
    checkpoint: Checkpoint,
    release_sha256: str,
    product: str,
    channel: str,
    carried_verdicts: Sequence[int],
) -> IndexedState:
    """Refuse a release the index does not show approved, complete and unrevoked."""
    try:
        root = index_root_of(checkpoint)
    except _IndexMissing as exc:
        raise IndexMissingError(str(exc)) from None
    except Refused as exc:
        raise IndexProofError(str(exc)) from None
    proofs = {p.key: p for p in bundle.index}
    what = f"release {product} ({release_sha256[:12]}…)"
    rel = _proved(proofs, release_key(release_sha256), root, what)
    ch = _proved(proofs, channel_key(product, channel), root, f"channel {product}/{channel}")
    meta = _proved(proofs, META_KEY, root, "the index meta record")

    if (
        rel.get("sha256") != release_sha256
        or _field(rel, "logIndex", int, what) != bundle.release.index
    ):
        raise IndexProofError(f"the index record is for another release than the bundle's {what}")
    listed = _field(rel, "verdicts", list, what)
    carried = set(carried_verdicts)
    missing: list[str] = []
    for item in listed:
        if not isinstance(item, dict):
            raise IndexProofError(f"index record {what}: a verdict entry is not an object")
        index = _field(item, "logIndex", int, what)
        if index not in carried:
            missing.append(f"{item.get('decision')} at log index {index}")
    if missing:
        raise IncompleteBundleError(
            f"the log holds verdicts on {what} that the bundle leaves out: {', '.join(missing)}"
        )
    revoked = rel.get("revoked")
    if revoked is not None:
        by = revoked.get("by") if isinstance(revoked, dict) else None
        at = revoked.get("logIndex") if isinstance(revoked, dict) else None
        raise ReleaseRevokedError(f"{what} was revoked (by {by}, log index {at})")
    state = _field(rel, "state", str, what)
    if state != "approved":
        raise NotApprovedInIndexError(f"the log's index says {what} is {state}")

    if ch.get("product") != product or ch.get("channel") != channel:
        raise IndexProofError(f"the index channel record is not {product}/{channel}")
    epoch = _field(ch, "epoch", int, f"channel {product}/{channel}")
    floor = ch.get("floor")
    if floor is not None and not isinstance(floor, str):
        raise IndexProofError(f"index record channel {product}/{channel}: floor is malformed")
    latest = ch.get("latest")
    latest_version = latest.get("version") if isinstance(latest, dict) else None
    keys = _field(meta, "revokedKeys", dict, "meta")
    return IndexedState(
        epoch,
        floor,
        latest_version if isinstance(latest_version, str) else None,
        frozenset(str(k) for k in keys),
    )

"""The offline bundle: everything an endpoint needs to verify one release without a network.

Wire form (media type :data:`BUNDLE_MEDIA_TYPE`, RFC 8785 JSON)::

    {"mediaType": "application/vnd.clearance.bundle.v1+json",
     "checkpoint": "<signed note text: body, blank line, log signature, cosignatures>",
     "release":  ENTRY,
     "verdicts": [ENTRY, ...],
     "policy":   ENTRY | null,
     "consistency": [{"fromSize": int, "proof": [hex, ...]}, ...],
     "index": [{"key": str, "value": base64(record JSON), "proof": [hex, ...]}, ...]}

    ENTRY = {"envelope": base64(exact logged bytes of the DSSE envelope),
             "logIndex": int, "leafHash": hex, "inclusionProof": [hex, ...]}

Every inclusion proof is for the tree size of the bundle's checkpoint.
``leafHash`` binds each proof to the entry it was made for, so a proof
moved from another bundle is told apart from an entry that is not logged.
``consistency`` optionally proves that older tree sizes (a client's last
seen checkpoint) are prefixes of the checkpoint's tree.  ``index`` carries
the verifiable index records of the release, its channel and ``meta``, with
their proofs to the index root in the checkpoint (:mod:`clearance.index`):
the verifier requires them.  Unknown top-level members are ignored when
parsing, so later parts can add members (policy, entitlement, ...).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from clearance.attest.canonical import canonical_json
from clearance.attest.dsse import Envelope
from clearance.attest.verdict import Verdict
from clearance.client.errors import MalformedBundleError
from clearance.errors import BadInput
from clearance.index import IndexProof, LogIndex, index_root_of
from clearance.keys import Note
from clearance.log.checkpoint import Checkpoint
from clearance.log.merkle import HASH_SIZE, leaf_hash, verify_inclusion

BUNDLE_MEDIA_TYPE = "application/vnd.clearance.bundle.v1+json"
MAX_BUNDLE_BYTES = 32 << 20
MAX_VERDICTS = 64
MAX_PROOF_LENGTH = 64
MAX_CONSISTENCY_PROOFS = 16
MAX_INDEX_PROOFS = 16
MAX_INDEX_PROOF_LENGTH = 256


def _hex_hash(value: object, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * HASH_SIZE:
        raise MalformedBundleError(f"{what} is not a 64-digit hex hash")
    try:
        decoded = bytes.fromhex(value)
    except ValueError:
        decoded = b""
    if len(decoded) != HASH_SIZE:  # fromhex skips spaces: check what came out
        raise MalformedBundleError(f"{what} is not a 64-digit hex hash")
    return decoded


def _proof(value: object, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > MAX_PROOF_LENGTH:
        raise MalformedBundleError(f"{what} is not a list of at most {MAX_PROOF_LENGTH} hashes")
    # Fast path (this runs on every verification): decode all, then check the lengths.
    try:
        hashes = tuple(map(bytes.fromhex, value))
    except (TypeError, ValueError):
        hashes = ()
    if len(hashes) == len(value) and set(map(len, hashes)) <= {HASH_SIZE}:
        return hashes
    return tuple(_hex_hash(h, f"{what}[{i}]") for i, h in enumerate(value))


def _index(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 63:
        raise MalformedBundleError(f"{what} is not a non-negative integer")
    return value


@dataclass(frozen=True)
class LoggedEntry:
    """A logged envelope (its exact bytes) with its index, leaf hash and inclusion proof."""

    envelope: bytes
    index: int
    leaf_hash: bytes
    inclusion_proof: tuple[bytes, ...]

    @classmethod
    def of(cls, envelope: bytes, index: int, proof: Sequence[bytes]) -> LoggedEntry:
        return cls(envelope, index, leaf_hash(envelope), tuple(proof))

    def to_dict(self) -> dict[str, Any]:
        return {
            "envelope": base64.b64encode(self.envelope).decode(),
            "logIndex": self.index,
            "leafHash": self.leaf_hash.hex(),
            "inclusionProof": [h.hex() for h in self.inclusion_proof],
        }

    @classmethod
    def from_dict(cls, value: object, what: str) -> LoggedEntry:
        if isinstance(value, dict):  # fast path for the valid case, no messages built
            encoded, index = value.get("envelope"), value.get("logIndex")
            leaf, proof = value.get("leafHash"), value.get("inclusionProof")
            if (
                isinstance(encoded, str)
                and type(index) is int
                and 0 <= index < 1 << 63
                and isinstance(leaf, str)
                and len(leaf) == 2 * HASH_SIZE
                and isinstance(proof, list)
            ):
                try:
                    envelope = binascii.a2b_base64(encoded, strict_mode=True)
                    leaf_bytes = bytes.fromhex(leaf)
                except (binascii.Error, ValueError):
                    pass
                else:
                    if len(leaf_bytes) == HASH_SIZE:
                        return cls(
                            envelope, index, leaf_bytes, _proof(proof, f"{what}.inclusionProof")
                        )
        if not isinstance(value, dict):
            raise MalformedBundleError(f"{what} is not a JSON object")
        encoded = value.get("envelope")
        if not isinstance(encoded, str):
            raise MalformedBundleError(f"{what}.envelope is not a base64 string")
        try:
            envelope = binascii.a2b_base64(encoded, strict_mode=True)
        except (binascii.Error, ValueError):
            raise MalformedBundleError(f"{what}.envelope is not valid base64") from None
        return cls(
            envelope,
            _index(value.get("logIndex"), f"{what}.logIndex"),
            _hex_hash(value.get("leafHash"), f"{what}.leafHash"),
            _proof(value.get("inclusionProof"), f"{what}.inclusionProof"),
        )


@dataclass(frozen=True)
class ConsistencyProof:
    """A proof that the tree of ``from_size`` leaves is a prefix of the checkpoint's tree."""

    from_size: int
    proof: tuple[bytes, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"fromSize": self.from_size, "proof": [h.hex() for h in self.proof]}

    @classmethod
    def from_dict(cls, value: object, what: str) -> ConsistencyProof:
        if not isinstance(value, dict):
            raise MalformedBundleError(f"{what} is not a JSON object")
        return cls(
            _index(value.get("fromSize"), f"{what}.fromSize"),
            _proof(value.get("proof"), f"{what}.proof"),
        )


def _index_proof(value: object, what: str) -> IndexProof:
    if not isinstance(value, dict):
        raise MalformedBundleError(f"{what} is not a JSON object")
    key, encoded, proof = value.get("key"), value.get("value"), value.get("proof")
    if not isinstance(key, str) or not key or len(key) > 1024:
        raise MalformedBundleError(f"{what}.key is not a short string")
    if not isinstance(encoded, str):
        raise MalformedBundleError(f"{what}.value is not a base64 string")
    try:
        record = binascii.a2b_base64(encoded, strict_mode=True)
    except (binascii.Error, ValueError):
        raise MalformedBundleError(f"{what}.value is not valid base64") from None
    if not isinstance(proof, list) or len(proof) > MAX_INDEX_PROOF_LENGTH:
        raise MalformedBundleError(
            f"{what}.proof is not a list of at most {MAX_INDEX_PROOF_LENGTH} hashes"
        )
    return IndexProof(
        key, record, tuple(_hex_hash(h, f"{what}.proof[{i}]") for i, h in enumerate(proof))
    )


@dataclass(frozen=True)
class Bundle:
    """A release, its verdicts (and policy), their inclusion proofs and one checkpoint."""

    checkpoint: bytes
    release: LoggedEntry
    verdicts: tuple[LoggedEntry, ...] = ()
    policy: LoggedEntry | None = None
    consistency: tuple[ConsistencyProof, ...] = ()
    index: tuple[IndexProof, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "checkpoint": self.checkpoint.decode("utf-8"),
            "release": self.release.to_dict(),
            "verdicts": [v.to_dict() for v in self.verdicts],
            "policy": None if self.policy is None else self.policy.to_dict(),
            "consistency": [c.to_dict() for c in self.consistency],
            "index": [p.to_dict() for p in self.index],
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Bundle:
        """Parse a bundle; anything malformed is a :class:`MalformedBundleError`, never a crash."""
        if len(data) > MAX_BUNDLE_BYTES:
            raise MalformedBundleError(f"bundle is larger than {MAX_BUNDLE_BYTES} bytes")
        try:
            value = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise MalformedBundleError("bundle is not valid JSON") from None
        return cls.from_dict(value)

    @classmethod
    def from_dict(cls, value: object) -> Bundle:
        if not isinstance(value, dict):
            raise MalformedBundleError("bundle is not a JSON object")
        if value.get("mediaType") != BUNDLE_MEDIA_TYPE:
            raise MalformedBundleError(f"bundle mediaType is not {BUNDLE_MEDIA_TYPE!r}")
        checkpoint = value.get("checkpoint")
        if not isinstance(checkpoint, str) or not checkpoint:
            raise MalformedBundleError("bundle checkpoint is not a signed note string")
        verdicts = value.get("verdicts", [])
        if not isinstance(verdicts, list) or len(verdicts) > MAX_VERDICTS:
            raise MalformedBundleError(f"bundle verdicts is not a list of at most {MAX_VERDICTS}")
        consistency = value.get("consistency", [])
        if not isinstance(consistency, list) or len(consistency) > MAX_CONSISTENCY_PROOFS:
            raise MalformedBundleError("bundle consistency is not a short list of proofs")
        policy = value.get("policy")
        index = value.get("index", [])
        if not isinstance(index, list) or len(index) > MAX_INDEX_PROOFS:
            raise MalformedBundleError(f"bundle index is not a list of at most {MAX_INDEX_PROOFS}")
        try:
            checkpoint_bytes = checkpoint.encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedBundleError("bundle checkpoint is not UTF-8 text") from None
        return cls(
            checkpoint=checkpoint_bytes,
            release=LoggedEntry.from_dict(value.get("release"), "release"),
            verdicts=tuple(
                LoggedEntry.from_dict(v, f"verdicts[{i}]") for i, v in enumerate(verdicts)
            ),
            policy=None if policy is None else LoggedEntry.from_dict(policy, "policy"),
            consistency=tuple(
                ConsistencyProof.from_dict(c, f"consistency[{i}]")
                for i, c in enumerate(consistency)
            ),
            index=tuple(_index_proof(p, f"index[{i}]") for i, p in enumerate(index)),
        )


@runtime_checkable
class LogReader(Protocol):
    """What :func:`build_bundle` needs from a log: read entries and make proofs at a size."""

    def read_entry(self, index: int, size: int) -> bytes: ...
    def inclusion_proof(self, index: int, size: int) -> list[bytes]: ...
    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]: ...


@runtime_checkable
class StoreLike(Protocol):
    """A ``clearance.log.store.TransparencyLog``."""

    def entry(self, index: int) -> bytes: ...
    def inclusion_proof(self, index: int, size: int) -> list[bytes]: ...
    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]: ...


@runtime_checkable
class TiledLike(Protocol):
    """A ``clearance.log.tiles.TiledLogClient`` (it checks every entry against its leaf hash)."""

    def entries(self, start: int, end: int, size: int) -> Iterator[bytes]: ...
    def inclusion_proof(self, index: int, size: int) -> list[bytes]: ...
    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]: ...


LogSource = LogReader | StoreLike | TiledLike


class _StoreReader:
    def __init__(self, log: StoreLike) -> None:
        self._log = log

    def read_entry(self, index: int, size: int) -> bytes:
        return self._log.entry(index)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self._log.inclusion_proof(index, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return self._log.consistency_proof(old_size, new_size)


class _TiledReader:
    def __init__(self, log: TiledLike) -> None:
        self._log = log

    def read_entry(self, index: int, size: int) -> bytes:
        return next(iter(self._log.entries(index, index + 1, size)))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self._log.inclusion_proof(index, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return self._log.consistency_proof(old_size, new_size)


def _reader(log: LogSource) -> LogReader:
    if isinstance(log, LogReader):
        return log
    if isinstance(log, StoreLike):
        return _StoreReader(log)
    return _TiledReader(log)


def build_bundle(
    log: LogSource,
    checkpoint: bytes | Note,
    release_index: int,
    verdict_indices: Sequence[int] = (),
    policy_index: int | None = None,
    since_sizes: Sequence[int] = (),
    index: LogIndex | None = None,
) -> Bundle:
    """Assemble a bundle from a log for the entries at the given indices.

    ``log`` is a ``clearance.log.store.TransparencyLog``, a
    ``clearance.log.tiles.TiledLogClient`` or any :class:`LogReader`;
    ``checkpoint`` is the signed (ideally witness-cosigned) checkpoint note
    whose tree size every proof is made for.  ``since_sizes`` adds
    consistency proofs from those older sizes (e.g. the client's last seen).
    Every inclusion proof is checked against the checkpoint's root before
    the bundle is returned (a wrong proof is the log's bug, caught here).
    Use :func:`find_entries` to look the indices up by scanning the log.

    ``index`` (the log's :class:`~clearance.index.LogIndex` at the checkpoint's
    size) adds the index records and proofs of the release, and every verdict
    the index lists for it that ``verdict_indices`` lacks: the bundle is
    complete by construction.  Its root must be the one the checkpoint commits to.
    """
    reader = _reader(log)
    checkpoint_bytes = checkpoint.to_bytes() if isinstance(checkpoint, Note) else checkpoint
    tree = Checkpoint.from_note(Note.from_bytes(checkpoint_bytes))
    size = tree.size

    def logged(index: int) -> LoggedEntry:
        if not 0 <= index < size:
            raise MalformedBundleError(f"entry {index} is not in the checkpoint's tree of {size}")
        entry = LoggedEntry.of(
            reader.read_entry(index, size), index, reader.inclusion_proof(index, size)
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
            ConsistencyProof(old, tuple(reader.consistency_proof(old, size)))
            for old in sorted(set(since_sizes))
            if 0 < old < size
        ),
        index=proofs,
    )


def find_entries(log: LogSource, release_sha256: str, size: int) -> tuple[int, list[int]]:
    """Scan the first ``size`` entries for the release envelope and the verdicts on it.

    A linear scan, fine for the command line on a local log; a server keeps
    an index instead and calls :func:`build_bundle` with the indices.
    """
    reader = _reader(log)
    release_index: int | None = None
    verdicts: list[int] = []
    for index in range(size):
        data = reader.read_entry(index, size)
        if hashlib.sha256(data).hexdigest() == release_sha256:
            release_index = index
            continue
        if b"payloadType" not in data:
            continue
        try:
            verdict = Verdict.from_envelope(Envelope.from_bytes(data))
        except BadInput:
            continue
        if verdict.release_sha256 == release_sha256:
            verdicts.append(index)
    if release_index is None:
        raise MalformedBundleError(f"release {release_sha256} is not in the first {size} entries")
    return release_index, verdicts

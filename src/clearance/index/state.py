"""The index state: what the log says about every release and channel, derived entry by entry.

:class:`LogIndex` applies log entries in order, under a trust root (which
follows trust-root rotations logged on the way), and keeps one record per
release, one per channel and one ``meta`` record in a
:class:`~clearance.index._smt.SparseMerkleMap`.  Every decision goes through
:mod:`clearance.attest.admission`: an entry the admission rule refuses
changes nothing.  The function is deterministic: the same trust root and the
same entries give the same records and the same root, byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from clearance._untrusted import load_json
from clearance.attest import admission
from clearance.attest.admission import VerdictVote, evaluate_verdicts
from clearance.attest.canonical import canonical_json
from clearance.attest.dsse import Envelope
from clearance.attest.errors import RotationRefused
from clearance.attest.recovery import ChannelReset, Revocation
from clearance.attest.release import Release
from clearance.attest.statement import Statement, statement_of
from clearance.attest.trust_root import TRUST_ROOT_PAYLOAD_TYPE, TrustRoot, accept_rotation
from clearance.attest.verdict import APPROVED, Verdict
from clearance.attest.version import Version
from clearance.errors import BadInput, Refused
from clearance.index._smt import SparseMerkleMap
from clearance.index.errors import IndexProofError

#: The checkpoint extension line that carries the index root: this prefix, then base64.
INDEX_LINE_PREFIX = "clearance-index/v1 "
#: Entries prepared for appending that the index keeps parsed (:meth:`LogIndex.prepare`).
PREPARED_KEPT = 4096
#: Plain-JSON rollout transitions the gateway writes (``clearance.gateway.rollout``).
TRANSITION_TYPE = "https://clearance.dev/rollout-transition/v1"
META_KEY = "meta"

REVOKED_BY_RELEASE = "release"
REVOKED_BY_KEY = "key"
REVOKED_BY_RESET = "channel-reset"


def release_key(sha256: str) -> str:
    return f"release/{sha256}"


def channel_key(product: str, channel: str) -> str:
    # Names are one-line identifiers: a line break cannot occur inside them.
    return f"channel\n{product}\n{channel}"


@dataclass(frozen=True)
class IndexProof:
    """One record of the index and its sparse-Merkle proof (siblings from the root down)."""

    key: str
    value: bytes
    siblings: tuple[bytes, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "value": base64.b64encode(self.value).decode(),
            "proof": [h.hex() for h in self.siblings],
        }

    @property
    def record(self) -> dict[str, Any]:
        try:
            value = load_json(self.value, f"index record {self.key!r}")
        except BadInput as exc:
            raise IndexProofError(str(exc)) from None
        if not isinstance(value, dict):
            raise IndexProofError(f"index record {self.key!r} is not a JSON object")
        return value


@dataclass
class _Release:
    sha256: str
    log_index: int
    release: Release
    vendor_keys: frozenset[str]
    votes: list[VerdictVote] = field(default_factory=list)
    revoked: dict[str, Any] | None = None
    rollout: dict[str, Any] | None = None
    state: str = admission.PENDING
    approvers: frozenset[str] = frozenset()


@dataclass
class _Channel:
    product: str
    channel: str
    epoch: int = 0
    floor: str | None = None
    reset_index: int | None = None
    bar: Version | None = None  # what a new release must exceed (admission's version rule)
    releases: list[str] = field(default_factory=list)  # digests, in log order
    #: The channel's latest approved, unrevoked release, kept as releases change so that a
    #: channel of many releases is not scanned at every flush; ``stale`` once it may no
    #: longer be (it was revoked or lost its approval): the next read scans again.
    latest: str | None = None
    stale: bool = False


class LogIndex:
    """The verifiable index of one log under one (initial) trust root."""

    def __init__(self, trust_root: TrustRoot) -> None:
        self._initial = trust_root
        # The log's sequencer extends the index while readers (bundle builders) prove from it.
        self._lock = threading.RLock()
        #: Entries about to be appended, parsed by whoever checked them (:meth:`prepare`).
        self._prepared: dict[bytes, tuple[Envelope, Statement]] = {}
        self._prepared_lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.trust_root = self._initial
        self.size = 0
        self._map = SparseMerkleMap()
        self._releases: dict[str, _Release] = {}
        self._channels: dict[tuple[str, str], _Channel] = {}
        self._revoked_keys: dict[str, int] = {}
        self._policy: dict[str, Any] | None = None
        self._dirty: set[str] = set()
        self._all_dirty = False
        self._meta_dirty = True
        self._flush()

    # -- public API ----------------------------------------------------------------------

    def rebuild(self, entries: Iterable[bytes]) -> None:
        """Start again from the initial trust root and apply ``entries`` from index 0."""
        with self._lock:
            self._reset()
            self.extend(entries)

    def prepare(self, entry: bytes, envelope: Envelope, statement: Statement) -> None:
        """What a caller about to append ``entry`` parsed from exactly those bytes (the
        gateway's admission): applying the entry then skips parsing it again, which is
        on the log's commit path.  Only the parsing: signatures are still verified
        against the index's own rule at the entry's position, so the index is the one a
        replay of the log computes.  The last :data:`PREPARED_KEPT` are kept (an entry
        prepared and then refused is forgotten in time)."""
        with self._prepared_lock:
            self._prepared[entry] = (envelope, statement)
            while len(self._prepared) > PREPARED_KEPT:
                del self._prepared[next(iter(self._prepared))]

    def extend(self, entries: Iterable[bytes]) -> None:
        """Apply the next entries of the log, in order."""
        with self._lock:
            for data in entries:
                self._apply(self.size, data)
                self.size += 1
            self._flush()

    def extend_to(self, size: int, read: Callable[[int, int], Iterable[bytes]]) -> None:
        """Apply entries ``self.size .. size`` read with ``read(start, end)``, atomically with
        respect to other writers of this index (entries appended by another replica)."""
        with self._lock:
            if self.size < size:
                self.extend(read(self.size, size))

    def root(self) -> bytes:
        with self._lock:
            return self._map.root()

    def lines(self) -> tuple[str, ...]:
        """The checkpoint extension line(s) committing to this index at :attr:`size`."""
        return (INDEX_LINE_PREFIX + base64.b64encode(self.root()).decode(),)

    @property
    def revoked_keys(self) -> frozenset[str]:
        return frozenset(self._revoked_keys)

    def channel_bar(self, product: str, channel: str) -> Version | None:
        """What a new release of the channel must exceed (the version rule, reset-aware)."""
        ch = self._channels.get((product, channel))
        return None if ch is None else ch.bar

    def record(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            value = self._value(key)
        return None if value is None else json.loads(value)

    def proof(self, key: str) -> IndexProof:
        with self._lock:
            value = self._value(key)
            if value is None:
                raise IndexProofError(f"the index holds no record {key!r}")
            return IndexProof(key, value, tuple(self._map.proof(key)))

    def release_proofs(self, release_sha256: str) -> tuple[IndexProof, ...]:
        """What a bundle for this release carries: its record, its channel's, and meta."""
        with self._lock:
            rel = self._releases.get(release_sha256)
            if rel is None:
                raise IndexProofError(f"release {release_sha256} is not in the index")
            return (
                self.proof(release_key(release_sha256)),
                self.proof(channel_key(rel.release.product, rel.release.channel)),
                self.proof(META_KEY),
            )

    def release_log_index(self, release_sha256: str) -> int | None:
        """Where the release with this envelope digest is logged (``None``: not admitted)."""
        with self._lock:
            rel = self._releases.get(release_sha256)
            return None if rel is None else rel.log_index

    def verdict_indices(self, release_sha256: str) -> list[int]:
        with self._lock:
            rel = self._releases.get(release_sha256)
            return [] if rel is None else [v.log_index for v in rel.votes]

    def snapshot(
        self, release_sha256: str, size: int
    ) -> tuple[bytes, tuple[IndexProof, ...], list[int]] | None:
        """Root, proofs and verdict indices of a release, taken together at tree ``size``;
        ``None`` when the index is at another size (the log moved on: take a new checkpoint)."""
        with self._lock:
            if self.size != size:
                return None
            return (
                self._map.root(),
                self.release_proofs(release_sha256),
                self.verdict_indices(release_sha256),
            )

    # -- applying entries ----------------------------------------------------------------

    def _apply(self, index: int, data: bytes) -> None:
        with self._prepared_lock:
            prepared = self._prepared.pop(data, None)
        if prepared is not None:
            self._apply_envelope(index, *prepared)
            return
        if not data.startswith(b"{"):
            return  # not a JSON object (statements and transitions are logged canonical)
        try:
            raw = load_json(data, f"log entry {index}")
        except BadInput:
            return
        if not isinstance(raw, dict):
            return
        if raw.get("_type") == TRANSITION_TYPE:
            self._on_transition(index, raw)
            return
        try:
            envelope = Envelope.from_dict(raw)
        except BadInput:
            return  # malformed: it changes nothing
        self._apply_envelope(index, envelope, None)

    def _apply_envelope(self, index: int, envelope: Envelope, parsed: Statement | None) -> None:
        """A signed entry; ``parsed``: its statement, if its parser handed it over."""
        try:
            if envelope.payload_type == TRUST_ROOT_PAYLOAD_TYPE:
                self._on_rotation(envelope)
                return
            # Read once (the kind is the statement's predicate type).
            statement = parsed if parsed is not None else statement_of(envelope)
            kind = admission.kind_of_statement(statement)
            rule = admission.signer_rule(kind, self.trust_root, revoked_keys=self._revoked_keys)
            if kind == admission.KIND_HEALTH:
                return  # client-signed operational reports: not part of the index
            key_ids = admission.require_signers(envelope, rule)
            if kind == admission.KIND_RELEASE:
                self._on_release(index, envelope, Release.from_statement(statement), key_ids)
            elif kind == admission.KIND_VERDICT:
                self._on_verdict(index, Verdict.from_statement(statement), key_ids)
            elif kind == admission.KIND_REVOCATION:
                self._on_revocation(index, Revocation.from_statement(statement))
            elif kind == admission.KIND_CHANNEL_RESET:
                self._on_reset(index, ChannelReset.from_statement(statement))
            elif kind == admission.KIND_POLICY:
                self._policy = {"logIndex": index, "sha256": envelope.sha256}
                self._meta_dirty = True
        except (BadInput, Refused):
            return  # refused by the admission rule or malformed: it changes nothing

    def _channel(self, product: str, channel: str) -> _Channel:
        return self._channels.setdefault((product, channel), _Channel(product, channel))

    def _on_release(
        self, index: int, envelope: Envelope, release: Release, key_ids: frozenset[str]
    ) -> None:
        ch = self._channel(release.product, release.channel)
        admission.check_version(release, ch.bar)
        sha = envelope.sha256
        if sha in self._releases:
            return
        ch.bar = release.parsed_version
        ch.releases.append(sha)
        self._releases[sha] = _Release(sha, index, release, key_ids)
        self._dirty.add(sha)

    def _on_verdict(self, index: int, verdict: Verdict, key_ids: frozenset[str]) -> None:
        rel = self._releases.get(verdict.release_sha256)
        if rel is None or (rel.release.product, rel.release.version) != (
            verdict.product,
            verdict.version,
        ):
            return
        rel.votes.append(VerdictVote(index, verdict.decision, key_ids))
        self._dirty.add(rel.sha256)

    def _on_revocation(self, index: int, revocation: Revocation) -> None:
        if revocation.release_sha256 is not None:
            rel = self._releases.get(revocation.release_sha256)
            if rel is not None and rel.revoked is None:
                rel.revoked = {"logIndex": index, "by": REVOKED_BY_RELEASE}
                self._dirty.add(rel.sha256)
            return
        kid = revocation.key_id
        if kid is not None and kid not in self._revoked_keys:
            self._revoked_keys[kid] = index
            self._meta_dirty = True
            vendors = self.trust_root.vendors.threshold
            for rel in self._releases.values():
                remaining = rel.vendor_keys - self._revoked_keys.keys()
                if rel.revoked is None and kid in rel.vendor_keys and len(remaining) < vendors:
                    rel.revoked = {"logIndex": index, "by": REVOKED_BY_KEY}
            self._all_dirty = True

    def _on_reset(self, index: int, reset: ChannelReset) -> None:
        ch = self._channel(reset.product, reset.channel)
        ch.epoch += 1
        ch.floor = reset.floor
        ch.reset_index = index
        ch.bar = reset.parsed_floor
        floor = reset.parsed_floor
        for sha in ch.releases:
            rel = self._releases[sha]
            if rel.revoked is None and rel.release.parsed_version > floor:
                rel.revoked = {"logIndex": index, "by": REVOKED_BY_RESET}
                self._dirty.add(rel.sha256)
        self._dirty.add(channel_key(reset.product, reset.channel))

    def _on_rotation(self, envelope: Envelope) -> None:
        try:
            self.trust_root = accept_rotation(self.trust_root, envelope)
        except (RotationRefused, BadInput):
            return
        self._all_dirty = True
        self._meta_dirty = True

    def _on_transition(self, index: int, raw: dict[str, Any]) -> None:
        rel = self._releases.get(str(raw.get("release")))
        event, ring = raw.get("event"), raw.get("ring")
        if rel is None or not isinstance(event, str) or not isinstance(ring, str):
            return
        rel.rollout = {"event": event, "ring": ring, "logIndex": index}
        self._dirty.add(rel.sha256)

    # -- records -------------------------------------------------------------------------

    def _flush(self) -> None:
        if self._all_dirty:
            self._dirty.update(self._releases)
            self._dirty.update(channel_key(p, c) for p, c in self._channels)
            for ch in self._channels.values():
                ch.stale = True
            self._all_dirty = False
        channels: set[tuple[str, str]] = set()
        for key in sorted(self._dirty):
            rel = self._releases.get(key)
            if rel is None:
                continue
            approval = evaluate_verdicts(rel.votes, self.trust_root.inspectors, self._revoked_keys)
            rel.state, rel.approvers = approval.state, approval.approvers
            self._map.put(release_key(rel.sha256), canonical_json(self._release_value(rel)))
            channels.add((rel.release.product, rel.release.channel))
            self._follow_latest(self._channel(rel.release.product, rel.release.channel), rel)
        for key in self._dirty:
            if key.startswith("channel\n"):
                _, product, channel = key.split("\n")
                channels.add((product, channel))
        for product, channel in sorted(channels):
            value = self._channel_value(self._channel(product, channel))
            self._map.put(channel_key(product, channel), canonical_json(value))
        self._dirty.clear()
        if self._meta_dirty:
            self._map.put(META_KEY, canonical_json(self._meta_value()))
            self._meta_dirty = False

    def _value(self, key: str) -> bytes | None:
        if key == META_KEY:
            return canonical_json(self._meta_value())
        if key.startswith("release/"):
            rel = self._releases.get(key[len("release/") :])
            return None if rel is None else canonical_json(self._release_value(rel))
        if key.startswith("channel\n"):
            parts = key.split("\n")
            ch = self._channels.get((parts[1], parts[2])) if len(parts) == 3 else None
            return None if ch is None else canonical_json(self._channel_value(ch))
        return None

    @staticmethod
    def _release_value(rel: _Release) -> dict[str, Any]:
        r = rel.release
        return {
            "sha256": rel.sha256,
            "logIndex": rel.log_index,
            "product": r.product,
            "version": r.version,
            "channel": r.channel,
            "vendorKeys": sorted(rel.vendor_keys),
            "verdicts": [
                {"logIndex": v.log_index, "decision": v.decision, "keyIds": sorted(v.key_ids)}
                for v in rel.votes
            ],
            "state": rel.state,
            "approvers": sorted(rel.approvers),
            "revoked": rel.revoked,
            "rollout": rel.rollout,
        }

    @staticmethod
    def _eligible(rel: _Release) -> bool:
        """Whether a release can be its channel's latest: approved and not revoked."""
        return rel.revoked is None and rel.state == APPROVED

    @staticmethod
    def _newer(rel: _Release, than: _Release | None) -> bool:
        """The greater version wins; of equal versions, the one logged first."""
        if than is None:
            return True
        a, b = rel.release.parsed_version, than.release.parsed_version
        return a > b or (a == b and rel.log_index < than.log_index)

    def _follow_latest(self, ch: _Channel, rel: _Release) -> None:
        """Keep ``ch.latest`` true after ``rel``'s state or revocation was evaluated again."""
        if ch.stale:
            return
        if self._eligible(rel):
            current = None if ch.latest is None else self._releases[ch.latest]
            if self._newer(rel, current):
                ch.latest = rel.sha256
        elif ch.latest == rel.sha256:
            ch.stale = True

    def _latest(self, ch: _Channel) -> _Release | None:
        if ch.stale:
            ch.latest, ch.stale = None, False
            for sha in ch.releases:
                self._follow_latest(ch, self._releases[sha])
        return None if ch.latest is None else self._releases[ch.latest]

    def _channel_value(self, ch: _Channel) -> dict[str, Any]:
        latest = self._latest(ch)
        return {
            "product": ch.product,
            "channel": ch.channel,
            "epoch": ch.epoch,
            "floor": ch.floor,
            "resetLogIndex": ch.reset_index,
            "latest": None
            if latest is None
            else {
                "version": latest.release.version,
                "sha256": latest.sha256,
                "logIndex": latest.log_index,
            },
        }

    def _meta_value(self) -> dict[str, Any]:
        return {
            "trustRoot": hashlib.sha256(self.trust_root.to_bytes()).hexdigest(),
            "trustRootVersion": self.trust_root.version,
            "revokedKeys": dict(sorted(self._revoked_keys.items())),
            "policy": self._policy,
        }


def build_index(trust_root: TrustRoot, entries: Sequence[bytes] | Iterable[bytes]) -> LogIndex:
    """The index of ``entries`` (from log index 0) under ``trust_root``."""
    index = LogIndex(trust_root)
    index.extend(entries)
    return index

"""A complete, real trust world for verifier tests: keys, a Merkle log, statements, checkpoints.

The log is an in-memory RFC 9162 tree (real hashes, real proofs from
``clearance.log.merkle``); every signature is real Ed25519; checkpoints
commit to the real verifiable index of the entries (``clearance.index``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from clearance.attest import Artifact, Envelope, Role, TrustRoot, create_release, create_verdict
from clearance.client import Bundle
from clearance.gateway.bundles import build_bundle
from clearance.index import INDEX_LINE_PREFIX, LogIndex, build_index, release_key
from clearance.keys import Note, Signer, cosign, sign_note
from clearance.log import merkle
from clearance.log.checkpoint import Checkpoint

ORIGIN = "clearance.test/log"


class MemoryLog:
    """A real Merkle tree over in-memory entries, with every complete subtree hash stored."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.levels: list[list[bytes]] = [[]]

    @property
    def size(self) -> int:
        return len(self.data)

    def append(self, data: bytes) -> int:
        self.data.append(data)
        self.levels[0].append(merkle.leaf_hash(data))
        level = 0
        while len(self.levels[level]) % 2 == 0:
            left, right = self.levels[level][-2:]
            if len(self.levels) == level + 1:
                self.levels.append([])
            self.levels[level + 1].append(merkle.node_hash(left, right))
            level += 1
        return len(self.data) - 1

    def _read(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        return merkle.tree_root(self.size if size is None else size, self._read)

    def entries(self, start: int, end: int, size: int) -> Iterator[bytes]:
        return iter(self.data[start:end])

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return merkle.inclusion_proof(index, size, self._read)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return merkle.consistency_proof(old_size, new_size, self._read)


@dataclass
class World:
    """Keys, trust root and a log; helpers to publish releases and make bundles."""

    tmp: Path
    log_key: Signer = field(default_factory=lambda: Signer.generate(ORIGIN))
    vendor: Signer = field(default_factory=lambda: Signer.generate("vendor"))
    inspectors: list[Signer] = field(
        default_factory=lambda: [Signer.generate("inspector-a"), Signer.generate("inspector-b")]
    )
    witnesses: list[Signer] = field(
        default_factory=lambda: [Signer.generate(f"witness-{n}") for n in "abc"]
    )
    policy_key: Signer = field(default_factory=lambda: Signer.generate("regulator"))
    log: MemoryLog = field(default_factory=MemoryLog)
    max_age: int = 3600
    now: float = field(default_factory=time.time)
    inspector_threshold: int = 2

    @property
    def trust_root(self) -> TrustRoot:
        return TrustRoot(
            log_origin=ORIGIN,
            log_key=self.log_key.verifier,
            vendors=Role((self.vendor.verifier,), 1),
            inspectors=Role(tuple(i.verifier for i in self.inspectors), self.inspector_threshold),
            witnesses=Role(tuple(w.verifier for w in self.witnesses), 2),
            policy=Role((self.policy_key.verifier,), 1),
            max_checkpoint_age=self.max_age,
        )

    def artifact(self, name: str, content: bytes) -> tuple[Artifact, bytes]:
        path = self.tmp / name
        path.write_bytes(content)
        return Artifact.from_file(path, "content"), content

    def release(
        self,
        version: str,
        content: bytes = b"rule a { condition: true }",
        *,
        product: str = "av",
        channel: str = "stable",
    ) -> Envelope:
        art, _ = self.artifact(f"rules-{version}.yar", content)
        return create_release(
            product=product, version=version, channel=channel, artifacts=[art], signers=self.vendor
        )

    def approve(
        self, release: Envelope, decision: str = "approved", count: int = 2
    ) -> list[Envelope]:
        return [
            create_verdict(
                release, decision, signers=inspector, inspected_at="2026-11-22T03:00:00Z"
            )
            for inspector in self.inspectors[:count]
        ]

    def append(self, *envelopes: Envelope) -> list[int]:
        return [self.log.append(e.to_bytes()) for e in envelopes]

    def checkpoint(
        self,
        size: int | None = None,
        witnesses: int = 2,
        cosigned_at: float | None = None,
        log_key: Signer | None = None,
        root: bytes | None = None,
    ) -> bytes:
        n = self.log.size if size is None else size
        lines = self.index(n).lines()
        body = Checkpoint(ORIGIN, n, self.log.root(n) if root is None else root, lines).to_text()
        note = sign_note(body, [log_key or self.log_key])
        stamp = int(self.now if cosigned_at is None else cosigned_at)
        sigs = [cosign(body, w, stamp) for w in self.witnesses[:witnesses]]
        return note.with_signatures(sigs).to_bytes()

    def publish(
        self,
        version: str,
        content: bytes = b"rule a { condition: true }",
        *,
        product: str = "av",
        channel: str = "stable",
    ) -> tuple[Envelope, list[Envelope], list[int]]:
        """Release + two approvals appended, plus a filler entry so proofs are non-trivial."""
        release = self.release(version, content, product=product, channel=channel)
        verdicts = self.approve(release)
        indices = self.append(release, *verdicts)
        self.log.append(b"filler entry " + version.encode())
        return release, verdicts, indices

    def index(self, size: int | None = None) -> LogIndex:
        """The verifiable index of the first ``size`` entries, under this world's trust root."""
        n = self.log.size if size is None else size
        return build_index(self.trust_root, self.log.data[:n])

    def bundle(
        self,
        indices: list[int],
        checkpoint: bytes | None = None,
        since: tuple[int, ...] = (),
        *,
        complete: bool = False,
    ) -> Bundle:
        """A bundle with the index proofs; it carries exactly the verdicts in ``indices[1:]``
        unless ``complete`` (then every verdict the index lists, as the builder does)."""
        note = checkpoint if checkpoint is not None else self.checkpoint()
        body = Checkpoint.from_note(Note.from_bytes(note))
        has_index = any(x.startswith(INDEX_LINE_PREFIX) for x in body.extensions)
        index = None
        if has_index and body.root_hash == self.log.root(body.size):
            index = self.index(body.size)
            release_sha = hashlib.sha256(self.log.data[indices[0]]).hexdigest()
            if index.record(release_key(release_sha)) is None:
                index = None  # not admitted (e.g. unsigned): a bundle without index proofs
        bundle = build_bundle(
            self.log, note, indices[0], indices[1:], since_sizes=since, index=index
        )
        if complete:
            return bundle
        wanted = set(indices[1:])
        return replace(bundle, verdicts=tuple(v for v in bundle.verdicts if v.index in wanted))

    def clock(self) -> float:
        return self.now


def note_of(data: bytes) -> Note:
    return Note.from_bytes(data)

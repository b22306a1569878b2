"""Applying log entries to the metadata index: the only writer of log-derived metadata.

A mixin of :class:`~clearance.gateway.service.Gateway`.  ``_apply`` is idempotent
and deterministic in the entry, so replaying the log rebuilds the index; its
follow-ups (enqueue an inspection, evaluate verdicts, resume, publish to TUF)
are the gateway's reactions, skipped while replaying and redone afterwards.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from clearance.attest import Release, Verdict
from clearance.attest.errors import AttestFormatError
from clearance.attest.trust_root import TrustRoot
from clearance.errors import BadInput
from clearance.gateway import rollout
from clearance.gateway._entries import (
    KIND_ENTITLEMENT,
    KIND_POLICY,
    KIND_RELEASE,
    KIND_ROLLOUT_DECISION,
    KIND_TRANSITION,
    KIND_VERDICT,
    parse_entry,
)
from clearance.gateway.config import GatewayConfig
from clearance.gateway.store import MetadataStore, ReleaseRow
from clearance.policy import Entitlement, Policy

log = logging.getLogger("clearance.gateway")

AWAITING_ARTIFACTS = "awaiting-artifacts"


class IndexingMixin:
    store: MetadataStore
    trust_root: TrustRoot
    config: GatewayConfig
    _replaying: bool
    _apply_lock: threading.RLock

    # Reactions, defined by the gateway.
    def _maybe_enqueue(self, row: ReleaseRow) -> None: ...
    def _evaluate(self, release_sha256: str) -> None: ...
    def _resume(self, release_sha: str, decision_sha: str, signer: str, reason: str) -> None: ...
    def _publish_tuf(self, release_sha: str) -> None: ...

    # -- applying log entries to the index ------------------------------------------

    def _apply(self, index: int, entry: bytes) -> None:
        """Index one log entry.  Idempotent; the only writer of log-derived metadata.

        An entry that does not parse under today's rules (one admitted before a
        check existed, such as a release naming ``../../evil.yar``) is indexed as
        ``unknown`` with the reason, and logged by index: the gateway still starts.
        """
        try:
            follow_up = self._index_entry(index, entry)
        except (AttestFormatError, BadInput) as exc:
            log.error("log entry %d cannot be indexed: %s", index, exc)
            summary: dict[str, Any] = {"error": str(exc)}
            with self.store.transaction() as db:
                db.execute(
                    "INSERT OR IGNORE INTO entries VALUES (?, ?, ?, ?, strftime('%s','now'))",
                    (index, hashlib.sha256(entry).hexdigest(), "unknown", json.dumps(summary)),
                )
            return
        if follow_up is not None and not self._replaying:
            follow_up()

    def _index_entry(self, index: int, entry: bytes) -> Callable[[], None] | None:
        """Index one entry in one transaction; return the reaction to run afterwards."""
        parsed = parse_entry(entry)
        summary: dict[str, Any] = {}
        follow_up: Callable[[], None] | None = None
        with self.store.transaction() as db:
            if db.execute("SELECT 1 FROM entries WHERE log_index=?", (index,)).fetchone():
                return None
            statement = parsed.statement
            if parsed.kind == KIND_RELEASE:
                assert statement is not None and parsed.envelope is not None
                release = Release.from_statement(statement)
                vendor = ",".join(
                    v.name for v in parsed.envelope.verify(self.trust_root.vendors.keys, 1)
                )
                artifacts = [
                    {"name": a.name, "sha256": a.sha256, "size": a.size, "kind": a.kind}
                    for a in release.artifacts
                ]
                db.execute(
                    "INSERT OR IGNORE INTO releases(sha256, log_index, product, version, channel,"
                    " vendor, artifacts, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        parsed.sha256,
                        index,
                        release.product,
                        release.version,
                        release.channel,
                        vendor,
                        json.dumps(artifacts),
                        AWAITING_ARTIFACTS,
                    ),
                )
                summary = {
                    "product": release.product,
                    "version": release.version,
                    "channel": release.channel,
                }
                sha = parsed.sha256

                def enqueue() -> None:
                    row = self.store.release(sha)
                    if row is not None:
                        self._maybe_enqueue(row)

                follow_up = enqueue
            elif parsed.kind == KIND_VERDICT:
                assert statement is not None and parsed.envelope is not None
                verdict = Verdict.from_statement(statement)
                signers = parsed.envelope.verify(self.trust_root.inspectors.keys, 1)
                db.execute(
                    "INSERT OR IGNORE INTO verdicts VALUES (?, ?, ?, ?, ?)",
                    (
                        parsed.sha256,
                        index,
                        verdict.release_sha256,
                        ",".join(v.name for v in signers),
                        verdict.decision,
                    ),
                )
                summary = {
                    "release": verdict.release_sha256,
                    "decision": verdict.decision,
                    "inspector": verdict.inspector,
                }
                release_sha = verdict.release_sha256
                follow_up = lambda: self._evaluate(release_sha)  # noqa: E731
            elif parsed.kind == KIND_POLICY:
                assert statement is not None
                policy = Policy.from_dict(statement.predicate)
                db.execute(
                    "INSERT OR IGNORE INTO policies VALUES (?, ?, ?, ?)",
                    (index, parsed.sha256, policy.name, json.dumps(policy.to_dict())),
                )
                summary = {"name": policy.name}
            elif parsed.kind == KIND_ENTITLEMENT:
                assert statement is not None
                ent = Entitlement.from_dict(statement.predicate)
                db.execute(
                    "INSERT OR IGNORE INTO entitlements VALUES (?, ?, ?, ?, ?)",
                    (index, parsed.sha256, ent.customer, ent.product, json.dumps(ent.to_dict())),
                )
                summary = {
                    "customer": ent.customer,
                    "product": ent.product,
                    "jurisdiction": ent.jurisdiction,
                }
            elif parsed.kind == KIND_ROLLOUT_DECISION:
                assert statement is not None
                decision_sha = parsed.sha256
                release_sha = str(statement.predicate.get("release"))
                reason = str(statement.predicate.get("reason", "signed resume decision"))
                signer = (
                    ",".join(s.keyid for s in parsed.envelope.signatures)
                    if (parsed.envelope is not None)
                    else ""
                )
                summary = {"release": release_sha, "action": "resume", "reason": reason}
                follow_up = lambda: self._resume(  # noqa: E731
                    release_sha, decision_sha, signer, reason
                )
            elif parsed.kind == KIND_TRANSITION:
                assert parsed.document is not None
                transition = rollout.Transition.from_dict(parsed.document)
                db.execute(
                    "INSERT OR IGNORE INTO transitions VALUES (?, ?, ?, ?)",
                    (index, transition.release, transition.event, json.dumps(parsed.document)),
                )
                self._apply_transition(db, transition)
                summary = {
                    "release": transition.release,
                    "event": transition.event,
                    "ring": transition.ring,
                }
                if transition.event == "completed":
                    release_sha = transition.release
                    follow_up = lambda: self._publish_tuf(release_sha)  # noqa: E731
            db.execute(
                "INSERT INTO entries VALUES (?, ?, ?, ?, strftime('%s','now'))",
                (index, parsed.sha256, parsed.kind, json.dumps(summary)),
            )
        return follow_up

    def _apply_transition(self, db: Any, transition: rollout.Transition) -> None:
        """Rebuild the rollout state from a logged transition (so a replay converges)."""
        current = self.store.rollout(transition.release)
        if transition.event == "started":
            rings = [
                rollout.Ring(
                    r["name"],
                    float(r["percent"]),
                    timedelta(seconds=int(r["soak_seconds"])),
                    float(r["failure_threshold"]),
                    int(r["min_reports"]),
                )
                for r in transition.evidence.get("rings", [])
            ] or list(self.config.rings)
            state, _ = rollout.start(transition.release, rings, transition.at)
        elif current is None:
            log.error("transition %s for a rollout that never started", transition.event)
            return
        else:
            state = rollout.RolloutState.from_dict(current)
            names = [r.name for r in state.rings]
            if transition.event == "advanced":
                state = rollout.RolloutState(
                    state.release,
                    state.rings,
                    names.index(transition.ring),
                    rollout.ACTIVE,
                    transition.at,
                    state.health,
                )
            elif transition.event == "halted":
                state = rollout.RolloutState(
                    state.release,
                    state.rings,
                    state.ring_index,
                    rollout.HALTED,
                    state.ring_entered,
                    state.health,
                )
            elif transition.event == "resumed":
                health = list(state.health)
                health[state.ring_index] = rollout.RingHealth()
                state = rollout.RolloutState(
                    state.release,
                    state.rings,
                    state.ring_index,
                    rollout.ACTIVE,
                    transition.at,
                    tuple(health),
                )
            elif transition.event == "completed":
                state = rollout.RolloutState(
                    state.release,
                    state.rings,
                    state.ring_index,
                    rollout.COMPLETE,
                    state.ring_entered,
                    state.health,
                )
        self.store.put_rollout(db, transition.release, state.to_dict())

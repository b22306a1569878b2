"""Approval, rollout and publication: the gateway's reactions once verdicts are logged.

The rules are pure functions (:func:`clearance.gateway.approval.evaluate`,
:mod:`clearance.gateway.rollout`); this collaborator reads their inputs
from the metadata store and the clock, and hands every transition they
produce to ``append`` (the gateway logs and indexes it).  A release whose
rollout completes is published to the TUF repository.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from clearance.attest._fields import relative_path
from clearance.attest.errors import AttestFormatError
from clearance.errors import ClearanceError
from clearance.gateway import approval, rollout
from clearance.gateway._entries import KIND_HEALTH, KIND_ROLLOUT_DECISION
from clearance.gateway.errors import GatewayInputError, GatewayRefused
from clearance.gateway.states import ReleaseState
from clearance.gateway.store import MetadataStore
from clearance.gateway.tuf_repo import TufRepository

log = logging.getLogger("clearance.gateway")


class Rollouts:
    def __init__(
        self,
        store: MetadataStore,
        tuf: TufRepository,
        *,
        inspector_threshold: int,
        revoked: Callable[[], frozenset[str]] = frozenset,
        rings: Sequence[rollout.Ring],
        clock: Callable[[], datetime],
        append: Callable[[rollout.Transition], int],
        artifact_path: Callable[[str], Path],
        lock: threading.RLock,
    ) -> None:
        self._store = store
        self._tuf = tuf
        self._threshold = inspector_threshold
        self._revoked = revoked
        self._rings = tuple(rings)
        self._clock = clock
        self._append = append
        self._artifact_path = artifact_path
        #: The gateway's indexing lock: rollout state changes one at a time.
        self._lock = lock

    def reconcile(self) -> None:
        """Idempotent reactions to the indexed state (safe to run at every start).

        A release that cannot be acted on is logged with its log entry and skipped: it
        never stops the gateway.
        """
        for row in self._store.releases():
            try:
                self._reconcile_release(row.sha256)
            except ClearanceError as exc:
                log.error("release %s (log entry %d): %s", row.sha256, row.log_index, exc)

    def _reconcile_release(self, release_sha: str) -> None:
        if self._store.verdicts(release_sha):
            self.evaluate(release_sha)
        state = self._store.rollout(release_sha)
        if state is None:
            return
        if state["status"] == rollout.COMPLETE:
            self.publish_tuf(release_sha)
        elif state["status"] == rollout.HALTED:
            self._resume_if_decided(release_sha)

    def _resume_if_decided(self, release_sha: str) -> None:
        """A resume decision logged after the halt, but whose transition was never written."""
        transitions = self._store.transitions(release_sha)
        halted_at = max((i for i, t in transitions if t["event"] == "halted"), default=-1)
        for index, _kind, summary, sha in self._store.entries_of_kind(KIND_ROLLOUT_DECISION):
            if summary.get("release") == release_sha and index > halted_at:
                self.resume(release_sha, sha, "", str(summary.get("reason", "")))
                return

    def evaluate(self, release_sha256: str) -> None:
        """Apply the trust root's inspector threshold to the logged verdicts."""
        row = self._store.release(release_sha256)
        if row is None:
            return
        outcome = approval.evaluate(
            row.state, self._store.verdicts(release_sha256), self._threshold, self._revoked()
        )
        if outcome.state is not None:
            self._store.set_release_state(release_sha256, outcome.state, outcome.detail)
        if outcome.rejected_by is not None:
            # A rejection after approval stops a rollout under way, as a logged transition.
            data = self._store.rollout(release_sha256)
            if data is not None and data["status"] == rollout.ACTIVE:
                state = rollout.RolloutState.from_dict(data)
                self._append(
                    rollout.Transition(
                        release_sha256,
                        "halted",
                        state.ring.name,
                        self._clock(),
                        outcome.detail,
                        {"verdict_log_index": outcome.rejected_by},
                    )
                )
        elif outcome.approved and self._store.rollout(release_sha256) is None:
            state, transition = rollout.start(release_sha256, self._rings, self._clock())
            self._append(
                rollout.Transition(
                    transition.release,
                    transition.event,
                    transition.ring,
                    transition.at,
                    transition.reason,
                    {"rings": [r.to_dict() for r in state.rings]},
                )
            )

    def tick(self) -> list[int]:
        """Advance rollouts whose ring has soaked; keep TUF timestamps fresh."""
        appended = []
        now = self._clock()
        for data in self._store.rollouts():
            state = rollout.RolloutState.from_dict(data)
            _, transition = rollout.advance(state, now)
            if transition is not None:
                appended.append(self._append(transition))
        self._tuf.refresh_timestamp(if_expiring_within=self._tuf.expiry.timestamp / 2)
        return appended

    def resume(self, release_sha: str, decision_sha: str, signer: str, reason: str) -> None:
        data = self._store.rollout(release_sha)
        if data is None:
            return
        state = rollout.RolloutState.from_dict(data)
        if state.status != rollout.HALTED:
            return
        _, transition = rollout.resume(state, self._clock(), decision_sha, signer, reason)
        self._append(transition)

    def record_health(
        self, report_sha256: str, release_sha: str, customer: str, status: str
    ) -> dict[str, Any]:
        """Count one checked install-health report; halt the rollout when its ring goes bad."""
        data = self._store.rollout(release_sha)
        if data is None:
            raise GatewayRefused(f"release {release_sha} is not being rolled out")
        state = rollout.RolloutState.from_dict(data)
        if not state.reaches(customer):
            raise GatewayRefused(f"release {release_sha} was not offered to {customer!r}")
        if not self._store.add_health(report_sha256, release_sha, customer, status):
            return {
                "kind": KIND_HEALTH,
                "sha256": report_sha256,
                "duplicate": True,
                "rollout": state.to_dict(),
            }
        with self._lock:
            data = self._store.rollout(release_sha)
            assert data is not None
            state, transition = rollout.record_health(
                rollout.RolloutState.from_dict(data), status, self._clock()
            )
            self._store.put_rollout(release_sha, state.to_dict())
        halted_at = self._append(transition) if transition is not None else None
        return {
            "kind": KIND_HEALTH,
            "sha256": report_sha256,
            "duplicate": False,
            "halted_log_index": halted_at,
            "rollout": (self._store.rollout(release_sha) or state.to_dict()),
        }

    def publish_tuf(self, release_sha: str) -> None:
        row = self._store.release(release_sha)
        if row is None or row.state != ReleaseState.APPROVED:
            return
        existing = self._tuf.targets()
        files: dict[str, bytes] = {}
        custom: dict[str, dict[str, Any]] = {}
        for artifact in row.artifacts:
            try:
                # A release admitted before names were checked must not escape the repository.
                relative_path(artifact["name"], "artifact name")
            except AttestFormatError as exc:
                raise GatewayInputError(
                    f"release {row.sha256} (log entry {row.log_index}) not published: {exc}"
                ) from None
            path = f"{row.product}/{row.version}/{artifact['name']}"
            if path in existing:
                continue
            files[path] = self._artifact_path(artifact["sha256"]).read_bytes()
            custom[path] = {
                "clearance": {
                    "release_sha256": row.sha256,
                    "log_index": row.log_index,
                    "channel": row.channel,
                    "bundle": f"/api/v1/bundles/{row.sha256}",
                }
            }
        if files:
            self._tuf.publish(files, custom)

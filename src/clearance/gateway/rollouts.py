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
from clearance.attest.version import Version
from clearance.errors import ClearanceError
from clearance.gateway import approval, rollout
from clearance.gateway._entries import KIND_HEALTH, KIND_ROLLOUT_DECISION
from clearance.gateway.errors import GatewayInputError
from clearance.gateway.states import ReleaseState
from clearance.gateway.store import MetadataStore, WindowTally
from clearance.gateway.tuf_repo import TufRepository
from clearance.policy.rollout import Report, tally

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
        log_size: Callable[[], int] = lambda: 1 << 62,
        bulk_tally: Callable[[str, str, Sequence[str]], WindowTally] | None = None,
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
        self._log_size = log_size
        #: The bulk health reports of a release's ring in the current window, counted where
        #: they are stored (not yet logged: their aggregate is, when the window closes).
        self._bulk_tally = bulk_tally

    def reconcile(self) -> None:
        """Idempotent reactions to the indexed state (safe to run at every start).

        A release that cannot be acted on is logged with its log entry and skipped: it
        never stops the gateway.  Logged revocations and channel resets are applied first
        (a rebuilt index must not bring a revoked release back).
        """
        for index, _, summary, _ in self._store.entries_of_kind("revocation"):
            release = summary.get("release")
            row = None if release is None else self._store.release(str(release))
            if row is not None and row.state != ReleaseState.REVOKED:
                self.revoke(row.sha256, index, "logged revocation")
        for index, _, summary, _ in self._store.entries_of_kind("channel-reset"):
            self.reset_channel(
                str(summary["product"]),
                str(summary["channel"]),
                str(summary["floor"]),
                index,
                "logged channel reset",
            )
        for row in self._store.releases():
            try:
                self._reconcile_release(row.sha256)
            except ClearanceError as exc:
                log.error("release %s (log entry %d): %s", row.sha256, row.log_index, exc)

    def _reconcile_release(self, release_sha: str) -> None:
        if self._store.verdicts(release_sha):
            self.evaluate(release_sha)
        row = self._store.release(release_sha)
        if row is not None and row.state in (ReleaseState.REJECTED, ReleaseState.REVOKED):
            self._tuf.withdraw(release_sha)  # TUF follows the log (idempotent)
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

    def revoke(self, release_sha: str, log_index: int, reason: str) -> None:
        """A logged revocation (or channel reset) by the policy authority: the release is
        revoked for good, leaves the TUF targets, and a rollout under way halts (logged)."""
        row = self._store.release(release_sha)
        if row is None:
            return
        detail = f"revoked by the policy authority (log index {log_index}): {reason}"
        self._store.set_release_state(release_sha, ReleaseState.REVOKED, detail)
        self._tuf.withdraw(release_sha)
        data = self._store.rollout(release_sha)
        if data is not None and data["status"] == rollout.ACTIVE:
            state = rollout.RolloutState.from_dict(data)
            self._append(
                rollout.Transition(
                    release_sha,
                    "halted",
                    state.ring.name,
                    self._clock(),
                    detail,
                    {"revocation_log_index": log_index},
                )
            )

    def reset_channel(
        self, product: str, channel: str, floor: str, log_index: int, reason: str
    ) -> None:
        """Revoke every release of the channel logged before the reset above ``floor``."""
        bar = Version.parse(floor)
        for row in self._store.channel_releases(product, channel):
            if (
                row.log_index < log_index
                and row.state != ReleaseState.REVOKED
                and Version.parse(row.version) > bar
            ):
                self.revoke(row.sha256, log_index, f"channel reset to {floor}: {reason}")

    def evaluate(self, release_sha256: str) -> None:
        """Apply the trust root's inspector threshold to the logged verdicts."""
        row = self._store.release(release_sha256)
        if row is None or row.state == ReleaseState.REVOKED:
            return
        outcome = approval.evaluate(
            row.state, self._store.verdicts(release_sha256), self._threshold, self._revoked()
        )
        if outcome.state is not None:
            self._store.set_release_state(release_sha256, outcome.state, outcome.detail)
        if outcome.rejected_by is not None:
            # TUF follows the log: a rejected release leaves the next targets metadata.
            self._tuf.withdraw(release_sha256)
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
        """Judge every active rollout (soak, healthy devices, silence); keep TUF fresh."""
        appended = []
        for data in self._store.rollouts(rollout.ACTIVE):  # not the finished ones
            index = self.judge(str(data["release"]))
            if index is not None:
                appended.append(index)
        self._tuf.refresh_timestamp(if_expiring_within=self._tuf.expiry.timestamp / 2)
        return appended

    def judge(self, release_sha: str) -> int | None:
        """Apply the rollout rule to the release's current ring window; the log index of the
        transition it called for, if any.  The tally counts each device once (its latest
        logged report after the transition that entered the ring, or its bulk report in
        the current window), and the transition records the last log index counted."""
        with self._lock:
            data = self._store.rollout(release_sha)
            if data is None:
                return None
            state = rollout.RolloutState.from_dict(data)
            if state.status != rollout.ACTIVE:
                return None
            through = self._log_size() - 1
            logged = self._store.health_votes(
                release_sha, state.ring.name, state.entered_index, through
            )
            votes = [Report(device, status, index) for device, status, index in logged]
            # Bulk reports count too (one rule for both ways in): they are newer than every
            # logged report counted here, so a device's bulk report is its latest.
            if self._bulk_tally is None:
                counts = tally(votes)
            else:
                devices = sorted({vote.device for vote in votes})
                bulk = self._bulk_tally(release_sha, state.ring.name, devices)
                counts = tally(votes, bulk.devices_by_status, bulk.reporting)
            judged, transition = rollout.judge(state, counts, self._clock(), through)
            if transition is None:
                self._store.put_rollout(release_sha, judged.to_dict())  # the tally, for display
                return None
            return self._append(transition)

    def resume(self, release_sha: str, decision_sha: str, signer: str, reason: str) -> None:
        data = self._store.rollout(release_sha)
        if data is None:
            return
        state = rollout.RolloutState.from_dict(data)
        if state.status != rollout.HALTED:
            return
        _, transition = rollout.resume(state, self._clock(), decision_sha, signer, reason)
        self._append(transition)

    def after_health(self, report_sha256: str, log_index: int, release_sha: str) -> dict[str, Any]:
        """A device's logged report was indexed: judge its release's rollout now."""
        halted_at = self.judge(release_sha)
        return {
            "kind": KIND_HEALTH,
            "sha256": report_sha256,
            "log_index": log_index,
            "duplicate": False,
            "halted_log_index": halted_at,
            "rollout": self._store.rollout(release_sha),
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

"""The gateway service: takes signed submissions, logs them, inspects, approves, rolls out.

Write path of a submission: size limit -> DSSE envelope -> the caller's
token role must match the statement kind -> signatures checked against the
trust root's keys for that role -> semantic checks (a vendor only for its
own products, a verdict only for a logged release, ...) -> appended to the
transparency log (durable before the answer) -> applied to the metadata
index -> receipt with an inclusion proof under a signed checkpoint.

The metadata index is derived from the log by :meth:`Gateway._apply`; on
start, entries the index misses (a crash between the append and the
index) are applied again, so an acknowledged submission is never lost.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clearance.attest import (
    APPROVED,
    NEEDS_REVIEW,
    REJECTED,
    Envelope,
    Release,
    Verdict,
    canonical_json,
)
from clearance.attest.admission import VersionNotIncreasingError
from clearance.attest.errors import AttestFormatError, EnvelopeSignatureError
from clearance.attest.trust_root import Role, TrustRoot
from clearance.attest.version import Version
from clearance.errors import BadInput, ClearanceError
from clearance.gateway import rollout
from clearance.gateway._distribution import DistributionMixin
from clearance.gateway._entries import (
    KIND_ENTITLEMENT,
    KIND_HEALTH,
    KIND_POLICY,
    KIND_RELEASE,
    KIND_ROLLOUT_DECISION,
    KIND_TRANSITION,
    KIND_VERDICT,
    ParsedEntry,
    parse_entry,
)
from clearance.gateway._indexing import AWAITING_ARTIFACTS, IndexingMixin
from clearance.gateway._log import GatewayLog
from clearance.gateway.config import GatewayConfig, load_config
from clearance.gateway.errors import GatewayInputError, GatewayNotFoundError, GatewayRefused
from clearance.gateway.queue import JobQueue, SQLiteJobQueue
from clearance.gateway.store import MetadataStore, ReleaseRow
from clearance.gateway.tuf_repo import TufRepository
from clearance.index import LogIndex
from clearance.keys import Verifier
from clearance.log import StaleCheckpointError
from clearance.policy import Entitlement, Policy

log = logging.getLogger("clearance.gateway")

# Release states in the index.
INSPECTING = "inspecting"
INSPECTION_FAILED = "inspection-failed"
STATE_APPROVED = "approved"
STATE_REJECTED = "rejected"
STATE_NEEDS_REVIEW = "needs-review"
AWAITING_VERDICT = "awaiting-verdict"

#: Which token role may submit which statement kind.
ROLE_FOR_KIND = {
    KIND_RELEASE: ("vendor",),
    KIND_ENTITLEMENT: ("vendor",),
    KIND_VERDICT: ("inspector",),
    KIND_POLICY: ("policy",),
    KIND_ROLLOUT_DECISION: ("inspector", "policy"),
    KIND_HEALTH: ("client",),
}

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _str_field(data: dict[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise GatewayInputError(f"{what}: '{key}' must be a non-empty string")
    return value


class Gateway(DistributionMixin, IndexingMixin):
    """One gateway over one data directory (see :mod:`clearance.gateway.config`)."""

    def __init__(self, data_dir: Path, *, clock: Clock = _utcnow) -> None:
        self.data_dir = data_dir
        self.config: GatewayConfig = load_config(data_dir)
        self.clock = clock
        try:
            self.trust_root = TrustRoot.from_bytes((data_dir / "trust-root.json").read_bytes())
        except FileNotFoundError:
            raise GatewayInputError(f"{data_dir}: trust-root.json is missing") from None
        self.log = GatewayLog.open(data_dir / "log", LogIndex(self.trust_root))
        self.store = MetadataStore(data_dir / "gateway.sqlite")
        self.queue: JobQueue
        if self.config.job_queue_dsn:
            from clearance.gateway.queue_postgres import PostgresJobQueue

            self.queue = PostgresJobQueue(self.config.job_queue_dsn, self.config.job_queue_table)
        else:
            self.queue = SQLiteJobQueue(data_dir / "jobs.sqlite")
        self.tuf = TufRepository(data_dir / "tuf")
        self.artifacts_dir = data_dir / "artifacts"
        self.artifacts_dir.mkdir(exist_ok=True)
        self._apply_lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._wake_witness = threading.Event()
        self.witness_status: dict[str, Any] = {}
        self._replaying = False
        self._locks_lock = threading.Lock()
        self._channel_locks: dict[tuple[str, str], threading.Lock] = {}
        self.catch_up()

    # -- lifecycle -------------------------------------------------------------------

    def start_background(self, *, workers: int | None = None, tick_seconds: float = 1.0) -> None:
        """Start inspection workers, the rollout ticker and the witness loop."""
        from clearance.gateway.worker import InspectionWorker

        count = self.config.workers if workers is None else workers
        if self.config.inspector_key is None:
            count = 0  # no embedded inspector: verdicts come from outside (or remote workers)
        for n in range(count):
            worker = InspectionWorker(self, f"worker-{n}")
            self._spawn(f"inspection-{n}", worker.run_forever)
        self._spawn("rollout-ticker", lambda: self._tick_forever(tick_seconds))
        if self.config.witnesses:
            self._spawn("witness", self._witness_forever)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    @property
    def stopping(self) -> threading.Event:
        return self._stop

    def close(self) -> None:
        self._stop.set()
        self._wake_witness.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.store.close()
        self.queue.close()

    def _tick_forever(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            try:
                self.tick()
            except ClearanceError as exc:  # keep ticking; the next tick retries
                log.warning("rollout tick: %s", exc)

    # -- catching up from the log ---------------------------------------------------------

    def catch_up(self) -> int:
        """Apply every log entry the index misses, then redo what a crash may have cut short.

        While replaying, entries are only indexed: reactions that append to the log (a
        rollout start after an approval, a resume) wait until the whole log is indexed,
        since the entry that records them may already be further on in the log.
        """
        with self._apply_lock:
            done = self.store.indexed()
            missing = [i for i in range(self.log.size) if i not in done]
            self._replaying = True
            try:
                for index in missing:
                    self._apply(index, self.log.entry(index))
            finally:
                self._replaying = False
        self._reconcile()
        return len(missing)

    def _reconcile(self) -> None:
        """Idempotent reactions to the indexed state (safe to run at every start)."""
        for row in self.store.releases():
            if row.state == AWAITING_ARTIFACTS or (row.state == INSPECTING and row.job_id is None):
                if row.state == INSPECTING:
                    self.store.set_release_state(row.sha256, AWAITING_ARTIFACTS, "re-queued")
                    row = self.store.release(row.sha256) or row
                self._maybe_enqueue(row)
            if self.store.verdicts(row.sha256):
                self._evaluate(row.sha256)
            state = self.store.rollout(row.sha256)
            if state is None:
                continue
            if state["status"] == rollout.COMPLETE:
                self._publish_tuf(row.sha256)
            elif state["status"] == rollout.HALTED:
                self._resume_if_decided(row.sha256)

    def _resume_if_decided(self, release_sha: str) -> None:
        """A resume decision logged after the halt, but whose transition was never written."""
        transitions = self.store.transitions(release_sha)
        halted_at = max((i for i, t in transitions if t["event"] == "halted"), default=-1)
        for index, _kind, summary, sha in self.store.entries_of_kind(KIND_ROLLOUT_DECISION):
            if summary.get("release") == release_sha and index > halted_at:
                self._resume(release_sha, sha, "", str(summary.get("reason", "")))
                return

    # -- submissions ---------------------------------------------------------------

    def _verifiers(self, kind: str, parsed: ParsedEntry) -> tuple[Role, str]:
        if kind in (KIND_RELEASE, KIND_ENTITLEMENT):
            return self.trust_root.vendors, "vendor"
        if kind == KIND_VERDICT:
            return self.trust_root.inspectors, "inspector"
        if kind == KIND_POLICY:
            return self.trust_root.policy, "policy authority"
        if kind == KIND_ROLLOUT_DECISION:
            keys = (*self.trust_root.inspectors.keys, *self.trust_root.policy.keys)
            return Role(keys, 1 if keys else 0), "inspector or policy authority"
        raise GatewayRefused(f"{kind} submissions are not signed by a trust-root role")

    def _check_signature(self, parsed: ParsedEntry) -> list[Verifier]:
        assert parsed.envelope is not None
        role, who = self._verifiers(parsed.kind, parsed)
        if not role.keys:
            raise GatewayRefused(f"the trust root has no {who} key: cannot accept {parsed.kind}")
        # One valid signature by a key of the role is needed to accept a write; thresholds
        # (k-of-n inspectors) are applied when deciding approval, across verdicts.
        try:
            good = parsed.envelope.verify(role.keys, 1)
        except EnvelopeSignatureError as exc:
            raise GatewayRefused(f"{parsed.kind} envelope: {exc}") from None
        return good

    def submit(
        self, envelope_bytes: bytes, role: str | None, expected_kind: str | None = None
    ) -> dict[str, Any]:
        """Check, log and index one signed envelope; return its receipt."""
        if len(envelope_bytes) > self.config.max_envelope_bytes:
            raise GatewayInputError(
                f"envelope is {len(envelope_bytes)} bytes, the limit is "
                f"{self.config.max_envelope_bytes}"
            )
        try:
            envelope = Envelope.from_bytes(envelope_bytes)
            parsed = parse_entry(envelope.to_bytes())
        except (AttestFormatError, BadInput) as exc:
            raise GatewayInputError(f"submission: {exc}") from None
        if parsed.kind == KIND_TRANSITION:
            raise GatewayRefused("rollout transitions are written by the gateway only")
        if expected_kind is not None and parsed.kind != expected_kind:
            raise GatewayInputError(f"expected a {expected_kind} statement, got a {parsed.kind}")
        allowed = ROLE_FOR_KIND[parsed.kind]
        if role not in allowed:
            raise GatewayRefused(
                f"a {parsed.kind} must be submitted with a {' or '.join(allowed)} token"
                + ("" if role else " (no valid API token given)")
            )
        if parsed.kind == KIND_HEALTH:
            return self._health(parsed)
        signers = self._check_signature(parsed)
        existing = self.store.entry_by_sha(parsed.sha256)
        if existing is not None:  # idempotent: the same envelope again gets its receipt
            return self.receipt(existing[0], parsed.sha256, parsed.kind, duplicate=True)
        self._check_semantics(parsed, signers)
        entry = envelope.to_bytes()
        if parsed.kind != KIND_RELEASE:
            index = self._append_and_apply(entry)
        else:
            # The version rule (higher than every logged release of the product and channel)
            # is checked and the release appended under the channel's lock, so that two
            # concurrent releases of one channel cannot both pass and land out of order.
            assert parsed.statement is not None
            release = Release.from_statement(parsed.statement)
            with self._channel_lock(release.product, release.channel):
                self._check_version(release)
                index = self._append_and_apply(entry)
        return self.receipt(index, parsed.sha256, parsed.kind)

    def _append_and_apply(self, entry: bytes) -> int:
        index = self.log.append([entry])[0]
        with self._apply_lock:
            self._apply(index, entry)
        self._after_append()
        return index

    def _channel_lock(self, product: str, channel: str) -> threading.Lock:
        with self._locks_lock:
            return self._channel_locks.setdefault((product, channel), threading.Lock())

    def _check_version(self, release: Release) -> None:
        new = release.parsed_version
        for row in self.store.channel_releases(release.product, release.channel):
            if not new > Version.parse(row.version):
                raise VersionNotIncreasingError(
                    f"{release.product} {release.channel}: version {release.version} is not "
                    f"higher than the logged {row.version} (log index {row.log_index})"
                )

    def _check_semantics(self, parsed: ParsedEntry, signers: Sequence[Verifier]) -> None:
        statement = parsed.statement
        assert statement is not None
        if parsed.kind == KIND_RELEASE:
            release = Release.from_statement(statement)
            owners = [
                v.name
                for v in signers
                if release.product in self.config.vendor_products.get(v.name, ())
            ]
            if not owners:
                raise GatewayRefused(
                    f"vendor key {', '.join(v.name for v in signers)} may not release "
                    f"product {release.product!r}"
                )
        elif parsed.kind == KIND_ENTITLEMENT:
            ent = Entitlement.from_dict(statement.predicate)
            if not any(ent.product in self.config.vendor_products.get(v.name, ()) for v in signers):
                raise GatewayRefused(f"this vendor does not sell product {ent.product!r}")
        elif parsed.kind == KIND_VERDICT:
            verdict = Verdict.from_statement(statement)
            row = self.store.release(verdict.release_sha256)
            if row is None:
                raise GatewayRefused(
                    f"verdict names release {verdict.release_sha256}, which is not in the log"
                )
            if (row.product, row.version) != (verdict.product, verdict.version):
                raise GatewayRefused("verdict's product/version do not match the release it names")
        elif parsed.kind == KIND_POLICY:
            Policy.from_dict(statement.predicate)
        elif parsed.kind == KIND_ROLLOUT_DECISION:
            release_sha = _str_field(statement.predicate, "release", "rollout decision")
            action = statement.predicate.get("action")
            if action != "resume":
                raise GatewayInputError(f"rollout decision action {action!r} is not 'resume'")
            state = self.store.rollout(release_sha)
            if state is None or state["status"] != rollout.HALTED:
                raise GatewayRefused(f"rollout of {release_sha} is not halted")
            row = self.store.release(release_sha)
            if row is None or row.state != STATE_APPROVED:
                raise GatewayRefused(
                    f"release {release_sha} is {row.state if row else 'unknown'}: "
                    "only an approved release can resume its rollout"
                )

    def receipt(
        self, index: int, sha256: str, kind: str, *, duplicate: bool = False
    ) -> dict[str, Any]:
        checkpoint = self.log.checkpoint_bytes()
        size = self.log.checkpoint_size(checkpoint)
        proof = self.log.inclusion_proof(index, size)
        return {
            "kind": kind,
            "log_index": index,
            "sha256": sha256,
            "tree_size": size,
            "checkpoint": checkpoint.decode(),
            "inclusion_proof": [h.hex() for h in proof],
            "duplicate": duplicate,
        }

    def _append_transition(self, transition: rollout.Transition) -> int:
        return self._append_and_apply(canonical_json(transition.to_dict()))

    def _after_append(self) -> None:
        self._wake_witness.set()

    # -- inspection, approval, rollout ----------------------------------------------------

    def artifact_path(self, sha256: str) -> Path:
        return self.artifacts_dir / sha256

    def put_artifact(self, data: bytes, declared_sha256: str | None = None) -> dict[str, Any]:
        if len(data) > self.config.max_artifact_bytes:
            raise GatewayInputError(
                f"artifact is {len(data)} bytes, the limit is {self.config.max_artifact_bytes}"
            )
        digest = hashlib.sha256(data).hexdigest()
        if declared_sha256 is not None and declared_sha256 != digest:
            raise GatewayInputError(
                f"artifact content has SHA-256 {digest}, not the declared {declared_sha256}"
            )
        if not self.store.artifact_referenced(digest):
            # Uploads are not signed themselves: only bytes a logged, vendor-signed release
            # names by digest are accepted, so the store holds nothing unaccounted for.
            raise GatewayRefused(
                f"no logged release names an artifact with SHA-256 {digest}: "
                "submit the signed release first"
            )
        path = self.artifact_path(digest)
        if not path.exists():
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        self.store.add_artifact(digest, len(data))
        for row in self.store.releases(AWAITING_ARTIFACTS):
            self._maybe_enqueue(row)
        return {"sha256": digest, "size": len(data)}

    def _maybe_enqueue(self, row: ReleaseRow) -> None:
        if row.state != AWAITING_ARTIFACTS:
            return
        missing = [a["name"] for a in row.artifacts if not self.store.has_artifact(a["sha256"])]
        if missing:
            self.store.set_release_state(
                row.sha256, AWAITING_ARTIFACTS, f"waiting for artifacts: {', '.join(missing)}"
            )
            return
        if self.config.inspector_key is None and not self.config.job_queue_dsn:
            self.store.set_release_state(
                row.sha256, AWAITING_VERDICT, "waiting for an inspector's signed verdict"
            )
            return
        with self.store.transaction() as db:  # enqueue once, even if two uploads race here
            state = db.execute(
                "SELECT state FROM releases WHERE sha256=?", (row.sha256,)
            ).fetchone()
            if state is None or state[0] != AWAITING_ARTIFACTS:
                return
            db.execute(
                "UPDATE releases SET state=?, detail=? WHERE sha256=?",
                (INSPECTING, "queued for inspection", row.sha256),
            )
        job_id = self.queue.enqueue("inspect", {"release": row.sha256, "log_index": row.log_index})
        self.store.set_release_state(row.sha256, INSPECTING, "queued for inspection", job_id)

    def _evaluate(self, release_sha256: str) -> None:
        """Apply the trust root's inspector threshold to the logged verdicts."""
        row = self.store.release(release_sha256)
        if row is None:
            return
        verdicts = self.store.verdicts(release_sha256)
        approvers = {v["inspector"] for v in verdicts if v["decision"] == APPROVED}
        rejected = [v for v in verdicts if v["decision"] == REJECTED]
        review = [v for v in verdicts if v["decision"] == NEEDS_REVIEW]
        threshold = self.trust_root.inspectors.threshold
        if rejected:
            reason = (
                f"rejected by {rejected[-1]['inspector']} (log index {rejected[-1]['log_index']})"
            )
            self.store.set_release_state(release_sha256, STATE_REJECTED, reason)
            # A rejection after approval stops a rollout under way, as a logged transition.
            data = self.store.rollout(release_sha256)
            if data is not None and data["status"] == rollout.ACTIVE:
                state = rollout.RolloutState.from_dict(data)
                self._append_transition(
                    rollout.Transition(
                        release_sha256,
                        "halted",
                        state.ring.name,
                        self.clock(),
                        reason,
                        {"verdict_log_index": rejected[-1]["log_index"]},
                    )
                )
            return
        if len(approvers) >= threshold:
            if row.state != STATE_APPROVED:
                self.store.set_release_state(
                    release_sha256,
                    STATE_APPROVED,
                    f"approved by {len(approvers)} of {threshold} required inspectors",
                )
            if self.store.rollout(release_sha256) is None:
                state, transition = rollout.start(release_sha256, self.config.rings, self.clock())
                transition = rollout.Transition(
                    transition.release,
                    transition.event,
                    transition.ring,
                    transition.at,
                    transition.reason,
                    {"rings": [r.to_dict() for r in state.rings]},
                )
                self._append_transition(transition)
            return
        if review:
            self.store.set_release_state(
                release_sha256, STATE_NEEDS_REVIEW, "an inspector asked for human review"
            )
        elif approvers:
            self.store.set_release_state(
                release_sha256,
                AWAITING_VERDICT,
                f"{len(approvers)} of {threshold} inspector approvals",
            )

    def tick(self) -> list[int]:
        """Advance rollouts whose ring has soaked; keep TUF timestamps fresh."""
        appended = []
        now = self.clock()
        for data in self.store.rollouts():
            state = rollout.RolloutState.from_dict(data)
            _, transition = rollout.advance(state, now)
            if transition is not None:
                appended.append(self._append_transition(transition))
        self.tuf.refresh_timestamp(if_expiring_within=self.tuf.expiry.timestamp / 2)
        return appended

    def _resume(self, release_sha: str, decision_sha: str, signer: str, reason: str) -> None:
        data = self.store.rollout(release_sha)
        if data is None:
            return
        state = rollout.RolloutState.from_dict(data)
        if state.status != rollout.HALTED:
            return
        _, transition = rollout.resume(state, self.clock(), decision_sha, signer, reason)
        self._append_transition(transition)

    def _health(self, parsed: ParsedEntry) -> dict[str, Any]:
        statement = parsed.statement
        assert statement is not None and parsed.envelope is not None
        p = statement.predicate
        release_sha = _str_field(p, "release", "health report")
        customer = _str_field(p, "customer", "health report")
        status = _str_field(p, "status", "health report")
        if status not in rollout.HEALTH_STATES:
            raise GatewayInputError(
                f"health status {status!r} is not one of {rollout.HEALTH_STATES}"
            )
        keys: list[Verifier] = []
        for _, body in self.store.entitlements(customer):
            for vkey in body.get("client_keys", []):
                try:
                    keys.append(Verifier.parse(vkey))
                except BadInput:
                    continue
        if not keys:
            raise GatewayRefused(f"customer {customer!r} has no registered client key")
        try:
            parsed.envelope.verify(keys, 1)
        except EnvelopeSignatureError as exc:
            raise GatewayRefused(f"health report: {exc}") from None
        data = self.store.rollout(release_sha)
        if data is None:
            raise GatewayRefused(f"release {release_sha} is not being rolled out")
        state = rollout.RolloutState.from_dict(data)
        if not state.reaches(customer):
            raise GatewayRefused(f"release {release_sha} was not offered to {customer!r}")
        if not self.store.add_health(parsed.sha256, release_sha, customer, status):
            return {
                "kind": KIND_HEALTH,
                "sha256": parsed.sha256,
                "duplicate": True,
                "rollout": state.to_dict(),
            }
        with self._apply_lock:
            data = self.store.rollout(release_sha)
            assert data is not None
            state, transition = rollout.record_health(
                rollout.RolloutState.from_dict(data), status, self.clock()
            )
            with self.store.transaction() as db:
                self.store.put_rollout(db, release_sha, state.to_dict())
        halted_at = self._append_transition(transition) if transition is not None else None
        return {
            "kind": KIND_HEALTH,
            "sha256": parsed.sha256,
            "duplicate": False,
            "halted_log_index": halted_at,
            "rollout": (self.store.rollout(release_sha) or state.to_dict()),
        }

    def _publish_tuf(self, release_sha: str) -> None:
        row = self.store.release(release_sha)
        if row is None or row.state != STATE_APPROVED:
            return
        existing = self.tuf.targets()
        files: dict[str, bytes] = {}
        custom: dict[str, dict[str, Any]] = {}
        for artifact in row.artifacts:
            path = f"{row.product}/{row.version}/{artifact['name']}"
            if path in existing:
                continue
            files[path] = self.artifact_path(artifact["sha256"]).read_bytes()
            custom[path] = {
                "clearance": {
                    "release_sha256": row.sha256,
                    "log_index": row.log_index,
                    "channel": row.channel,
                    "bundle": f"/api/v1/bundles/{row.sha256}",
                }
            }
        if files:
            self.tuf.publish(files, custom)

    # -- reading -------------------------------------------------------------------

    def status(self, sha256: str) -> dict[str, Any]:
        entry = self.store.entry_by_sha(sha256)
        if entry is None:
            raise GatewayNotFoundError(f"no submission with SHA-256 {sha256}")
        index, kind, summary = entry
        out: dict[str, Any] = {
            "sha256": sha256,
            "kind": kind,
            "log_index": index,
            "summary": summary,
        }
        row = self.store.release(sha256)
        if row is not None:
            out["release"] = row.to_dict()
            out["verdicts"] = self.store.verdicts(sha256)
            out["rollout"] = self.store.rollout(sha256)
            out["transitions"] = [{"log_index": i, **b} for i, b in self.store.transitions(sha256)]
            if row.job_id is not None:
                job = self.queue.get(row.job_id)
                out["job"] = {
                    "id": job.id,
                    "state": job.state,
                    "attempts": job.attempts,
                    "error": job.error,
                }
        return out

    def bundle(self, release_sha256: str) -> bytes:
        """The Clearance bundle of a release: envelope, verdicts and policy in force, each
        with an inclusion proof under the latest (witness-cosigned) checkpoint."""
        from clearance.client.bundle import build_bundle
        from clearance.client.errors import MalformedBundleError

        row = self.store.release(release_sha256)
        if row is None:
            raise GatewayNotFoundError(f"no release with SHA-256 {release_sha256}")
        if row.state != STATE_APPROVED:
            raise GatewayRefused(f"release {release_sha256} is {row.state}, not approved")
        verdicts = [v["log_index"] for v in self.store.verdicts(release_sha256)]
        policy = self.policy_in_force()
        # The bundle carries the index proofs at its checkpoint's size (and every verdict the
        # index lists); if the log grows between reading the checkpoint and the index, retry.
        for _ in range(20):
            checkpoint = self.log.checkpoint()
            try:
                bundle = build_bundle(
                    self.log.transparency_log,
                    checkpoint,
                    row.log_index,
                    verdicts,
                    None if policy is None else policy.log_index,
                    index=self.log.index,
                )
            except MalformedBundleError:
                continue
            return bundle.to_bytes()
        raise GatewayRefused("the log kept growing while the bundle was built; try again")

    # -- witnesses ------------------------------------------------------------------

    def _witness_forever(self) -> None:
        while not self._stop.is_set():
            self._wake_witness.wait(timeout=30)
            self._wake_witness.clear()
            if self._stop.is_set():
                return
            try:
                self.witness_status = self.log.collect_witnesses(
                    self.config.witnesses, self.trust_root.witnesses.threshold
                )
            except StaleCheckpointError:
                # The log grew during the round: witness the newer checkpoint right away.
                self._wake_witness.set()
            except ClearanceError as exc:
                log.warning("witness round failed: %s", exc)

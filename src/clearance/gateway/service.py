"""The gateway service: takes signed submissions, logs them, inspects, approves, rolls out.

:class:`Gateway` is assembled from collaborators with one job each: the
configuration, the trust root, the log (:class:`~clearance.gateway._log.GatewayLog`),
the metadata store (:class:`~clearance.gateway.store.MetadataStore`, the only
holder of SQL), the job queue, the TUF repository and a clock.
:meth:`Gateway.open` builds them from a data directory; tests may build
them in memory and pass them in.

Write path of a submission: the checks of
:class:`~clearance.gateway.submission_checks.SubmissionChecks` -> appended to
the transparency log (durable before the answer) -> indexed by the
:class:`~clearance.gateway.indexer.Indexer` -> the indexer's reaction
carried out -> receipt with an inclusion proof under a signed checkpoint.

The metadata index is derived from the log; on start, entries the index
misses (a crash between the append and the index) are indexed again, so an
acknowledged submission is never lost.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearance.attest import Envelope, Release, canonical_json, statement_of
from clearance.attest.errors import AttestFormatError
from clearance.attest.trust_root import TrustRoot
from clearance.client.errors import MalformedBundleError
from clearance.errors import BadInput
from clearance.gateway import distribution, rollout
from clearance.gateway._admission import Admission, AdmissionQueue, canonical_envelope
from clearance.gateway._background import Background
from clearance.gateway._entries import (
    KIND_ENTITLEMENT,
    KIND_HEALTH,
    KIND_RELEASE,
    KIND_TRANSITION,
    ParsedEntry,
    parse_entry,
)
from clearance.gateway._health_bulk import HealthBulk
from clearance.gateway._inspect import InspectionRequest
from clearance.gateway._log import GatewayLog
from clearance.gateway._sigpool import SignaturePool
from clearance.gateway.bundles import build_bundle
from clearance.gateway.config import GatewayConfig, load_config
from clearance.gateway.customers import Customers, OpeningStore
from clearance.gateway.errors import GatewayInputError, GatewayNotFoundError, GatewayRefused
from clearance.gateway.indexer import Indexer, Reaction
from clearance.gateway.inspections import Inspections
from clearance.gateway.queue import JobQueue, SQLiteJobQueue
from clearance.gateway.rollouts import Rollouts
from clearance.gateway.states import ReleaseState
from clearance.gateway.store import (
    HealthReportStore,
    MetadataStore,
    ReleaseRow,
    SQLiteMetadataStore,
)
from clearance.gateway.submission_checks import SubmissionChecks
from clearance.gateway.tuf_repo import TufRepository
from clearance.gateway.worker import InspectionWorker, JobRunner
from clearance.index import LogIndex
from clearance.keys import Signer, load_signer
from clearance.log.reader import read_entry
from clearance.policy import (
    DistributionDecision,
    DistributionPolicy,
    LoggedPolicy,
    decide,
)
from clearance.policy.rollout_statements import SignedTransition

if TYPE_CHECKING:
    from clearance.gateway.queue_postgres import LeaderLease

log = logging.getLogger("clearance.gateway")

#: How many recently appended digests the admission batches remember.
RECENTLY_LOGGED = 4096

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Gateway:
    """One gateway: its collaborators, and the files under ``data_dir`` (artifacts, reports,
    scratch space, the inspector key named in the config)."""

    def __init__(
        self,
        *,
        data_dir: Path,
        config: GatewayConfig,
        trust_root: TrustRoot,
        log: GatewayLog,
        store: MetadataStore,
        queue: JobQueue,
        tuf: TufRepository,
        clock: Clock = _utcnow,
        replica: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        #: This process among the replicas sharing a PostgreSQL database (lease holder names).
        self.replica = replica or f"{socket.gethostname()}/{os.getpid()}"
        self.config = config
        self.trust_root = trust_root
        self.log = log
        self.store = store
        self.queue = queue
        self.tuf = tuf
        self.clock = clock
        self.inspections = Inspections(data_dir, config, store, queue, log)
        self.checks = SubmissionChecks(config, trust_root, store, log.index)
        self.customers = Customers(store, OpeningStore(data_dir / "openings"))
        self._rollout_signer = (
            load_signer(data_dir / config.rollout_key) if config.rollout_key else None
        )
        if (
            self._rollout_signer is not None
            and trust_root.rollout.threshold
            and all(
                k.public_key != self._rollout_signer.public_key for k in trust_root.rollout.keys
            )
        ):
            raise GatewayInputError(
                "the gateway's rollout key is not in the trust root's rollout role"
            )
        self._apply_lock = threading.RLock()
        self.rollouts = Rollouts(
            store,
            tuf,
            inspector_threshold=trust_root.inspectors.threshold,
            revoked=self._revoked_keys,
            rings=config.rings,
            clock=clock,
            append=self._append_transition,
            artifact_path=self.inspections.artifact_path,
            lock=self._apply_lock,
            log_size=lambda: self.log.size,
        )
        self.indexer = Indexer(store, trust_root, config.rings)
        self._background = Background()
        self.signatures = SignaturePool()
        self.health = HealthBulk(
            store,
            config,
            HealthReportStore(data_dir / "health.sqlite"),
            self.signatures,
            clock,
            self._apply_lock,
            self._append_and_index,
            self._append_transition,
            lambda: self.log.size,
        )
        self._replaying = False
        self._locks_lock = threading.Lock()
        self._admissions = AdmissionQueue(self._admit_batch)
        #: Digest -> index of entries the admission batches appended lately (used by the
        #: batch leader only): a resent envelope is found before its first copy is indexed.
        self._recently_logged: OrderedDict[str, int] = OrderedDict()
        self._leader: LeaderLease | None = None
        self._seen_missing: set[int] = set()
        if config.database:
            from clearance.gateway.queue_postgres import LeaderLease

            self._leader = LeaderLease(config.database, self.replica)
            self._leader.poll()
        self.catch_up()

    @classmethod
    def open(cls, data_dir: Path, *, clock: Clock = _utcnow) -> Gateway:
        """The gateway of a data directory made by :func:`clearance.gateway.setup.init_gateway`."""
        config = load_config(data_dir)
        try:
            trust_root = TrustRoot.from_bytes((data_dir / "trust-root.json").read_bytes())
        except FileNotFoundError:
            raise GatewayInputError(f"{data_dir}: trust-root.json is missing") from None
        queue: JobQueue
        if config.job_queue_dsn:
            from clearance.gateway.queue_postgres import PostgresJobQueue

            queue = PostgresJobQueue(config.job_queue_dsn, config.job_queue_table)
        else:
            queue = SQLiteJobQueue(data_dir / "jobs.sqlite")
        replica = f"{socket.gethostname()}/{os.getpid()}"
        return cls(
            data_dir=data_dir,
            config=config,
            trust_root=trust_root,
            # Every checkpoint commits to the verifiable index of the log (clearance.index).
            log=GatewayLog.open(data_dir / "log", LogIndex(trust_root), name=replica),
            store=SQLiteMetadataStore(data_dir / "gateway.sqlite"),
            queue=queue,
            tuf=TufRepository(data_dir / "tuf"),
            replica=replica,
            clock=clock,
        )

    def _revoked_keys(self) -> frozenset[str]:
        """Keys revoked in the log (the verifiable index knows them)."""
        return frozenset() if self.log.index is None else self.log.index.revoked_keys

    # -- lifecycle -------------------------------------------------------------------

    def start_background(self, *, workers: int | None = None, tick_seconds: float = 1.0) -> None:
        """Start inspection workers, the rollout ticker and the witness loop."""
        count = self.config.workers if workers is None else workers
        if self.config.inspector_key is None:
            count = 0  # no embedded inspector: verdicts come from outside (or remote workers)
        for n in range(count):
            worker = InspectionWorker(self, f"worker-{n}")
            self._background.spawn(f"inspection-{n}", worker.run_forever)
        self._background.every("rollout tick", tick_seconds, self._leader_tick)
        if self._leader is not None:
            self._background.every("replica", 0.5, self._follow)
            self._background.spawn("signature-pool", self.signatures.warm)  # bulk traffic
        if self.config.witnesses:
            self._background.witness_rounds(self._witness_round)

    @property
    def stopping(self) -> threading.Event:
        return self._background.stopping

    @property
    def witness_status(self) -> dict[str, Any]:
        """The outcome of the last witness round (empty before the first)."""
        return self._background.witness_status

    def close(self) -> None:
        self._background.close()
        if self._leader is not None:
            self._leader.close()
        self.store.close()
        self.queue.close()
        self.health.health_reports.close()
        self.signatures.close()

    # -- replicas over one PostgreSQL database -------------------------------------------

    @property
    def is_leader(self) -> bool:
        """Whether this process runs the once-only background work (always, without replicas)."""
        return self._leader is None or self._leader.is_leader

    def _leader_tick(self) -> None:
        if self.is_leader:
            self.health.aggregate_health()
            self.tick()

    def _witness_round(self) -> dict[str, Any]:
        if not self.is_leader:
            return self.witness_status
        return self.log.collect_witnesses(
            self.config.witnesses, self.trust_root.witnesses.threshold
        )

    def _follow(self) -> None:
        """Replicas: keep trying for the leader lease; index entries no replica indexed.

        The replica that appends an entry indexes it (and reacts to it) at once;
        an entry still missing from the shared index one poll later belongs to a
        replica that died in between, so it is indexed here (the leader's
        reconciliation then redoes the reactions).
        """
        assert self._leader is not None
        became = self._leader.poll()
        with self._apply_lock:
            done = self.store.indexed()
            size = self.log.size
            missing = {i for i in range(size) if i not in done}
            overdue = sorted(missing & self._seen_missing)
            self._seen_missing = missing - set(overdue)
            self._replaying = True
            try:
                for index in overdue:
                    self.indexer.index(index, read_entry(self.log, index, size))
            finally:
                self._replaying = False
        if became or (overdue and self.is_leader):
            log.info("replica %s: leader, reconciling", self.replica)
            self._reconcile()

    def tick(self) -> list[int]:
        """Advance rollouts whose ring has soaked; keep TUF timestamps fresh."""
        return self.rollouts.tick()

    # -- catching up from the log ---------------------------------------------------------

    def catch_up(self) -> int:
        """Index every log entry the store misses, then redo what a crash may have cut short.

        While replaying, entries are only indexed: reactions that append to the log (a
        rollout start after an approval, a resume) wait until the whole log is indexed,
        since the entry that records them may already be further on in the log.
        """
        with self._apply_lock:
            done = self.store.indexed()
            size = self.log.size
            first = next((i for i in range(size) if i not in done), size)
            indexed = 0
            self._replaying = True
            try:
                for index, entry in enumerate(self.log.entries(first, size, size), start=first):
                    if index not in done:
                        self.indexer.index(index, entry)
                        indexed += 1
            finally:
                self._replaying = False
        if self.is_leader:
            self._reconcile()
        return indexed

    def _reconcile(self) -> None:
        """Idempotent reactions to the indexed state (safe to run at every start)."""
        self.inspections.requeue_interrupted()
        self.rollouts.reconcile()

    # -- submissions ---------------------------------------------------------------

    def submit(
        self,
        envelope_bytes: bytes,
        role: str | None,
        expected_kind: str | None = None,
        opening: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Check, log and index one signed envelope; return its receipt.  ``opening``: the
        opening of a committed entitlement (kept privately, never logged).

        What needs nothing shared (parsing, the token's role) is done here; the admission
        checks and the append run batched with concurrent submissions
        (:meth:`_admit_batch`); once the batch is durable, the entry is indexed and its
        reaction carried out here, and the receipt proves it under the batch's checkpoint."""
        if len(envelope_bytes) > self.config.max_envelope_bytes:
            raise GatewayInputError(
                f"envelope is {len(envelope_bytes)} bytes, the limit is "
                f"{self.config.max_envelope_bytes}"
            )
        try:
            entry = canonical_envelope(Envelope.from_bytes(envelope_bytes))
            parsed = parse_entry(entry)
        except (AttestFormatError, BadInput) as exc:
            raise GatewayInputError(f"submission: {exc}") from None
        if parsed.kind == KIND_TRANSITION:
            raise GatewayRefused("rollout transitions are written by the gateway only")
        if expected_kind is not None and parsed.kind != expected_kind:
            raise GatewayInputError(f"expected a {expected_kind} statement, got a {parsed.kind}")
        if parsed.envelope is None:
            raise GatewayInputError(f"submission: a {parsed.kind} is not a signed statement")
        self.checks.check_role(parsed.kind, role)
        if parsed.kind == KIND_HEALTH:
            return self._health(parsed, parsed.envelope)
        admitted = self._admissions.admit(Admission(parsed, parsed.envelope, entry, opening))
        assert admitted.index is not None
        if not admitted.duplicate:
            with self._apply_lock:
                self._index_and_react(admitted.index, entry)
            if admitted.opened is not None:
                self.customers.openings.add(admitted.index, admitted.opened)
            self._background.wake_witnesses()
        return self._receipt_under(
            admitted.checkpoint,
            admitted.size,
            admitted.index,
            parsed.sha256,
            parsed.kind,
            admitted.duplicate,
        )

    def _admit_batch(self, batch: list[Admission]) -> None:
        """The admission checks, one group commit and the indexing of concurrent submissions.

        In rounds: a submission that depends on one earlier in the same round (a second
        release of one channel, whose version must exceed the first's, or the same
        envelope twice) waits for the next round, which sees the first one logged."""
        pending = batch
        while pending:
            self.log.sync_index()  # revoked keys and version bars as the whole log has them
            round_, later, channels, shas = [], [], set(), set()
            for item in pending:
                key = self._admission_key(item)
                if item.parsed.sha256 in shas or (key is not None and key in channels):
                    later.append(item)
                    continue
                shas.add(item.parsed.sha256)
                if key is not None:
                    channels.add(key)
                round_.append(item)
            self._admit_round(round_)
            pending = later

    @staticmethod
    def _admission_key(item: Admission) -> tuple[str, str] | None:
        """The channel whose version order a release takes part in (None for other kinds)."""
        statement = item.parsed.statement
        if item.parsed.kind != KIND_RELEASE or statement is None:
            return None
        predicate = statement.predicate
        return str(predicate.get("product")), str(predicate.get("channel"))

    def _admit_round(self, items: list[Admission]) -> None:
        to_log: list[Admission] = []
        for item in items:
            try:
                logged = self._check_admission(item)
            except Exception as exc:  # this caller's refusal only
                item.error = exc
                continue
            if logged is None:
                to_log.append(item)
            else:
                item.index, item.duplicate = logged, True
        if to_log:
            indices = self.log.append([item.entry for item in to_log])
            for item, index in zip(to_log, indices, strict=True):
                item.index = index
                self._recently_logged[item.parsed.sha256] = index
            while len(self._recently_logged) > RECENTLY_LOGGED:
                self._recently_logged.popitem(last=False)
        if any(item.index is not None for item in items):
            checkpoint = self.log.checkpoint_bytes()
            size = self.log.checkpoint_size(checkpoint)
            for item in items:
                item.checkpoint, item.size = checkpoint, size

    def _check_admission(self, item: Admission) -> int | None:
        """Every admission check of one submission; the log index of its earlier copy when
        it is logged already (idempotent: the same envelope again gets its receipt)."""
        parsed = item.parsed
        signers = self.checks.check_signature(parsed)
        # Logged by an earlier batch whose callers may not have indexed it yet, or indexed.
        recent = self._recently_logged.get(parsed.sha256)
        if recent is not None:
            return recent
        existing = self.store.entry_by_sha(parsed.sha256)
        if existing is not None:
            return existing[0]
        self.checks.check_semantics(parsed, signers, item.opening)
        if parsed.kind == KIND_ENTITLEMENT:
            _, item.opened = self.checks.entitlement_of(parsed, item.opening)
        elif parsed.kind == KIND_RELEASE:
            # The version rule (higher than every logged release of the product and
            # channel): one release per channel in a round, checked against the synced index.
            assert parsed.statement is not None
            release = Release.from_statement(parsed.statement)
            logged = self.log.index.release_log_index(parsed.sha256) if self.log.index else None
            if logged is not None:  # logged already (e.g. by a replica that then died)
                return logged
            self.checks.check_version(release)
        return None

    def _health(self, parsed: ParsedEntry, envelope: Envelope) -> dict[str, Any]:
        """A device's install-health report: checked, logged (one vote of that device in
        its ring's window), then the rollout rule is applied."""
        vote = self.checks.health_report(parsed, self.customers.devices())
        existing = self.store.entry_by_sha(parsed.sha256)
        if existing is not None:
            return {
                "kind": KIND_HEALTH,
                "sha256": parsed.sha256,
                "log_index": existing[0],
                "duplicate": True,
                "rollout": self.store.rollout(vote.release),
            }
        index = self._append_and_index(envelope.to_bytes())
        return self.rollouts.after_health(parsed.sha256, index, vote.release)

    def _append_and_index(self, entry: bytes) -> int:
        index = self.log.append([entry])[0]
        with self._apply_lock:
            self._index_and_react(index, entry)
        self._background.wake_witnesses()
        return index

    def _index_and_react(self, index: int, entry: bytes) -> None:
        """Index one appended entry and carry out the reaction (the caller holds the lock)."""
        reaction = self.indexer.index(index, entry)
        if reaction is not None and not self._replaying:
            self._react(reaction)

    def _react(self, reaction: Reaction) -> None:
        if reaction.action == "enqueue":
            row = self.store.release(reaction.release)
            if row is not None:
                self.inspections.maybe_enqueue(row)
        elif reaction.action == "evaluate":
            self.rollouts.evaluate(reaction.release)
        elif reaction.action == "resume":
            self.rollouts.resume(
                reaction.release, reaction.decision_sha256, reaction.signer, reaction.reason
            )
        elif reaction.action == "publish":
            self.rollouts.publish_tuf(reaction.release)
        elif reaction.action == "revoke":
            entry = self.store.entry_by_sha(reaction.decision_sha256)
            index = entry[0] if entry is not None else -1
            self.rollouts.revoke(reaction.release, index, reaction.reason)
        elif reaction.action == "reset":
            entry = self.store.entry_by_sha(reaction.decision_sha256)
            if entry is not None:
                index, _, summary = entry
                self.rollouts.reset_channel(
                    str(summary["product"]),
                    str(summary["channel"]),
                    str(summary["floor"]),
                    index,
                    reaction.reason,
                )

    def receipt(
        self, index: int, sha256: str, kind: str, *, duplicate: bool = False
    ) -> dict[str, Any]:
        checkpoint = self.log.checkpoint_bytes()
        size = self.log.checkpoint_size(checkpoint)
        return self._receipt_under(checkpoint, size, index, sha256, kind, duplicate)

    def _receipt_under(
        self, checkpoint: bytes, size: int, index: int, sha256: str, kind: str, duplicate: bool
    ) -> dict[str, Any]:
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
        """Log a rollout transition, signed by the rollout key the trust root names (a plain
        record only when the gateway has none: older setups, tests of the legacy form)."""
        signer = self._rollout_signer
        if signer is None:
            return self._append_and_index(canonical_json(transition.to_dict()))
        signed = SignedTransition(
            transition.release,
            transition.event,
            transition.ring,
            transition.at,
            transition.reason,
            transition.evidence,
        )
        return self._append_and_index(signed.sign([signer]).to_bytes())

    # -- artifacts and inspection (see :class:`~clearance.gateway.inspections.Inspections`) --

    def artifact_path(self, sha256: str) -> Path:
        return self.inspections.artifact_path(sha256)

    def put_artifact(self, data: bytes, declared_sha256: str | None = None) -> dict[str, Any]:
        return self.inspections.put_artifact(data, declared_sha256)

    def inspector_signer(self) -> Signer | None:
        return self.inspections.inspector_signer()

    def run_inspection_job(
        self, worker: str, run: JobRunner, expected_errors: tuple[type[BaseException], ...]
    ) -> bool:
        return self.inspections.run_job(worker, run, expected_errors)

    def inspection_scratch(self) -> AbstractContextManager[Path]:
        return self.inspections.scratch()

    def inspection_request(
        self, release_sha256: str, work_dir: Path, signer: Signer
    ) -> InspectionRequest:
        return self.inspections.request(release_sha256, work_dir, signer)

    # -- distribution ----------------------------------------------------------------

    def policy_in_force(self) -> LoggedPolicy | None:
        latest = self.store.latest_policy()
        if latest is None:
            return None
        return LoggedPolicy(DistributionPolicy.from_dict(latest[1]), latest[0])

    def decide_for(
        self, customer: str, product: str, at: datetime | None = None
    ) -> DistributionDecision:
        entitlements = self.customers.entitlements(customer)
        return decide(self.policy_in_force(), entitlements, customer, product, at or self.clock())

    def offer(self, row: ReleaseRow, customer: str) -> dict[str, Any]:
        """Whether ``row`` may go to ``customer`` now, and the logged reason if not."""
        decision = self.decide_for(customer, row.product)
        data = self.store.rollout(row.sha256) if decision.allowed else None
        transitions = self.store.transitions(row.sha256) if data is not None else []
        return distribution.offer(
            decision,
            None if data is None else rollout.RolloutState.from_dict(data),
            transitions[-1][0] if transitions else None,
            customer,
        )

    def latest(self, product: str, channel: str, customer: str) -> dict[str, Any]:
        """The newest approved release of the channel this customer may have now, and when it
        is not the newest approved one in the log, the logged reason for withholding it."""
        return distribution.latest(
            product,
            channel,
            customer,
            self.clock(),
            self.store.approved_releases(product, channel),
            lambda row: self.offer(row, customer),
            self.log.size,
        )

    # -- reading (what the API and the dashboard show) ---------------------------------

    @property
    def log_size(self) -> int:
        return self.log.size

    @property
    def log_origin(self) -> str:
        return self.log.origin

    @property
    def public_log_dir(self) -> Path:
        """The C2SP tlog-tiles files (``checkpoint``, ``tile/...``), served as they are."""
        return self.log.public_dir

    @property
    def log_in_database(self) -> bool:
        """True for a PostgreSQL log: tiles are served with :meth:`read_log_file`."""
        return not self.log.publishes_files

    def read_log_file(self, path: str) -> bytes:
        """A tlog-tiles file (``checkpoint``, ``tile/...``) of a PostgreSQL log, from the database."""
        return self.log.read_public(path)

    # -- health reports in bulk (see :mod:`clearance.gateway.health_batch`) ------------

    def submit_health_bulk(self, body: bytes, role: str | None) -> dict[str, Any]:
        return self.health.submit_health_bulk(body, role)

    def aggregate_health(self) -> list[int]:
        return self.health.aggregate_health()

    def health_aggregate(self, log_index: int) -> dict[str, Any]:
        if not 0 <= log_index < self.log.size:
            raise GatewayNotFoundError(f"no log entry {log_index}")
        return self.health.aggregate(log_index, read_entry(self.log, log_index, self.log.size))

    @property
    def tuf_metadata_dir(self) -> Path:
        return self.tuf.metadata_dir

    @property
    def tuf_targets_dir(self) -> Path:
        return self.tuf.targets_dir

    @property
    def trust_root_file(self) -> Path:
        return self.data_dir / "trust-root.json"

    def role_of(self, token: str | None) -> str | None:
        """The role an API token was issued for, or ``None``."""
        return self.config.role_of(token)

    @property
    def max_envelope_bytes(self) -> int:
        return self.config.max_envelope_bytes

    @property
    def max_artifact_bytes(self) -> int:
        return self.config.max_artifact_bytes

    def releases(self) -> list[ReleaseRow]:
        """Every logged release, in log order."""
        return self.store.releases()

    def release(self, sha256: str) -> ReleaseRow | None:
        return self.store.release(sha256)

    def approved_release(self, sha256: str) -> ReleaseRow:
        row = self.store.release(sha256)
        if row is None or row.state != ReleaseState.APPROVED:
            raise GatewayNotFoundError(f"no approved release {sha256}")
        return row

    def verdicts_of(self, release_sha256: str) -> list[dict[str, Any]]:
        return self.store.verdicts(release_sha256)

    def rollout_of(self, release_sha256: str) -> dict[str, Any] | None:
        return self.store.rollout(release_sha256)

    def entitlements_of(self, customer: str) -> list[tuple[int, dict[str, Any]]]:
        """A customer's entitlements (legacy clear ones and opened commitments)."""
        out = list(self.store.entitlements(customer))
        out += [(i, o.entitlement.to_dict()) for i, o in self.customers.openings.of(customer)]
        return sorted(out, key=lambda item: item[0])

    def openings(self) -> list[tuple[int, dict[str, Any]]]:
        """Every opening kept (for the regulator)."""
        return [(i, o.to_dict()) for i, o in self.customers.openings.all()]

    def authenticate_customer(self, method: str, path: str, headers: Mapping[str, str]) -> str:
        return self.customers.authenticate(method, path, headers, int(self.clock().timestamp()))

    def entry_kinds(self) -> dict[str, int]:
        """How many log entries of each kind are indexed."""
        return self.store.kinds()

    def recent_entries(self, limit: int = 20) -> list[dict[str, Any]]:
        return self.store.recent_entries(limit)

    def job_counts(self) -> dict[str, int]:
        return self.inspections.job_counts()

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
                out["job"] = self.inspections.job(row.job_id)
        return out

    def bundle(self, release_sha256: str, customer: str | None = None) -> bytes:
        """The Clearance bundle of a release: envelope, verdicts, policy in force and signed
        rollout transitions, each with an inclusion proof under the latest (witness-cosigned)
        checkpoint; for ``customer`` (authenticated by the caller) also its entitlement
        commitment and opening."""
        row = self.store.release(release_sha256)
        if row is None:
            raise GatewayNotFoundError(f"no release with SHA-256 {release_sha256}")
        if row.state != ReleaseState.APPROVED:
            raise GatewayRefused(f"release {release_sha256} is {row.state}, not approved")
        verdicts = [v["log_index"] for v in self.store.verdicts(release_sha256)]
        policy = self.policy_in_force()
        entitlement_index = None
        opening = None
        if customer is not None:
            found = self.customers.opening(customer, row.product)
            if found is None:
                raise GatewayRefused(
                    f"no entitlement of {customer!r} for {row.product!r} is known here"
                )
            entitlement_index, opened = found
            opening = opened.to_dict()
        # The bundle carries the index proofs at its checkpoint's size (and every verdict the
        # index lists); if the log grows between reading the checkpoint and the index, retry.
        for _ in range(20):
            self.log.sync_index()  # another replica may have appended
            checkpoint = self.log.checkpoint()
            size = self.log.checkpoint_size(checkpoint.to_bytes())
            rollout_indices = [  # signed transitions only (older plain records prove nothing)
                i
                for i, _ in self.store.transitions(release_sha256)
                if i < size and b"payloadType" in next(iter(self.log.entries(i, i + 1, size)))
            ]
            try:
                bundle = build_bundle(
                    self.log,
                    checkpoint,
                    row.log_index,
                    verdicts,
                    None if policy is None else policy.log_index,
                    index=self.log.index,
                    entitlement_index=entitlement_index,
                    entitlement_opening=opening,
                    rollout_indices=rollout_indices,
                )
            except MalformedBundleError:
                continue
            return bundle.to_bytes()
        raise GatewayRefused("the log kept growing while the bundle was built; try again")

    # -- read-only views for the dashboard (clearance.web) ------------------------------
    def log_entry(self, index: int) -> bytes:
        """The bytes of log entry ``index``."""
        size = self.log.size
        if not 0 <= index < size:
            raise GatewayNotFoundError(f"log entry {index} does not exist")
        return next(iter(self.log.entries(index, index + 1, size)))

    def inclusion(self, index: int) -> tuple[int, list[bytes], bytes]:
        """Entry ``index``'s inclusion proof under the current checkpoint: (tree size, audit
        path, the signed checkpoint note it verifies against)."""
        note = self.log.checkpoint_bytes()
        size = self.log.checkpoint_size(note)
        if not 0 <= index < size:
            raise GatewayNotFoundError(f"log entry {index} is not under the current checkpoint")
        return size, self.log.inclusion_proof(index, size), note

    def checkpoint_note(self) -> bytes:
        return self.log.checkpoint_bytes()

    def policy_history(self) -> list[LoggedPolicy]:
        """Every logged policy whose signature the gateway accepted, in log order."""
        out: list[LoggedPolicy] = []
        for index in self.entries_of("policy"):
            try:
                predicate = statement_of(Envelope.from_bytes(self.log_entry(index))).predicate
                out.append(LoggedPolicy(DistributionPolicy.from_dict(predicate), index))
            except BadInput:
                continue
        return out

    def all_entitlements(self) -> list[tuple[int, dict[str, Any]]]:
        """Every entitlement the gateway knows: legacy clear ones and opened commitments
        (for the operator's and the regulator's pages, never public)."""
        out = list(self.store.entitlements())
        out += [(i, o.entitlement.to_dict()) for i, o in self.customers.openings.all()]
        return sorted(out, key=lambda item: item[0])

    def transitions_of(self, release_sha256: str) -> list[tuple[int, dict[str, Any]]]:
        return self.store.transitions(release_sha256)

    def health_of(self, release_sha256: str) -> list[tuple[datetime, str]]:
        """When each install-health report on a release arrived, and its status."""
        return [
            (datetime.fromtimestamp(at, UTC), status)
            for at, status in self.store.health_reports(release_sha256)
        ]

    def entries_of(self, kind: str) -> list[int]:
        """Log indices of the indexed entries of one kind (release, verdict, health, ...)."""
        return [row[0] for row in self.store.entries_of_kind(kind)]

    def inspection_report(self, release_sha256: str, suffix: str) -> Path | None:
        """The file the embedded inspection wrote for a release (``sarif`` or ``html``)."""
        if suffix not in ("sarif", "html") or not _is_sha256(release_sha256):
            return None
        path = self.data_dir / "reports" / f"{release_sha256}.{suffix}"
        return path if path.is_file() else None

    def audit_reports(self) -> list[dict[str, Any]]:
        """Audit results auditors posted, oldest first (kept in ``DATA/audit-reports/``)."""
        folder = self.data_dir / "audit-reports"
        out = []
        for path in (
            sorted(folder.glob("*.json"), key=lambda p: int(p.stem)) if folder.is_dir() else []
        ):
            try:
                out.append(json.loads(path.read_bytes()))
            except (OSError, ValueError):
                continue
        return out

    def add_audit_report(self, report: dict[str, Any]) -> int:
        """Keep an auditor's posted result (the last 100); returns its number."""
        folder = self.data_dir / "audit-reports"
        folder.mkdir(parents=True, exist_ok=True)
        with self._locks_lock:
            numbers = sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit())
            number = (numbers[-1] + 1) if numbers else 1
            body = {**report, "number": number, "received": self.clock().isoformat()}
            (folder / f"{number}.json").write_text(json.dumps(body, sort_keys=True))
            for old in numbers[: max(0, len(numbers) + 1 - 100)]:
                (folder / f"{old}.json").unlink(missing_ok=True)
        return number


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)

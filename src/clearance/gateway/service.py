"""The gateway service: takes signed submissions, logs them, inspects, approves, rolls out.

:class:`Gateway` is assembled from parts (config, trust root, log, metadata
store, job queue, TUF repository, clock): :meth:`Gateway.open` builds them from
a data directory, tests build them in memory.  Its jobs are collaborators, the
public attributes the API and the dashboard call: ``checks``, ``inspections``,
``customers``, ``rollouts``, ``health``, ``reads`` (every read of the API and the
dashboard) and ``bundles``.  What stays here is the write path and the lifecycle.

A submission is checked, appended to the log (durable before the answer),
indexed, the index's reaction carried out, and answered with a receipt.  On
start, entries the index misses (a crash between the append and the index) are
indexed again, so an acknowledged submission is never lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearance.attest import Envelope
from clearance.attest.errors import AttestFormatError
from clearance.attest.trust_root import TrustRoot
from clearance.errors import BadInput
from clearance.gateway import rollout
from clearance.gateway._admission import Admission, BatchAdmitter
from clearance.gateway._background import Background
from clearance.gateway._entries import (
    KIND_HEALTH,
    KIND_TRANSITION,
    ParsedEntry,
    parse_envelope,
)
from clearance.gateway._forwarding import Forwarder, ReceiptCheck
from clearance.gateway._health_bulk import HealthBulk
from clearance.gateway._log import GatewayLog
from clearance.gateway._pipeline import SubmissionPipeline
from clearance.gateway._sigpool import SignaturePool
from clearance.gateway.backends import open_backends
from clearance.gateway.config import TRUST_ROOT_FILE, GatewayConfig, load_config
from clearance.gateway.customers import Customers, Openings, OpeningStore
from clearance.gateway.errors import GatewayInputError, GatewayRefused
from clearance.gateway.health_store import SQLiteHealthReportStore
from clearance.gateway.indexer import Indexer, Reaction
from clearance.gateway.inspections import ArtifactBlobs, Inspections
from clearance.gateway.queue import JobQueue, SQLiteJobQueue
from clearance.gateway.reads import GatewayReads
from clearance.gateway.release_bundles import ReleaseBundles
from clearance.gateway.rollouts import Rollouts
from clearance.gateway.store import HealthReportStore, MetadataStore, ReleaseRow
from clearance.gateway.submission_checks import SubmissionChecks
from clearance.gateway.transitions import TransitionSigner
from clearance.gateway.tuf_repo import TufRepository
from clearance.gateway.worker import InspectionWorker
from clearance.index import LogIndex
from clearance.log.reader import read_entry

if TYPE_CHECKING:
    from clearance.gateway.queue_postgres import LeaderLease

log = logging.getLogger("clearance.gateway")

#: How many entries catching up indexes per transaction.
_INDEX_CHUNK = 256


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
        health_reports: HealthReportStore | None = None,
        artifact_blobs: ArtifactBlobs | None = None,
        openings: Openings | None = None,
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
        self.inspections = Inspections(data_dir, config, store, queue, log, artifact_blobs)
        self.checks = SubmissionChecks(config, trust_root, store, log.index)
        self.customers = Customers(store, openings or OpeningStore(data_dir / "openings"))
        self._transitions = TransitionSigner.from_config(data_dir, config, trust_root)
        self._apply_lock = threading.RLock()
        self.rollouts = Rollouts(
            store,
            tuf,
            inspector_threshold=trust_root.inspectors.threshold,
            revoked=log.revoked_keys,
            rings=config.rings,
            clock=clock,
            append=self._append_transition,
            artifact_path=self.inspections.artifact_path,
            lock=self._apply_lock,
            log_size=lambda: self.log.size,
            bulk_tally=lambda release, ring, among: self.health.window_tally(release, ring, among),
        )
        self.indexer = Indexer(store, trust_root, config.rings)
        self._background = Background()
        self.signatures = SignaturePool()
        self.health = HealthBulk(
            store,
            config,
            health_reports or SQLiteHealthReportStore(data_dir / "health.sqlite"),
            self.signatures,
            clock,
            self._apply_lock,
            self._append_and_index,
            self.rollouts.judge,
        )
        self.reads = GatewayReads(
            data_dir=data_dir,
            config=config,
            trust_root=trust_root,
            log=log,
            store=store,
            customers=self.customers,
            inspections=self.inspections,
            health=self.health,
            clock=clock,
            witness_status=lambda: self._background.witness_status,
        )
        self.bundles = ReleaseBundles(log, store, self.customers, self.reads.policy_in_force)
        self._locks_lock = threading.Lock()
        self._pipeline = SubmissionPipeline(
            BatchAdmitter(log, store, self.checks), self._finish_admitted
        )
        self._leader: LeaderLease | None = None
        self._advertised: str | None = None
        self._seen_missing: set[int] = set()
        #: Every log index below this one is indexed (where :meth:`_follow` starts looking).
        self._indexed_below = 0
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
            trust_root = TrustRoot.from_bytes((data_dir / TRUST_ROOT_FILE).read_bytes())
        except FileNotFoundError:
            raise GatewayInputError(f"{data_dir}: {TRUST_ROOT_FILE} is missing") from None
        queue: JobQueue
        if config.job_queue_dsn:
            from clearance.gateway.queue_postgres import PostgresJobQueue

            queue = PostgresJobQueue(config.job_queue_dsn, config.job_queue_table)
        else:
            queue = SQLiteJobQueue(data_dir / "jobs.sqlite")
        replica = f"{socket.gethostname()}/{os.getpid()}"
        backends = open_backends(data_dir, config)  # PostgreSQL when gateway.json names one
        return cls(
            data_dir=data_dir,
            config=config,
            trust_root=trust_root,
            # Every checkpoint commits to the verifiable index of the log (clearance.index).
            log=GatewayLog.open(data_dir / "log", LogIndex(trust_root), name=replica),
            store=backends.store,
            queue=queue,
            tuf=backends.tuf,
            replica=replica,
            clock=clock,
            health_reports=backends.health_reports,
            artifact_blobs=backends.blobs,
            openings=backends.openings,
        )

    # -- lifecycle -------------------------------------------------------------------

    def start_background(self, *, workers: int | None = None, tick_seconds: float = 1.0) -> None:
        """Start inspection workers, the rollout ticker and the witness loop."""
        count = self.config.workers if workers is None else workers
        if self.config.inspector_key is None:
            count = 0  # no embedded inspector: verdicts come from outside (or remote workers)
        for n in range(count):
            worker = InspectionWorker(self.inspections, self.submit, self.stopping, f"worker-{n}")
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

    def close(self) -> None:
        self._background.close()  # inspection workers submit verdicts through the pipeline
        self._pipeline.close()
        if self._leader is not None:
            self._leader.close()
        self.store.close()
        self.queue.close()
        self.health.health_reports.close()
        self.inspections.close()
        self.customers.openings.close()
        self.tuf.close()
        self.signatures.close()

    # -- replicas over one PostgreSQL database -------------------------------------------

    @property
    def is_leader(self) -> bool:
        """Whether this process runs the once-only background work (always, without replicas)."""
        return self._leader is None or self._leader.is_leader

    def advertise(self, url: str) -> None:
        """Where the other replicas reach this one (``clearance serve``): while it leads,
        they forward their submissions there (see :mod:`clearance.gateway._forwarding`)."""
        self._advertised = url
        if self._leader is not None:
            self._leader.advertise(url)
            self._leader.poll()

    def sequencer_url(self) -> str | None:
        """Where this replica forwards submissions: the leader's address, or None when
        this replica admits them itself (it leads, no leader is known, there are no
        replicas, or ``forward_to_leader`` is off)."""
        lease = self._leader
        if lease is None or lease.is_leader or not self.config.forward_to_leader:
            return None
        url = lease.sequencer_url
        return None if url is None or url == self._advertised else url

    def forwarder(self) -> Forwarder:
        """A forwarder whose receipts are checked against this log's key (made on the
        event loop that will use it)."""
        log = self.log.transparency_log
        return Forwarder(ReceiptCheck(log.verifier, log.origin))

    def _leader_tick(self) -> None:
        if self.is_leader:
            self.health.aggregate_health()
            self.rollouts.tick()

    def _witness_round(self) -> dict[str, Any]:
        if not self.is_leader:
            return self._background.witness_status
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
        self.tuf.sync()  # what another replica published, for this one to serve
        # A follower forwards its submissions, so it would otherwise apply the leader's
        # entries to its verifiable index only when it next integrates: at a failover,
        # everything since (minutes of a busy log) before the first batch.  Kept within
        # a poll of the log, taking over costs at most one poll's entries.
        self.log.sync_index()
        with self._apply_lock:
            start = self._indexed_below
            size = self.log.size
            done = self.store.indexed(start, size)
            missing = {i for i in range(start, size) if i not in done}
            overdue = sorted(missing & self._seen_missing)
            self._seen_missing = missing - set(overdue)
            self._index_without_reacting([(i, read_entry(self.log, i, size)) for i in overdue])
            self._indexed_below = min(self._seen_missing, default=size)
        if became or (overdue and self.is_leader):
            log.info("replica %s: leader, reconciling", self.replica)
            self._reconcile()

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
            entries = enumerate(self.log.entries(first, size, size), start=first)
            indexed = self._index_without_reacting((i, e) for i, e in entries if i not in done)
            self._indexed_below = size
        if self.is_leader:
            self._reconcile()
        return indexed

    def _index_without_reacting(self, entries: Iterable[tuple[int, bytes]]) -> int:
        """Index entries appended earlier (by this process before a crash, or by a replica),
        holding back their reactions: :meth:`_reconcile` redoes those from the indexed state.
        Call with the apply lock held."""
        count = 0
        chunk: list[tuple[int, bytes, ParsedEntry | None]] = []
        for index, entry in entries:
            chunk.append((index, entry, None))
            if len(chunk) == _INDEX_CHUNK:
                self.indexer.index_many(chunk)
                count, chunk = count + len(chunk), []
        self.indexer.index_many(chunk)
        return count + len(chunk)

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
        (:class:`~clearance.gateway._admission.BatchAdmitter`), then the batch's entries
        are indexed, their reactions carried out, and each receipt proves its entry under
        the batch's checkpoint (:mod:`clearance.gateway._pipeline`)."""
        admission = self._admission_of(envelope_bytes, role, expected_kind, opening)
        if admission.parsed.kind == KIND_HEALTH:
            return self._health(admission.parsed, admission.envelope)
        return self._pipeline.run(admission)

    async def submit_async(self, envelope_bytes: bytes, role: str | None) -> dict[str, Any]:
        """:meth:`submit` from an event loop: the request waits for its batch without a
        thread of its own (the HTTP front's hot path)."""
        admission = self._admission_of(envelope_bytes, role, None, None)
        if admission.parsed.kind == KIND_HEALTH:  # parsed above: not parsed again
            return await asyncio.to_thread(self._health, admission.parsed, admission.envelope)
        return await self._pipeline.run_async(admission)

    def _admission_of(
        self,
        envelope_bytes: bytes,
        role: str | None,
        expected_kind: str | None,
        opening: Mapping[str, Any] | None,
    ) -> Admission:
        """What a submission is, before anything shared is looked at: parsed, of a kind
        the caller's role may submit."""
        if len(envelope_bytes) > self.config.max_envelope_bytes:
            raise GatewayInputError(
                f"envelope is {len(envelope_bytes)} bytes, the limit is "
                f"{self.config.max_envelope_bytes}"
            )
        try:
            envelope = Envelope.from_bytes(envelope_bytes)
            entry = envelope.to_bytes()
            parsed = parse_envelope(envelope)
        except (AttestFormatError, BadInput) as exc:
            raise GatewayInputError(f"submission: {exc}") from None
        if parsed.kind == KIND_TRANSITION:
            raise GatewayRefused("rollout transitions are written by the gateway only")
        if expected_kind is not None and parsed.kind != expected_kind:
            raise GatewayInputError(f"expected a {expected_kind} statement, got a {parsed.kind}")
        if parsed.envelope is None:
            raise GatewayInputError(f"submission: a {parsed.kind} is not a signed statement")
        self.checks.check_role(parsed.kind, role)
        return Admission(parsed, parsed.envelope, entry, opening)

    def _finish_admitted(self, batch: list[Admission]) -> None:
        """The pipeline's second step: the new entries of admitted batches indexed in one
        transaction and their reactions carried out, then every receipt."""
        fresh = [a for a in batch if not a.duplicate]
        if fresh:
            self._index_admitted(fresh)
            for admitted in fresh:
                if admitted.opened is not None:
                    assert admitted.index is not None
                    try:
                        self.customers.openings.add(admitted.index, admitted.opened)
                    except Exception as exc:  # this caller's entitlement only
                        admitted.error = exc
            self._background.wake_witnesses()
        # The proofs of one checkpoint's receipts together: they share most of their hashes.
        by_size: dict[int, list[tuple[int, Admission]]] = {}
        for admitted in batch:
            if admitted.error is None:
                assert admitted.index is not None
                by_size.setdefault(admitted.size, []).append((admitted.index, admitted))
        for size, group in by_size.items():
            try:
                proofs = self.log.inclusion_proofs([index for index, _ in group], size)
            except Exception as exc:
                for _, admitted in group:
                    admitted.error = exc
                continue
            for (index, admitted), proof in zip(group, proofs, strict=True):
                admitted.receipt = self._receipt_of(
                    admitted.checkpoint,
                    size,
                    index,
                    proof,
                    admitted.parsed.sha256,
                    admitted.parsed.kind,
                    admitted.duplicate,
                )

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
            self._index_and_react([(index, entry, None)])
        self._background.wake_witnesses()
        return index

    def _index_admitted(self, batch: list[Admission]) -> None:
        """The indexing batcher's step: the entries of concurrent submissions, indexed in
        one transaction, then their reactions."""
        with self._apply_lock:
            self._index_and_react(
                [(a.index, a.entry, a.parsed) for a in batch if a.index is not None]
            )

    def _index_and_react(self, entries: Sequence[tuple[int, bytes, ParsedEntry | None]]) -> None:
        """Index appended entries and carry out the reactions, in log order (the caller
        holds the apply lock).  New releases awaiting artifacts are looked at together."""
        reactions = [
            r for r in self.indexer.index_many(entries, appended_here=True) if r is not None
        ]
        waiting: list[ReleaseRow] = []
        for reaction in reactions:
            if reaction.action == "enqueue":
                row = reaction.row or self.store.release(reaction.release)
                waiting += [row] if row is not None else []
                continue
            self.inspections.maybe_enqueue(waiting)
            waiting = []
            self._react(reaction)
        self.inspections.maybe_enqueue(waiting)

    def _react(self, reaction: Reaction) -> None:
        if reaction.action == "evaluate":
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
        return self._receipt_of(checkpoint, size, index, proof, sha256, kind, duplicate)

    @staticmethod
    def _receipt_of(
        checkpoint: bytes,
        size: int,
        index: int,
        proof: Sequence[bytes],
        sha256: str,
        kind: str,
        duplicate: bool,
    ) -> dict[str, Any]:
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
        return self._append_and_index(self._transitions.entry(transition))

    # -- health reports in bulk (see :mod:`clearance.gateway.health_batch`) ------------

    def submit_health_bulk(self, body: bytes, role: str | None) -> dict[str, Any]:
        return self.health.submit_health_bulk(body, role)

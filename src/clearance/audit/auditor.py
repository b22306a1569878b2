"""The audit run: replay the public log, check it, and report every discrepancy.

Order of one run:

1. fetch and verify the log's checkpoint (log key and origin from the trust root), count
   valid witness cosignatures against the trust root's witness threshold;
2. prove it consistent with the checkpoint recorded on the previous run (else: stop,
   ``audit.log-inconsistent``), and with the checkpoints witnesses hold (``audit.split-view``)
   (steps 1 and 2: :mod:`clearance.audit._checkpoint_checks`);
3. read every entry not yet audited from the tiles (each checked against its leaf hash),
   in batches committed to the state with their results: an interrupted run resumes;
4. per entry: signatures against the trust root, releases indexed, verdicts checked
   against their release, re-inspection compared, monitor rules (override, policy change,
   halted rollout);
5. releases without a verdict past the deadline; then the report of every finding not
   yet reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearance.attest import Release, TrustRoot, Verdict
from clearance.audit._checkpoint_checks import CheckpointChecks
from clearance.audit._checkpoint_checks import cosigning_witnesses as cosigning_witnesses
from clearance.audit._index import IndexAudit
from clearance.audit._reinspection_check import ReinspectionCheck
from clearance.audit._report_check import report_tree_findings
from clearance.audit.entries import (
    KIND_CHANNEL_RESET,
    KIND_HEALTH,
    KIND_POLICY,
    KIND_RELEASE,
    KIND_REPORT,
    KIND_REVOCATION,
    KIND_ROLLOUT,
    KIND_VERDICT,
    EntryView,
    examine_entry,
)
from clearance.audit.errors import AuditInputError, LogServerUnreachable, LogUnavailable
from clearance.audit.reinspect import Reinspector
from clearance.audit.rollout_check import on_health, on_transition
from clearance.audit.rules import AuditFinding
from clearance.audit.sources import ArtifactSource
from clearance.audit.state import AuditState, SeenCheckpoint, VerdictRecord
from clearance.audit.tuf_check import TargetsReader, tuf_findings
from clearance.errors import ClearanceError, Unreachable
from clearance.inspection.base import NullProgress, ProgressSink
from clearance.log.checkpoint import Checkpoint
from clearance.log.tiles import TiledLogClient, TileSource

DEFAULT_DEADLINE = 72 * 3600.0
DEFAULT_BATCH = 256


#: Called with every entry the auditor examined, in log order, and the trust root it was
#: judged against (a monitor adds its own rules here).  Called before the entry's batch is
#: committed, so an observer that persists as it goes never falls behind the audit state;
#: after an interruption it may see the same entry again.
EntryObserver = Callable[[EntryView, TrustRoot], None]


@dataclass(frozen=True)
class AuditOptions:
    trust_root: TrustRoot
    source: TileSource
    state_dir: Path
    artifacts: Sequence[ArtifactSource] = ()
    reinspector: Reinspector | None = None
    #: Witness base URLs whose ``GET /checkpoint?origin=`` is compared with the log's view.
    witness_urls: Sequence[str] = ()
    deadline_seconds: float = DEFAULT_DEADLINE
    batch: int = DEFAULT_BATCH
    #: Stop after this many entries in this run (the next run resumes); None: all.
    max_entries: int | None = None
    clock: Callable[[], float] = time.time
    #: The gateway's TUF targets (``tuf_check.tuf_targets_reader``), compared with the log.
    tuf_targets: TargetsReader | None = None
    progress: ProgressSink = field(default_factory=NullProgress)
    observer: EntryObserver | None = None
    #: Called after a batch of entries was examined, before the audit state commits it
    #: (an observer that batches its own writes commits them here, so it is never behind).
    before_commit: Callable[[], None] | None = None


@dataclass(frozen=True)
class AuditReport:
    """The outcome of one run: the findings new since the last complete run, and totals."""

    origin: str
    checkpoint_size: int
    audited_from: int
    audited_to: int
    findings: tuple[AuditFinding, ...]
    counts: dict[str, int]
    cosignatures: int
    seconds: float
    complete: bool
    #: The signed checkpoint note this run verified (with its cosignatures).
    note: bytes = b""

    @property
    def discrepancies(self) -> tuple[AuditFinding, ...]:
        return tuple(f for f in self.findings if f.is_discrepancy)

    @property
    def clean(self) -> bool:
        return not self.discrepancies

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "checkpoint_size": self.checkpoint_size,
            "audited_from": self.audited_from,
            "audited_to": self.audited_to,
            "complete": self.complete,
            "cosignatures": self.cosignatures,
            "seconds": round(self.seconds, 3),
            "counts": self.counts,
            "clean": self.clean,
            "findings": [f.to_dict() for f in self.findings],
        }


def log_identity(root: TrustRoot) -> str:
    return f"{root.log_origin}\n{root.log_key.to_string()}"


class Auditor:
    """One audit run over one log (see the module docstring for the order)."""

    def __init__(self, options: AuditOptions) -> None:
        if options.batch < 1:
            raise AuditInputError("batch size must be at least 1")
        self._opt = options
        self._root = options.trust_root
        self._client = TiledLogClient(
            options.source, options.trust_root.log_key, options.trust_root.log_origin
        )
        self._pending: list[AuditFinding] = []
        self._state: AuditState | None = None
        self._checkpoint: Checkpoint | None = None  # the one this run audits up to
        self._index = IndexAudit(options.trust_root, self._report)
        self._reinspection = ReinspectionCheck(options.reinspector, options.artifacts, self._report)
        self._checkpoints = CheckpointChecks(self._client, options.witness_urls, self._report)

    # -- the run --------------------------------------------------------------------------
    def run(self) -> AuditReport:
        started = time.perf_counter()
        opt = self._opt
        try:
            checkpoint, note = self._client.checkpoint()
        except Unreachable as exc:
            raise LogServerUnreachable(f"log checkpoint: {exc}") from None
        except ClearanceError as exc:
            raise LogUnavailable(f"log checkpoint: {exc}") from None
        with AuditState.open(opt.state_dir, log_identity(opt.trust_root)) as state:
            self._state = state
            stored_root = state.trust_root_bytes()
            if stored_root is not None:
                rotated = TrustRoot.from_bytes(stored_root)
                if rotated.version > self._root.version:
                    self._root = rotated
            cosigned = self._checkpoints.cosigned(self._root, checkpoint, note)
            start = state.audited
            with state.batch():
                state.next_run()
                last = state.last_checkpoint()
                consistent = self._checkpoints.extends_last(self._root, last, checkpoint, note)
                if consistent:
                    self._checkpoints.witness_views(self._root, checkpoint)
                    self._checkpoints.witnessed(self._root, checkpoint, cosigned)
                    state.set_checkpoint(
                        SeenCheckpoint(checkpoint.size, checkpoint.root_hash, note.to_bytes())
                    )
                self._flush(state)
            end = start
            self._checkpoint = checkpoint
            if consistent:
                end = self._audit_entries(state, start, checkpoint.size)
                self._index.check_root(checkpoint)
                with state.batch():
                    self._overdue(state)
                    if opt.tuf_targets is not None and end >= checkpoint.size:
                        targets = opt.tuf_targets()
                        for finding in tuf_findings(targets, state, state.is_revoked):
                            self._report(finding)
                    self._flush(state)
            complete = consistent and end >= checkpoint.size
            with state.batch():
                findings = sorted(state.findings(unreported_only=True), key=AuditFinding.sort_key)
                if complete or not consistent:
                    state.mark_reported()
                counts = state.counts()
        counts["entries"] = end
        return AuditReport(
            origin=self._root.log_origin,
            checkpoint_size=checkpoint.size,
            audited_from=start,
            audited_to=end,
            findings=tuple(findings),
            counts=counts,
            cosignatures=cosigned,
            seconds=time.perf_counter() - started,
            complete=complete,
            note=note.to_bytes(),
        )

    def _report(self, finding: AuditFinding) -> None:
        self._pending.append(finding)

    def _flush(self, state: AuditState) -> None:
        run = state.current_run
        for finding in self._pending:
            state.add_finding(run, finding)
        self._pending.clear()

    # -- entries ----------------------------------------------------------------------------
    def _audit_entries(self, state: AuditState, start: int, size: int) -> int:
        opt = self._opt
        stop = size if opt.max_entries is None else min(size, start + opt.max_entries)
        opt.progress.start(f"auditing entries {start}..{stop}", stop - start)
        ranges: list[tuple[int, int]] = []
        position = start
        while position < stop:
            end = min(stop, (position // opt.batch + 1) * opt.batch)
            ranges.append((position, end))
            position = end
        if not ranges:
            return start
        if start and self._index.size == 0:
            # A resumed audit: the index is recomputed from the entries audited before.
            self._index.catch_up(self._fetch((0, start), size))
        # The next batch is fetched and hash-checked in a helper thread while this one is
        # audited, so network waits overlap with signature checks.  Meanwhile only that
        # thread uses the tile client.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-fetch") as pool:
            pending = pool.submit(self._fetch, ranges[0], size)
            for n, (first, end) in enumerate(ranges):
                entries = pending.result()
                if n + 1 < len(ranges):
                    pending = pool.submit(self._fetch, ranges[n + 1], size)
                with state.batch():
                    for offset, data in enumerate(entries):
                        self._audit_entry(state, first + offset, data)
                    if opt.before_commit is not None:
                        opt.before_commit()
                    state.set_audited(end)
                    self._flush(state)
                opt.progress.advance(end - first)
        return ranges[-1][1]

    def _fetch(self, span: tuple[int, int], size: int) -> list[bytes]:
        try:
            return list(self._client.entries(span[0], span[1], size))
        except ClearanceError as exc:
            raise LogUnavailable(f"entries {span[0]}..{span[1]}: {exc}") from None

    def _audit_entry(self, state: AuditState, index: int, data: bytes) -> None:
        self._index.add(index, data)
        view = examine_entry(index, data, self._root)
        for finding in view.findings:
            self._report(finding)
        if self._opt.observer is not None:
            self._opt.observer(view, self._root)
        if view.new_trust_root is not None:
            self._root = view.new_trust_root
            state.set_trust_root_bytes(view.new_trust_root.to_bytes())
        if view.kind == KIND_RELEASE and view.release is not None:
            self._on_release(state, view, view.release, data)
        elif view.kind == KIND_VERDICT and view.verdict is not None:
            self._on_verdict(state, view, view.verdict)
        elif view.kind == KIND_POLICY:
            if state.add_policy(index, view.sha256) > 0:
                self._report(
                    AuditFinding(
                        "audit.policy-changed",
                        f"entry {index}: a new distribution policy replaces an earlier one",
                        index,
                        {"sha256": view.sha256},
                    )
                )
        elif view.kind == KIND_HEALTH and view.envelope is not None and view.signature_ok:
            keyids = sorted({sig.keyid for sig in view.envelope.signatures})
            if len(keyids) == 1:  # one device, one vote
                on_health(state, index, view.record, keyids[0])
        if view.kind == KIND_ROLLOUT and view.envelope is not None and view.signature_ok:
            for finding in on_transition(state, index, view.record):
                self._report(finding)
        if view.kind == KIND_REPORT and view.report is not None and view.signature_ok:
            assert self._checkpoint is not None
            for finding in report_tree_findings(
                index, view.report, self._checkpoint, self._client.consistency_proof
            ):
                self._report(finding)
        if view.kind in (KIND_REVOCATION, KIND_CHANNEL_RESET) and view.signature_ok:
            self._on_recovery(state, view)
        if view.kind == KIND_ROLLOUT and view.record.get("event") == "halted":
            self._report(
                AuditFinding(
                    "audit.rollout-halted",
                    f"entry {index}: rollout of {view.record.get('release', '?')} halted in "
                    f"ring {view.record.get('ring', '?')}: {view.record.get('reason', '')}",
                    index,
                    {k: view.record.get(k) for k in ("release", "ring", "reason", "at")},
                )
            )

    def _on_recovery(self, state: AuditState, view: EntryView) -> None:
        """Remember what the policy authority revoked (TUF must not publish it)."""
        from clearance.attest.recovery import ChannelReset, Revocation

        assert view.envelope is not None
        try:
            if view.kind == KIND_REVOCATION:
                revocation = Revocation.from_envelope(view.envelope)
                if revocation.release_sha256 is not None:
                    state.revoke(revocation.release_sha256, view.index)
            else:
                reset = ChannelReset.from_envelope(view.envelope)
                state.revoke_channel(reset.product, reset.channel, reset.parsed_floor, view.index)
        except ClearanceError:
            return  # malformed: reported by the entry check

    def _on_release(
        self, state: AuditState, view: EntryView, release: Release, data: bytes
    ) -> None:
        digests = {view.sha256}
        if view.envelope_sha256 is not None:
            digests.add(view.envelope_sha256)
        for digest in digests:
            state.add_release(
                digest,
                view.index,
                release.product,
                release.version,
                release.channel,
                data,
                self._opt.clock(),
            )

    def _on_verdict(self, state: AuditState, view: EntryView, verdict: Verdict) -> None:
        index = view.index
        logged = state.release(verdict.release_sha256)
        if logged is None:
            if verdict.approved:
                self._report(
                    AuditFinding(
                        "audit.verdict-without-release",
                        f"entry {index}: approved verdict for release {verdict.release_sha256[:16]}… "
                        f"({verdict.product} {verdict.version}) that no earlier entry holds",
                        index,
                        {"release_sha256": verdict.release_sha256},
                    )
                )
        else:
            rel_index, product, version, channel, _ = logged
            if (product, version, channel) != (verdict.product, verdict.version, verdict.channel):
                self._report(
                    AuditFinding(
                        "audit.verdict-mismatch",
                        f"entry {index}: verdict says {verdict.product} {verdict.version} "
                        f"({verdict.channel}) but entry {rel_index} is {product} {version} "
                        f"({channel})",
                        index,
                        {"release_index": rel_index},
                    )
                )
        automated = bool(verdict.engines)
        earlier = [v for v in state.verdicts_for(verdict.release_sha256) if v.entry_index < index]
        changed = [v for v in earlier if v.decision != verdict.decision]
        if changed:
            by = "a human inspector" if not automated else "another inspection"
            self._report(
                AuditFinding(
                    "audit.verdict-overridden",
                    f"entry {index}: {by} ({verdict.inspector}) decided {verdict.decision!r} "
                    f"where entry {changed[-1].entry_index} ({changed[-1].inspector}"
                    f"{', automated' if changed[-1].automated else ''}) decided "
                    f"{changed[-1].decision!r}",
                    index,
                    {
                        "release_sha256": verdict.release_sha256,
                        "earlier": [
                            {
                                "index": v.entry_index,
                                "decision": v.decision,
                                "automated": v.automated,
                            }
                            for v in changed
                        ],
                        "decision": verdict.decision,
                        "automated": automated,
                    },
                )
            )
        state.add_verdict(
            VerdictRecord(
                index, verdict.release_sha256, verdict.decision, verdict.inspector, automated
            )
        )
        if automated and logged is not None and view.signature_ok:
            self._reinspection.compare(state, index, verdict, logged[4])

    # -- deadlines --------------------------------------------------------------------------
    def _overdue(self, state: AuditState) -> None:
        limit = self._opt.clock() - self._opt.deadline_seconds
        for sha256, index, product, version in state.overdue_releases(limit):
            self._report(
                AuditFinding(
                    "audit.release-without-verdict",
                    f"entry {index}: release {product} {version} has no verdict "
                    f"{self._opt.deadline_seconds / 3600:g} h after it was first seen",
                    index,
                    {"release_sha256": sha256},
                )
            )
            state.mark_overdue_reported(sha256)


def audit_log(options: AuditOptions) -> AuditReport:
    """Run one audit (see :class:`Auditor`)."""
    return Auditor(options).run()

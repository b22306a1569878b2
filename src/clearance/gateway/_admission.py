"""Batched admission: concurrent submissions are checked and logged together.

The submission pipeline (:mod:`clearance.gateway._pipeline`) hands every
submission queued so far to :class:`BatchAdmitter`, the batch step: one read
of the log's size for the revocations and version bars, one lookup of every
digest among the logged ones, the admission checks of each, one group commit
to the log, one checkpoint read for every receipt.  The pipeline's other
thread then indexes the batch's entries (one transaction of index rows for
all of them) and builds the receipts, while the next batch is already being
checked and committed.

Every caller still gets only its own outcome: a refused submission fails
alone, and an acknowledgement is given only after the batch's commit is
durable.  Submissions that depend on one another (two releases of one
channel, whose version order matters, or the same envelope twice) are never
in one round: the later one waits for the next round of the same batch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clearance.attest import Envelope, Release
from clearance.gateway._entries import KIND_ENTITLEMENT, KIND_RELEASE, ParsedEntry

if TYPE_CHECKING:
    from clearance.gateway._log import GatewayLog
    from clearance.gateway.store import MetadataStore
    from clearance.gateway.submission_checks import SubmissionChecks


@dataclass(eq=False)
class Admission:
    """One submission on its way through a batch (mutable: the batch fills in the outcome)."""

    parsed: ParsedEntry
    envelope: Envelope
    #: The bytes that are logged (the envelope's RFC 8785 form).
    entry: bytes
    opening: Mapping[str, Any] | None = None
    #: What the batch step decided: the log index (new or of the earlier copy), or the
    #: error the caller gets.
    index: int | None = None
    error: BaseException | None = None
    #: Logged before (the same envelope again gets its receipt, nothing is appended).
    duplicate: bool = False
    #: The checkpoint read after the batch's commit, and its tree size (covers ``index``).
    checkpoint: bytes = b""
    size: int = 0
    #: The opening of a committed entitlement, once checked (kept after the append).
    opened: Any = None
    #: What the caller is answered once the entry is indexed (the receipt).
    receipt: dict[str, Any] | None = None


#: How many recently appended digests the admission batches remember.
RECENTLY_LOGGED = 4096


class BatchAdmitter:
    """The admission step of the submission pipeline: every admission check of a batch
    of submissions, then one group commit of those admitted.

    The pipeline indexes the entries after the commit (under the gateway's apply lock);
    until then, an envelope resent in a later batch is found in ``_recently_logged``.
    """

    def __init__(self, log: GatewayLog, store: MetadataStore, checks: SubmissionChecks) -> None:
        self._log = log
        self._store = store
        self._checks = checks
        #: Digest -> index of entries the batches appended lately (used by the batch
        #: leader only): a resent envelope is found before its first copy is indexed.
        self._recently_logged: OrderedDict[str, int] = OrderedDict()

    def __call__(self, batch: list[Admission]) -> None:
        """The admission checks, one group commit and the indexing of concurrent submissions.

        In rounds: a submission that depends on one earlier in the same round (a second
        release of one channel, whose version must exceed the first's, or the same
        envelope twice) waits for the next round, which sees the first one logged."""
        pending = batch
        while pending:
            self._log.sync_index()  # revoked keys and version bars as the whole log has them
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
            self._round(round_)
            pending = later

    @staticmethod
    def _admission_key(item: Admission) -> tuple[str, str] | None:
        """The channel whose version order a release takes part in (None for other kinds)."""
        statement = item.parsed.statement
        if item.parsed.kind != KIND_RELEASE or statement is None:
            return None
        predicate = statement.predicate
        return str(predicate.get("product")), str(predicate.get("channel"))

    def _round(self, items: list[Admission]) -> None:
        to_log: list[Admission] = []
        indexed = self._store.entries_by_sha([item.parsed.sha256 for item in items])
        for item in items:
            try:
                logged = self._check_admission(item, indexed.get(item.parsed.sha256))
            except Exception as exc:  # this caller's refusal only
                item.error = exc
                continue
            if logged is None:
                to_log.append(item)
            else:
                item.index, item.duplicate = logged, True
        if to_log:
            if self._log.index is not None:
                # Parsed here already: the verifiable index, on the commit path, need not.
                for item in to_log:
                    if item.parsed.statement is not None:
                        self._log.index.prepare(item.entry, item.envelope, item.parsed.statement)
            results = self._log.append_results([item.entry for item in to_log])
            for item, result in zip(to_log, results, strict=True):
                item.index = result.index
                self._recently_logged[item.parsed.sha256] = result.index
            while len(self._recently_logged) > RECENTLY_LOGGED:
                self._recently_logged.popitem(last=False)
            # The checkpoint the commit signed covers every index of the round (earlier
            # copies included): no read of the head, which is on every batch's path.
            checkpoint, size = results[-1].checkpoint, results[-1].tree_size
        elif any(item.index is not None for item in items):
            checkpoint = self._log.checkpoint_bytes()
            size = self._log.checkpoint_size(checkpoint)
        else:
            return
        for item in items:
            item.checkpoint, item.size = checkpoint, size

    def _check_admission(self, item: Admission, indexed: int | None) -> int | None:
        """Every admission check of one submission; the log index of its earlier copy when
        it is logged already (idempotent: the same envelope again gets its receipt).
        ``indexed``: where the index has this envelope, looked up for the whole round."""
        parsed = item.parsed
        signers = self._checks.check_signature(parsed)
        # Logged by an earlier batch whose callers may not have indexed it yet, or indexed.
        recent = self._recently_logged.get(parsed.sha256)
        if recent is not None:
            return recent
        if indexed is not None:
            return indexed
        self._checks.check_semantics(parsed, signers, item.opening)
        if parsed.kind == KIND_ENTITLEMENT:
            _, item.opened = self._checks.entitlement_of(parsed, item.opening)
        elif parsed.kind == KIND_RELEASE:
            # The version rule (higher than every logged release of the product and
            # channel): one release per channel in a round, checked against the synced index.
            assert parsed.statement is not None
            release = Release.from_statement(parsed.statement)
            logged = self._log.index.release_log_index(parsed.sha256) if self._log.index else None
            if logged is not None:  # logged already (e.g. by a replica that then died)
                return logged
            self._checks.check_version(release)
        return None

"""Batched admission: concurrent submissions are checked, logged and indexed together.

Each request thread parses its envelope and checks its token on its own,
then hands the submission to :class:`AdmissionQueue`.  The first waiting
thread becomes the leader: it takes every submission queued so far and runs
the gateway's batch step on them (one read of the log's size for the
revocations and version bars, the admission checks of each, one group
commit to the log, one checkpoint read for every receipt), then hands
leadership to the next waiting thread.  Each caller then indexes its own
entry and builds its receipt, while the next batch is already being
checked and committed.  While a leader works, new submissions queue up and
form the next batch, so under load a batch grows to whatever arrived
during one commit.

Every caller still gets only its own outcome: a refused submission fails
alone, and an acknowledgement is given only after the batch's commit is
durable.  Submissions that depend on one another (two releases of one
channel, whose version order matters, or the same envelope twice) are never
in one round: the later one waits for the next round of the same leader.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from clearance.attest import Envelope, Release, canonical_json
from clearance.gateway._entries import KIND_ENTITLEMENT, KIND_RELEASE, ParsedEntry

if TYPE_CHECKING:
    from clearance.gateway._log import GatewayLog
    from clearance.gateway.store import MetadataStore
    from clearance.gateway.submission_checks import SubmissionChecks


def _plain(text: str) -> bool:
    """Printable ASCII without the two characters JSON escapes (``"`` and ``\\``)."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def canonical_envelope(envelope: Envelope) -> bytes:
    """The RFC 8785 bytes of an envelope (what is stored, hashed and aggregated), fast.

    An envelope is three strings and a list of two-string objects; when every
    string is plain ASCII (base64 always is; the payload type and key ids
    normally are), sorted keys and no whitespace *are* the RFC 8785 form, and
    the standard library's encoder writes them at a fraction of the cost of
    the general canonicaliser, which remains the path for anything else.
    """
    data = envelope.to_dict()
    strings = [data["payloadType"], *(v for s in data["signatures"] for v in s.values())]
    if all(_plain(v) for v in strings):
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return canonical_json(data)


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
    _done: threading.Event = field(default_factory=threading.Event)
    _lead: bool = False


class AdmissionQueue:
    """Runs ``step(batch)`` over batches of concurrently submitted admissions.

    ``step`` must set ``index`` (and the checkpoint) or ``error`` on every admission it
    is given; one it leaves without either is failed with a clear error.
    """

    def __init__(self, step: Callable[[list[Admission]], None]) -> None:
        self._step = step
        self._lock = threading.Lock()
        self._queue: list[Admission] = []
        self._leader_busy = False

    def admit(self, item: Admission) -> Admission:
        with self._lock:
            self._queue.append(item)
            lead = not self._leader_busy
            if lead:
                self._leader_busy = True
        if not lead:
            item._done.wait()
            if not item._lead:
                return self._outcome(item)
        self._lead_one_batch()
        return self._outcome(item)

    @staticmethod
    def _outcome(item: Admission) -> Admission:
        if item.error is not None:
            raise item.error
        if item.index is None:
            raise RuntimeError("the admission batch ended without an outcome")
        return item

    def _lead_one_batch(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            self._step(batch)
        except BaseException as exc:  # every caller of a failed batch learns why
            for item in batch:
                if item.index is None and item.error is None:
                    item.error = exc
        for item in batch:
            item._done.set()
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor._lead = True
                successor._done.set()
            else:
                self._leader_busy = False


#: How many recently appended digests the admission batches remember.
RECENTLY_LOGGED = 4096


class BatchAdmitter:
    """The step an :class:`AdmissionQueue` runs: every admission check of a batch of
    submissions, then one group commit of those admitted.

    The callers index their own entries after the commit (the gateway's apply lock);
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
            indices = self._log.append([item.entry for item in to_log])
            for item, index in zip(to_log, indices, strict=True):
                item.index = index
                self._recently_logged[item.parsed.sha256] = index
            while len(self._recently_logged) > RECENTLY_LOGGED:
                self._recently_logged.popitem(last=False)
        if any(item.index is not None for item in items):
            checkpoint = self._log.checkpoint_bytes()
            size = self._log.checkpoint_size(checkpoint)
            for item in items:
                item.checkpoint, item.size = checkpoint, size

    def _check_admission(self, item: Admission) -> int | None:
        """Every admission check of one submission; the log index of its earlier copy when
        it is logged already (idempotent: the same envelope again gets its receipt)."""
        parsed = item.parsed
        signers = self._checks.check_signature(parsed)
        # Logged by an earlier batch whose callers may not have indexed it yet, or indexed.
        recent = self._recently_logged.get(parsed.sha256)
        if recent is not None:
            return recent
        existing = self._store.entry_by_sha(parsed.sha256)
        if existing is not None:
            return existing[0]
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

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clearance.attest import Envelope, canonical_json
from clearance.gateway._entries import ParsedEntry


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

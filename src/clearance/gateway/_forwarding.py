"""Replicas forward signed submissions to one sequencer instead of taking turns.

Over one PostgreSQL database every replica can integrate: it takes the log's
integrator lease for one transaction per batch (``clearance.log._postgres``).
When several replicas are busy they take turns, and each must then read the
others' entries back, parse them, check their signatures and apply them to its
own verifiable index before its next commit: every entry is worked on by every
replica, so a second replica lowered the rate instead of adding to it.

So a replica that is not the leader (the holder of the background-leader lease,
which advertises its address in the database) hands the submissions it receives
to the leader's ``POST /internal/v1/forwarded`` in batches, and relays each answer.
Nothing is trusted on the way:

* each forwarded submission carries its caller's own API token, and the leader
  judges the role from that token as if the caller had come to it: forwarding
  gives a caller, or anyone who can reach the endpoint, no more than a direct
  submission would;
* a receipt is relayed only once this replica has checked it: the log's
  signature on its checkpoint and the inclusion proof of the entry this replica
  itself encoded from the caller's envelope.  A forged or mismatched receipt is
  never handed out; the submission is then admitted here;
* when the leader cannot be reached, answers late, is shutting down or fails,
  the submission is admitted here as before (the log's lease and fencing keep one
  history; a submission the leader did log is found and answered as a duplicate).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

from clearance.attest import HEALTH_V1, Envelope, statement_of
from clearance.errors import ClearanceError
from clearance.keys import Verifier
from clearance.log.checkpoint import open_checkpoint
from clearance.log.merkle import leaf_hash, verify_inclusion

#: Where the leader takes forwarded submissions.
FORWARD_PATH = "/internal/v1/forwarded"
#: At most this many submissions in one forwarded request, and this many bytes of
#: envelopes and tokens.
MAX_FORWARDED = 1024
MAX_FORWARDED_BYTES = 4 << 20
#: The most a forwarded request's body can take: written with ``ensure_ascii`` off, a
#: character of an envelope or token at most doubles (``"`` and ``\\``, and the newlines
#: a JSON envelope may hold between its values, are escaped with one more byte each),
#: plus the JSON around each submission.  Only an envelope with raw control characters,
#: which is no JSON and refused anyway, can grow more: then the leader refuses the
#: batch and its submissions are admitted by the follower.
MAX_FORWARDED_BODY_BYTES = 2 * MAX_FORWARDED_BYTES + 64 * MAX_FORWARDED
#: How long a forwarded batch may take before its submissions are admitted here.
FORWARD_TIMEOUT_SECONDS = 10.0
#: Forwarded requests in flight at once: one is answered while the next is admitted.
IN_FLIGHT = 2


class ForwardingError(ClearanceError):
    """The sequencer did not give a checked answer: admit the submission here."""


Pending = tuple[bytes, str | None, "asyncio.Future[tuple[int, dict[str, Any]]]"]


class ReceiptCheck:
    """Checks a receipt the sequencer gave for an envelope before it is relayed."""

    def __init__(self, log_verifier: Verifier, origin: str) -> None:
        self._verifier = log_verifier
        self._origin = origin
        self._trusted: tuple[str, bytes] | None = None  # the last checkpoint checked

    def _root_of(self, note: str, size: int) -> bytes:
        kept = self._trusted
        if kept is not None and kept[0] == note:
            return kept[1]
        checkpoint, _ = open_checkpoint(note.encode(), self._verifier, self._origin)
        if checkpoint.size != size:
            raise ForwardingError(
                f"receipt: tree size {size}, its checkpoint is of size {checkpoint.size}"
            )
        self._trusted = (note, checkpoint.root_hash)
        return checkpoint.root_hash

    def __call__(self, envelope: bytes, receipt: dict[str, Any]) -> None:
        """Raise :class:`ForwardingError` unless ``receipt``, an answer of success, proves
        ``envelope`` logged (a single health report's answer, the rollout's state, carries
        no proof: it is relayed only for a health report)."""
        try:
            parsed = Envelope.from_bytes(envelope)
            entry = parsed.to_bytes()
            if "inclusion_proof" not in receipt:
                if statement_of(parsed).predicate_type != HEALTH_V1:
                    raise ForwardingError("a success without a receipt, for no health report")
                return
            index, size = int(receipt["log_index"]), int(receipt["tree_size"])
            proof = [bytes.fromhex(h) for h in receipt["inclusion_proof"]]
            root = self._root_of(str(receipt["checkpoint"]), size)
            verify_inclusion(index, size, leaf_hash(entry), proof, root)
        except (ClearanceError, KeyError, TypeError, ValueError) as exc:
            raise ForwardingError(f"the sequencer's receipt does not check: {exc}") from None


class Forwarder:
    """Batches the submissions this replica receives to the sequencer at ``url``.

    Runs on the HTTP front's event loop: a batch is sent while the next one queues, and
    each caller awaits its own answer (or :class:`ForwardingError`)."""

    def __init__(
        self,
        check: Callable[[bytes, dict[str, Any]], None],
        timeout: float = FORWARD_TIMEOUT_SECONDS,
    ) -> None:
        self._check = check
        self._timeout = timeout
        self._queued: dict[str, list[Pending]] = {}
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    async def forward(self, url: str, envelope: bytes, token: str | None) -> tuple[int, dict[str, Any]]:
        """The sequencer's (status, answer) for one submission, its receipt checked."""
        try:
            envelope.decode("utf-8")
        except UnicodeDecodeError:
            raise ForwardingError("the envelope is not UTF-8 text") from None
        future: asyncio.Future[tuple[int, dict[str, Any]]] = (
            asyncio.get_running_loop().create_future()
        )
        self._queued.setdefault(url, []).append((envelope, token, future))
        if self._in_flight < IN_FLIGHT:
            self._in_flight += 1
            # Kept until done: the loop holds only a weak reference to a task.
            task = asyncio.get_running_loop().create_task(self._send_queued())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    def _next_batch(self) -> tuple[str, list[Pending]] | None:
        for url, queued in self._queued.items():
            batch: list[Pending] = []
            size = 0
            while queued and len(batch) < MAX_FORWARDED:
                weight = _weight(queued[0])
                if batch and size + weight > MAX_FORWARDED_BYTES:
                    break
                batch.append(queued.pop(0))
                size += weight
            if not queued:
                del self._queued[url]
            return url, batch
        return None

    async def _send_queued(self) -> None:
        try:
            while (taken := self._next_batch()) is not None:
                await self._send(*taken)
        finally:
            self._in_flight -= 1

    async def _send(self, url: str, batch: list[Pending]) -> None:
        try:
            if self._client is None:
                self._client = httpx.AsyncClient(timeout=self._timeout)
            response = await self._client.post(
                url.rstrip("/") + FORWARD_PATH,
                content=forwarded_body([(envelope, token) for envelope, token, _ in batch]),
                headers={"content-type": "application/json"},
            )
            if response.status_code != 200:
                raise ForwardingError(f"the sequencer answered {response.status_code}")
            results = response.json()["results"]
            if not isinstance(results, list) or len(results) != len(batch):
                raise ForwardingError("the sequencer's answer does not match the batch")
        except (httpx.HTTPError, ValueError, KeyError, TypeError, ForwardingError) as exc:
            failed = exc if isinstance(exc, ForwardingError) else ForwardingError(
                f"forwarding to {url} failed: {type(exc).__name__}: {exc}"
            )
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(failed)
            return
        for (envelope, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue  # the caller is gone
            try:
                future.set_result(self._relayable(envelope, result))
            except ForwardingError as exc:
                future.set_exception(exc)

    def _relayable(self, envelope: bytes, result: object) -> tuple[int, dict[str, Any]]:
        """One result of the batch, if it may be relayed as it is."""
        if not isinstance(result, dict):
            raise ForwardingError("the sequencer's result is not an object")
        status, answer = result.get("status"), result.get("answer")
        if not isinstance(status, int) or not isinstance(answer, dict):
            raise ForwardingError("the sequencer's result has no status and answer")
        if status >= 500:
            # Shutting down, or failing: this replica may still admit it.
            raise ForwardingError(f"the sequencer answered {status}: {answer.get('detail')}")
        if 200 <= status < 300:
            self._check(envelope, answer)
        return status, answer

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _weight(item: Pending) -> int:
    """What a queued submission counts towards :data:`MAX_FORWARDED_BYTES`: its token
    comes from the caller's header, so it counts as much as its envelope."""
    envelope, token, _ = item
    return len(envelope) + len((token or "").encode("utf-8"))


def forwarded_body(items: list[tuple[bytes, str | None]]) -> bytes:
    """The body of a forwarded request (see :data:`MAX_FORWARDED_BODY_BYTES`)."""
    body = {
        "submissions": [
            {"envelope": envelope.decode("utf-8"), "token": token} for envelope, token in items
        ]
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def forwarded_items(body: bytes) -> list[tuple[bytes, str | None]]:
    """The (envelope bytes, token) pairs of a forwarded request's body."""
    try:
        data = json.loads(body)
        items = data["submissions"]
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_FORWARDED:
            raise ValueError(f"'submissions' must be a list of 1 to {MAX_FORWARDED}")
        out = []
        for item in items:
            envelope, token = item["envelope"], item.get("token")
            if not isinstance(envelope, str) or not (token is None or isinstance(token, str)):
                raise ValueError("each submission needs an envelope string and a token or null")
            out.append((envelope.encode("utf-8"), token))
    except (UnicodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a batch of submissions ({exc})") from None
    return out

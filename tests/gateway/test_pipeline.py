"""The submission pipeline: two threads of its own, callers on event loops or threads.

The batch steps here are small stand-ins for the gateway's (the gateway's own run in
every live test); what is tested is the pipeline's promise: each caller gets its own
outcome exactly once, a failing batch fails its callers only, nothing queued is
dropped at shutdown, a caller that went away stops nothing.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from clearance.attest import Statement, Subject
from clearance.attest.statement import HEALTH_V1
from clearance.gateway._admission import Admission
from clearance.gateway._entries import parse_entry
from clearance.gateway._pipeline import SubmissionPipeline
from clearance.gateway.errors import GatewayRefused, GatewayUnavailableError
from clearance.keys import Signer

SIGNER = Signer.generate("vendor")


def _admission(n: int) -> Admission:
    body = {"release": "ab" * 32, "customer": "site-1", "status": "ok", "nonce": str(n)}
    envelope = Statement((Subject("release", "ab" * 32),), HEALTH_V1, body).sign([SIGNER])
    entry = envelope.to_bytes()
    return Admission(parse_entry(entry), envelope, entry)


class Steps:
    """Admits each submission at a log index of its own (refusing those named in
    ``refuse``, raising for a whole batch holding one of ``explode``); finishing gives
    each its index back as the receipt.  Records the batches it saw."""

    def __init__(self, refuse: set[int] = set(), explode: set[int] = set()) -> None:  # noqa: B006
        self.refuse, self.explode = refuse, explode
        self.admitted: list[int] = []
        self.finished: list[int] = []
        self.next_index = 0
        self.gate = threading.Event()
        self.gate.set()

    def admit(self, batch: list[Admission]) -> None:
        self.gate.wait()
        self.admitted.append(len(batch))
        numbers = [int(a.parsed.statement.predicate["nonce"]) for a in batch]  # type: ignore[union-attr]
        if self.explode & set(numbers):
            raise RuntimeError("the database went away")
        for admission, n in zip(batch, numbers, strict=True):
            if n in self.refuse:
                admission.error = GatewayRefused(f"submission {n} refused")
            else:
                admission.index = self.next_index
                self.next_index += 1

    def finish(self, batch: list[Admission]) -> None:
        self.finished.append(len(batch))
        for admission in batch:
            admission.receipt = {"log_index": admission.index}


def test_callers_on_threads_each_get_their_own_outcome_once() -> None:
    steps = Steps(refuse={3, 7})
    pipeline = SubmissionPipeline(steps.admit, steps.finish)
    steps.gate.clear()  # hold the first batch: the others queue up behind it

    def one(n: int) -> object:
        try:
            return pipeline.run(_admission(n))["log_index"]
        except GatewayRefused as exc:
            return str(exc)

    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(one, n) for n in range(40)]
        steps.gate.set()
        outcomes = [f.result(timeout=30) for f in futures]
    pipeline.close()
    assert outcomes[3] == "submission 3 refused" and outcomes[7] == "submission 7 refused"
    indices = [o for o in outcomes if isinstance(o, int)]
    assert sorted(indices) == list(range(38))  # every admitted caller its own entry
    assert sum(steps.admitted) == 40 and len(steps.admitted) < 40  # in batches
    assert sum(steps.finished) == 38  # the refused are not indexed


def test_a_batch_that_fails_fails_its_callers_only_and_the_next_is_served() -> None:
    steps = Steps(explode={5})
    pipeline = SubmissionPipeline(steps.admit, steps.finish)
    with pytest.raises(RuntimeError, match="database went away"):
        pipeline.run(_admission(5))
    assert pipeline.run(_admission(6)) == {"log_index": 0}
    pipeline.close()


def test_callers_on_an_event_loop_are_answered_without_threads_of_their_own() -> None:
    steps = Steps(refuse={11})
    pipeline = SubmissionPipeline(steps.admit, steps.finish)

    async def main() -> list[object]:
        async def one(n: int) -> object:
            try:
                return (await pipeline.run_async(_admission(n)))["log_index"]
            except GatewayRefused as exc:
                return str(exc)

        return await asyncio.gather(*(one(n) for n in range(200)))

    pipeline.run(_admission(1000))  # its own two threads are running
    before = threading.active_count()
    outcomes = asyncio.run(main())
    assert threading.active_count() == before  # no thread per request
    pipeline.close()
    assert outcomes[11] == "submission 11 refused"
    assert sorted(o for o in outcomes if isinstance(o, int)) == list(range(1, 200))


def test_a_caller_that_went_away_stops_nothing() -> None:
    """The HTTP client disconnects and its request is cancelled while its submission is
    in a batch: the submission is still logged, the other callers are still answered."""
    steps = Steps()
    pipeline = SubmissionPipeline(steps.admit, steps.finish)

    async def main() -> tuple[object, list[object]]:
        steps.gate.clear()
        gone = asyncio.ensure_future(pipeline.run_async(_admission(0)))
        staying = [asyncio.ensure_future(pipeline.run_async(_admission(n))) for n in (1, 2)]
        await asyncio.sleep(0.05)
        gone.cancel()
        steps.gate.set()
        answers = await asyncio.gather(*staying)
        return gone.cancelled(), [a["log_index"] for a in answers]

    cancelled, answers = asyncio.run(main())
    pipeline.close()
    assert cancelled and sorted(answers) == [1, 2] and steps.next_index == 3


def test_shutdown_finishes_what_is_queued_and_refuses_what_comes_after() -> None:
    steps = Steps()
    pipeline = SubmissionPipeline(steps.admit, steps.finish)
    steps.gate.clear()
    with ThreadPoolExecutor(10) as pool:
        futures = [pool.submit(pipeline.run, _admission(n)) for n in range(10)]
        threading.Event().wait(0.2)  # the callers have queued
        closing = threading.Thread(target=pipeline.close)
        closing.start()
        steps.gate.set()
        answers = sorted(f.result(timeout=30)["log_index"] for f in futures)
        closing.join(timeout=30)
    assert answers == list(range(10))  # nothing queued was dropped
    with pytest.raises(GatewayUnavailableError, match="shutting down"):
        pipeline.run(_admission(99))


def test_a_gateway_opened_for_reads_keeps_no_threads_idle() -> None:
    before = threading.active_count()
    steps = Steps()
    pipeline = SubmissionPipeline(steps.admit, steps.finish)
    assert threading.active_count() == before  # started at the first submission
    assert pipeline.run(_admission(1)) == {"log_index": 0}
    assert threading.active_count() == before + 2
    pipeline.close()
    assert threading.active_count() == before
    unused = SubmissionPipeline(steps.admit, steps.finish)
    unused.close()
    with pytest.raises(GatewayUnavailableError):
        unused.run(_admission(2))

"""Group commit: concurrent submitters share batches; a failed batch fails only its callers."""

from __future__ import annotations

import threading
import time

import pytest

from clearance.log._sequencer import Sequencer


class _Ledger:
    """A tiny append-only list whose commit is slow, so callers pile up behind it."""

    def __init__(self) -> None:
        self.items: list[bytes] = []
        self.batches: list[int] = []

    def commit(self, entries: list[bytes]) -> list[int]:
        if b"boom" in entries:
            raise OSError("disk on fire")
        time.sleep(0.002)
        start = len(self.items)
        self.items += entries
        self.batches.append(len(entries))
        return list(range(start, start + len(entries)))


def test_results_go_back_to_their_own_callers() -> None:
    ledger = _Ledger()
    sequencer: Sequencer[int] = Sequencer(ledger.commit)
    seen: dict[str, list[int]] = {}

    def worker(name: str) -> None:
        for i in range(20):
            mine = [f"{name}-{i}-{k}".encode() for k in range(3)]
            indices = sequencer.submit(mine)
            assert [ledger.items[j] for j in indices] == mine
            seen.setdefault(name, []).extend(indices)

    threads = [threading.Thread(target=worker, args=(f"t{n}",)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(i for v in seen.values() for i in v) == list(range(6 * 20 * 3))
    assert len(ledger.batches) < 6 * 20  # requests were merged


def test_a_failed_batch_fails_its_callers_and_the_next_batch_works() -> None:
    ledger = _Ledger()
    sequencer: Sequencer[int] = Sequencer(ledger.commit)
    with pytest.raises(OSError, match="disk on fire"):
        sequencer.submit([b"boom"])
    assert sequencer.submit([b"fine"]) == [0]
    assert sequencer.submit([]) == []

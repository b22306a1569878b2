"""freeze_long_lived: what a server keeps for life is left out of later full collections."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from clearance._heap import freeze_long_lived
from clearance.demo.world import build_world
from clearance.gateway import server as gateway_server
from clearance.index import LogIndex
from gateway.support import FAST_RINGS


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture
def thawed() -> Iterator[None]:
    """The test process's own heap is handed back to the collector afterwards."""
    try:
        yield
    finally:
        gc.unfreeze()


def _collected_ids() -> set[int]:
    """The objects a full collection visits (generations 0 to 2, not the frozen one)."""
    return {id(o) for o in gc.get_objects()}


def test_cyclic_garbage_left_before_the_freeze_is_reclaimed_not_kept(thawed: None) -> None:
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # a cycle only the cyclic collector can free
    gone = weakref.ref(a)
    del a, b
    freeze_long_lived()
    assert gone() is None


def test_objects_alive_at_the_freeze_are_out_of_every_later_collection(thawed: None) -> None:
    kept = [_Node() for _ in range(1000)]
    assert id(kept[0]) in _collected_ids()
    assert freeze_long_lived() >= len(kept)
    visited = _collected_ids()
    assert not any(id(node) in visited for node in kept)
    later = _Node()  # made after the freeze: collected as usual
    assert id(later) in _collected_ids()


def test_clearance_serve_freezes_the_replayed_index_before_it_takes_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, thawed: None
) -> None:
    world = build_world(tmp_path / "world", rings=FAST_RINGS, embedded_inspector=False)
    at_start: list[tuple[int, bool]] = []

    def run(self: uvicorn.Server, *args: object, **kwargs: object) -> None:
        indexes = [o for o in gc.get_objects() if isinstance(o, LogIndex)]
        at_start.append((gc.get_freeze_count(), bool(indexes)))

    monkeypatch.setattr(uvicorn.Server, "run", run)
    gateway_server.serve(world.data_dir, "127.0.0.1", 0)
    ((frozen, index_visited),) = at_start
    assert frozen > 0
    assert not index_visited  # the gateway's verifiable index is in the frozen generation

"""Fixtures for witness tests (helpers in :mod:`helpers`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clearance.keys import Signer
from witness.helpers import MemoryLog, RunningServer


@pytest.fixture
def log_signer() -> Signer:
    return Signer.generate("example.org/log")


@pytest.fixture
def memlog(log_signer: Signer) -> MemoryLog:
    log = MemoryLog("example.org/log", log_signer)
    log.append(*(f"entry {i}".encode() for i in range(5)))
    return log


@pytest.fixture
def servers() -> Iterator[list[RunningServer]]:
    started: list[RunningServer] = []
    yield started
    for s in started:
        s.stop()

"""Issue 12, case 10: the log acknowledges an append only after its data and checkpoint
are on stable storage.  ``kill -9`` keeps the page cache, so it proves nothing about a
power cut; this test traces the order of fsync/fdatasync/syncfs and renames instead,
and shows that the trace catches each sabotaged variant."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearance.keys import Signer
from clearance.log.store import TransparencyLog
from log._synctrace import strace_available, trace_append, violations

pytestmark = pytest.mark.skipif(not strace_available(), reason="strace cannot trace here")


def _log(tmp_path: Path) -> Path:
    logdir = tmp_path / "log"
    TransparencyLog.create(logdir, "durable.example", Signer.generate("durable.example")).close()
    return logdir


def test_case10_power_loss_append_is_acknowledged_only_after_fsync_and_syncfs(
    tmp_path: Path,
) -> None:
    logdir = _log(tmp_path)
    events = trace_append(logdir, "honest", tmp_path / "trace.txt")
    assert violations(events, logdir) == []
    with TransparencyLog.open(logdir) as log:
        assert log.size == 3


@pytest.mark.parametrize(
    ("mode", "broken"),
    [
        ("synchronous-off", "WAL was not fsynced"),
        ("no-syncfs", "before a syncfs made its tiles durable"),
        ("no-directory-fsync", "public/ was not fsynced"),
    ],
)
def test_case10_power_loss_trace_catches_each_missing_flush(
    tmp_path: Path, mode: str, broken: str
) -> None:
    logdir = _log(tmp_path)
    found = violations(trace_append(logdir, mode, tmp_path / "trace.txt"), logdir)
    assert any(broken in v for v in found), found

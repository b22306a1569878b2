from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from clearance.gateway.errors import JobQueueError
from clearance.gateway.queue import DONE, FAILED, QUEUED, RUNNING, SQLiteJobQueue


def test_jobs_survive_reopen_and_run_in_order(tmp_path: Path) -> None:
    db = tmp_path / "q.sqlite"
    q = SQLiteJobQueue(db)
    first = q.enqueue("inspect", {"release": "a"})
    second = q.enqueue("inspect", {"release": "b"})
    q.close()
    q = SQLiteJobQueue(db)
    job = q.claim("w1")
    assert job is not None and job.id == first and job.state == RUNNING and job.attempts == 1
    q.complete(job.id, {"verdict": "approved"})
    assert q.get(first).state == DONE and q.get(first).result == {"verdict": "approved"}
    nxt = q.claim("w1")
    assert nxt is not None and nxt.id == second and nxt.payload == {"release": "b"}
    with pytest.raises(JobQueueError):
        q.complete(first, {})


def test_failure_retries_then_fails_with_error(tmp_path: Path) -> None:
    q = SQLiteJobQueue(tmp_path / "q.sqlite")
    jid = q.enqueue("inspect", {}, max_attempts=2)
    job = q.claim("w")
    assert job is not None
    q.fail(jid, "boom 1")
    assert q.get(jid).state == QUEUED
    job = q.claim("w")
    assert job is not None and job.attempts == 2
    q.fail(jid, "boom 2")
    final = q.get(jid)
    assert final.state == FAILED and final.error == "boom 2"
    assert q.claim("w") is None


def test_crashed_worker_job_is_retried_after_restart(tmp_path: Path) -> None:
    db = tmp_path / "q.sqlite"
    q = SQLiteJobQueue(db)
    jid = q.enqueue("inspect", {"n": 1}, max_attempts=2)
    q.close()
    # A real worker process claims the job and is killed before finishing.
    code = (
        "import sys, os, time\n"
        "from pathlib import Path\n"
        "from clearance.gateway.queue import SQLiteJobQueue\n"
        "q = SQLiteJobQueue(Path(sys.argv[1]))\n"
        "job = q.claim('doomed', lease_seconds=0.5)\n"
        "print(job.id, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True)
    assert proc.returncode == -9 and proc.stdout.strip() == str(jid)
    q = SQLiteJobQueue(db)
    assert q.get(jid).state == RUNNING
    assert q.claim("w2") is None  # lease still held
    time.sleep(0.6)
    again = q.claim("w2", lease_seconds=0.2)
    assert again is not None and again.id == jid and again.attempts == 2
    time.sleep(0.3)  # this worker "crashes" too: out of attempts -> failed with an error
    assert q.claim("w3") is None
    assert q.get(jid).state == FAILED
    assert "worker stopped" in (q.get(jid).error or "")
    assert q.counts()[FAILED] == 1

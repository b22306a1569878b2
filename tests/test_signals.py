"""SIGTERM unwinds a ``sigterm_unwinds`` block, then still ends the process."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

_PROGRAM = textwrap.dedent(
    """
    import os, signal, sys, time
    from clearance._signals import sigterm_unwinds

    def work():
        try:
            print("ready", flush=True)
            time.sleep(30)
        finally:
            print("finally ran", flush=True)

    if sys.argv[1] == "unwinds":
        with sigterm_unwinds():
            work()
    else:
        work()
    """
)


def _terminate(mode: str) -> tuple[int, str]:
    process = subprocess.Popen(
        [sys.executable, "-c", _PROGRAM, mode], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=20)
    return process.returncode, out


def test_sigterm_runs_the_finally_clauses_and_still_ends_the_process_as_terminated() -> None:
    code, out = _terminate("unwinds")
    assert "finally ran" in out
    assert code == -signal.SIGTERM


def test_without_it_sigterm_skips_them() -> None:
    """The reason for the helper: Python's default SIGTERM ends the process on the spot."""
    code, out = _terminate("plain")
    assert "finally ran" not in out
    assert code == -signal.SIGTERM


def test_outside_the_main_thread_it_changes_nothing() -> None:
    import threading

    from clearance._signals import sigterm_unwinds

    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    def run() -> None:
        with sigterm_unwinds():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [before]


pytestmark = pytest.mark.timeout(60)

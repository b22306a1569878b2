"""The sandbox runner: real child processes under real rlimits."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from clearance.inspection import sandbox
from clearance.inspection.content import _yara_compile
from clearance.inspection.sandbox import Limits, run_sandboxed


def echo(args: Any, progress: Any) -> Any:
    for i in range(3):
        progress({"step": i})
    print("noise on stdout must not break the protocol")
    return {"got": args}


def boom(args: Any, progress: Any) -> Any:
    raise RuntimeError("broken on purpose")


def abort(args: Any, progress: Any) -> Any:
    os.abort()


def hang(args: Any, progress: Any) -> Any:
    time.sleep(60)


def spin(args: Any, progress: Any) -> Any:
    while True:
        pass


def hog(args: Any, progress: Any) -> Any:
    blocks = []
    while True:
        blocks.append(bytearray(50 * 2**20))


def flood(args: Any, progress: Any) -> Any:
    while True:
        progress("x" * 10000)


def test_result_and_progress_cross_as_json() -> None:
    seen: list[Any] = []
    outcome = run_sandboxed(echo, {"a": [1, 2]}, on_progress=seen.append)
    assert outcome.ok, outcome
    assert outcome.value == {"got": {"a": [1, 2]}}
    assert seen == [{"step": 0}, {"step": 1}, {"step": 2}]


def test_exception_is_an_error_outcome() -> None:
    outcome = run_sandboxed(boom, None)
    assert outcome.status == sandbox.ERROR
    assert "broken on purpose" in outcome.detail


def test_abort_is_a_crash_with_the_signal() -> None:
    outcome = run_sandboxed(abort, None)
    assert outcome.status == sandbox.CRASHED
    assert outcome.signal_name == "SIGABRT"
    assert outcome.evidence()["signal"] == "SIGABRT"


def test_hang_is_killed_at_the_wall_time_limit() -> None:
    started = time.monotonic()
    outcome = run_sandboxed(hang, None, Limits(wall_seconds=1.5))
    assert outcome.status == sandbox.TIMEOUT
    assert time.monotonic() - started < 10


def test_cpu_limit() -> None:
    outcome = run_sandboxed(spin, None, Limits(cpu_seconds=1, wall_seconds=30))
    assert outcome.status == sandbox.CPU_LIMIT


def test_memory_limit() -> None:
    outcome = run_sandboxed(hog, None, Limits(address_space_bytes=600 * 2**20, wall_seconds=30))
    assert outcome.status == sandbox.OUT_OF_MEMORY


def test_output_limit() -> None:
    outcome = run_sandboxed(flood, None, Limits(output_bytes=200_000, wall_seconds=30))
    assert outcome.status == sandbox.OUTPUT_LIMIT


def test_external_program() -> None:
    outcome = run_sandboxed(["/bin/echo", "hello"], None)
    assert outcome.ok and outcome.value == "hello\n"
    failed = run_sandboxed(["/bin/sh", "-c", "kill -SEGV $$"], None)
    assert failed.status == sandbox.CRASHED and failed.signal_name == "SIGSEGV"


def test_real_engine_out_of_memory_becomes_an_outcome(tmp_path: Path) -> None:
    rules = tmp_path / "r.yar"
    rules.write_text('rule r { strings: $a = "abcdefgh" condition: $a }\n')
    outcome = run_sandboxed(
        _yara_compile.compile_files,
        {"files": [["r.yar", str(rules)]], "sample": [], "out": str(tmp_path / "set.yarc")},
        Limits(address_space_bytes=120 * 2**20, wall_seconds=8),
    )
    assert outcome.status == sandbox.OUT_OF_MEMORY, outcome

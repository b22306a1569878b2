"""Run untrusted work (an engine compiling or scanning vendor content) in a child process.

The child gets hard limits on CPU time, address space, wall time and output
size.  Whatever happens to it -- a crash, a hang, an out-of-memory abort, an
exception -- the parent gets a :class:`SandboxOutcome`, never an exception, so
one bad rule can only ever become a ``content.engine-crash`` finding.

Two kinds of target:

* a module-level Python function ``f(args, progress) -> JSON-able``; it runs
  in a fresh interpreter (``python -m clearance.inspection._sandbox_child``),
  receives ``args`` as JSON and returns JSON.  Results cross the process
  boundary as JSON, never pickle, so a subverted child cannot run code in the
  parent.  ``progress(value)`` streams JSON values to ``on_progress``.
* an argv list (an external program); its stdout becomes ``value`` (text).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Statuses of :class:`SandboxOutcome`.
OK = "ok"
CRASHED = "crashed"
TIMEOUT = "timeout"
OUT_OF_MEMORY = "out-of-memory"
CPU_LIMIT = "cpu-limit"
OUTPUT_LIMIT = "output-limit"
ERROR = "error"

_STDERR_TAIL = 2000
_OOM_MARKERS = ("memory allocation of", "MemoryError", "Cannot allocate memory", "out of memory")


@dataclass(frozen=True)
class Limits:
    """Hard limits for one sandboxed run."""

    cpu_seconds: int = 120
    address_space_bytes: int = 4 * 2**30
    wall_seconds: float = 300.0
    output_bytes: int = 64 * 2**20

    def to_argv(self) -> list[str]:
        return [str(self.cpu_seconds), str(self.address_space_bytes)]


@dataclass(frozen=True)
class SandboxOutcome:
    """What became of one sandboxed run.  ``value`` is the JSON result when ``status == "ok"``."""

    status: str
    value: Any = None
    returncode: int | None = None
    signal_name: str | None = None
    detail: str = ""
    stderr_tail: str = ""
    #: Measured, so never put it in deterministic output.
    wall_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == OK

    def evidence(self) -> dict[str, Any]:
        """Deterministic description for a finding (no timings, no process ids)."""
        out: dict[str, Any] = {"status": self.status}
        if self.signal_name:
            out["signal"] = self.signal_name
        elif self.returncode not in (None, 0):
            out["exit_code"] = self.returncode
        if self.detail:
            out["detail"] = self.detail[:_STDERR_TAIL]
        return out

    def describe(self) -> str:
        what = {
            CRASHED: "crashed",
            TIMEOUT: "hung (wall-time limit reached)",
            OUT_OF_MEMORY: "ran out of memory",
            CPU_LIMIT: "exceeded its CPU-time limit",
            OUTPUT_LIMIT: "exceeded its output limit",
            ERROR: "failed",
            OK: "succeeded",
        }.get(self.status, self.status)
        extra = f" ({self.signal_name})" if self.signal_name else ""
        return f"the engine {what}{extra}"


def _function_ref(func: Callable[..., Any]) -> str:
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", "")
    if not module or "<" in qualname or module == "__main__":
        raise ValueError("run_sandboxed needs a module-level function importable by name")
    return f"{module}:{qualname}"


def run_sandboxed(
    target: Callable[..., Any] | Sequence[str],
    args: Any = None,
    limits: Limits = Limits(),
    *,
    on_progress: Callable[[Any], None] | None = None,
    cwd: Path | None = None,
) -> SandboxOutcome:
    """Run ``target`` in a limited child process and report what happened.

    Safe to call from several threads at once (each call owns its child).
    """
    child = [sys.executable, "-m", "clearance.inspection._sandbox_child", *limits.to_argv()]
    if callable(target):
        argv = [*child, "call", _function_ref(target)]
        stdin_data = json.dumps(args).encode()
    else:
        argv = [*child, "exec", "--", *target]
        stdin_data = b""
    env = dict(os.environ)
    # The child imports the target by name exactly as this process would: same path.
    src = str(Path(__file__).resolve().parents[2])
    paths = [src, *(p for p in sys.path if p and Path(p).is_dir())]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        return SandboxOutcome(ERROR, detail=f"cannot start the sandbox: {exc.strerror}")
    return _supervise(proc, stdin_data, limits, on_progress, started, callable(target))


def _supervise(
    proc: subprocess.Popen[bytes],
    stdin_data: bytes,
    limits: Limits,
    on_progress: Callable[[Any], None] | None,
    started: float,
    protocol: bool,
) -> SandboxOutcome:
    assert proc.stdin and proc.stdout and proc.stderr
    try:
        proc.stdin.write(stdin_data)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    out_buf = bytearray()
    err_tail = bytearray()
    total = 0
    result: Any = None
    have_result = False
    error_text = ""
    killed_for: str | None = None
    open_streams = 2
    deadline = started + limits.wall_seconds
    while open_streams:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            killed_for = TIMEOUT
            break
        for key, _ in sel.select(timeout=min(remaining, 1.0)):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fileobj)
                open_streams -= 1
                continue
            total += len(chunk)
            if key.data == "err":
                err_tail += chunk
                del err_tail[:-_STDERR_TAIL]
            elif protocol:
                out_buf += chunk
                if b"\n" not in chunk:
                    continue
                *lines, rest = bytes(out_buf).split(b"\n")
                out_buf = bytearray(rest)
                for line in lines:
                    kind, _, payload = line.partition(b" ")
                    try:
                        data = json.loads(payload)
                    except ValueError:
                        continue
                    if kind == b"P" and on_progress is not None:
                        on_progress(data)
                    elif kind == b"R":
                        result, have_result = data, True
                    elif kind == b"E":
                        error_text = str(data)
            else:
                out_buf += chunk
        if total > limits.output_bytes:
            killed_for = OUTPUT_LIMIT
            break
    if killed_for:
        _kill(proc)
    sel.close()
    try:
        returncode = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _kill(proc)
        returncode = proc.wait()
        killed_for = killed_for or TIMEOUT
    wall = time.monotonic() - started
    stderr_text = err_tail.decode("utf-8", "replace")
    sig = _signal_name(returncode)
    if killed_for:
        # An engine that ran out of memory may hang in its panic handler until the
        # wall-time limit: say what really happened.
        if killed_for == TIMEOUT and any(m in stderr_text for m in _OOM_MARKERS):
            killed_for = OUT_OF_MEMORY
        return SandboxOutcome(
            killed_for, None, returncode, sig, _last_line(stderr_text), stderr_text, wall
        )
    if not protocol and returncode == 0:
        return SandboxOutcome(
            OK, out_buf.decode("utf-8", "replace"), 0, None, "", stderr_text, wall
        )
    if protocol and have_result and returncode == 0:
        return SandboxOutcome(OK, result, 0, None, "", stderr_text, wall)
    return SandboxOutcome(
        _classify(returncode, sig, stderr_text + error_text),
        None,
        returncode,
        sig,
        error_text or _last_line(stderr_text),
        stderr_text,
        wall,
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _signal_name(returncode: int | None) -> str | None:
    if returncode is None or returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _classify(returncode: int | None, sig: str | None, text: str) -> str:
    if sig == "SIGXCPU":
        return CPU_LIMIT
    if any(marker in text for marker in _OOM_MARKERS):
        return OUT_OF_MEMORY
    if sig is not None:
        return CRASHED
    if returncode == 3:  # the child's code for "the function raised"
        return ERROR
    return CRASHED


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""

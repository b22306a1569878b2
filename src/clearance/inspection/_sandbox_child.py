"""The child side of :mod:`clearance.inspection.sandbox` (``python -m`` entry point).

argv: CPU_SECONDS ADDRESS_SPACE_BYTES (call MODULE:QUALNAME | exec -- ARGV...).
Protocol on the original stdout, one line each: ``P <json>`` progress,
``R <json>`` the result, ``E <json>`` an error message.  The function's own
prints go to stderr so they cannot forge protocol lines.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import traceback
from typing import Any


def _apply_limits(cpu_seconds: int, address_space: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str]) -> int:
    cpu_seconds, address_space, mode = int(argv[0]), int(argv[1]), argv[2]
    _apply_limits(cpu_seconds, address_space)
    if mode == "exec":
        program = argv[4:]
        os.execvp(program[0], program)  # noqa: S606 - argv from our caller, no shell
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    channel = os.fdopen(protocol_fd, "w", buffering=1, encoding="utf-8")

    def send(kind: str, value: Any) -> None:
        channel.write(f"{kind} {json.dumps(value, separators=(',', ':'))}\n")

    module_name, _, qualname = argv[3].partition(":")
    func: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        func = getattr(func, part)
    args = json.loads(sys.stdin.read() or "null")
    try:
        result = func(args, lambda value: send("P", value))
    except MemoryError:
        send("E", "MemoryError: out of memory")
        channel.flush()
        return 4
    except Exception as exc:
        traceback.print_exc()
        send("E", f"{type(exc).__name__}: {exc}")
        channel.flush()
        return 3
    send("R", result)
    channel.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

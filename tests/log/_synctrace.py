"""Trace a log append's system calls with strace and check what was on stable storage
before the append was acknowledged (issue 12, case 10).

The child process opens a real :class:`TransparencyLog`, appends, then writes
``ACK-MARKER`` to its stdout: that write is the acknowledgement.  Everything
the kernel was asked to make durable (``fsync``, ``fdatasync``, ``syncfs``,
``sync``) and every rename is traced, in completion order, across the log's
threads.  :func:`violations` lists every durability rule the order breaks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ACK = "ACK-MARKER"
SYSCALLS = "fsync,fdatasync,syncfs,sync,rename,renameat,renameat2,write,pwrite64"

CHILD = """
import os, sys
from pathlib import Path
from clearance.log import _publish, _sqlite
from clearance.log.store import TransparencyLog

mode = sys.argv[2]
if mode == "synchronous-off":
    connect = _sqlite._connect
    def _connect_off(path):
        db = connect(path)
        db.execute("PRAGMA synchronous=OFF")
        return db
    _sqlite._connect = _connect_off
elif mode == "no-syncfs":
    _publish._syncfs = lambda directory: None
elif mode == "no-directory-fsync":
    _publish._fsync_dir = lambda directory: None
log = TransparencyLog.open(Path(sys.argv[1]))
log.append([b"entry one", b"entry two", b"entry three"])
os.write(1, b"ACK-MARKER\\n")
log.close()
"""

_LINE = re.compile(r"^(\d+)\s+(.*)$")
_CALL = re.compile(r"^(\w+)\((.*)$")
_RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>")
_FD_PATH = re.compile(r"^\d+<([^>]*)>")
_RENAME_TO = re.compile(r'"([^"]*)",\s*(?:\S+,\s*)?"([^"]*)"')


@dataclass(frozen=True)
class Event:
    call: str
    path: str  # the file descriptor's path, or a rename's target
    source: str = ""  # a rename's source


def strace_available() -> bool:
    if shutil.which("strace") is None:
        return False
    probe = subprocess.run(
        ["strace", "-qq", "-e", "trace=none", "true"], capture_output=True, check=False
    )
    return probe.returncode == 0


def trace_append(logdir: Path, mode: str, trace: Path) -> list[Event]:
    """Run one append under strace (``mode`` sabotages one step) and return its events."""
    script = trace.with_suffix(".py")
    script.write_text(CHILD)
    cmd = ["strace", "-f", "-y", "-qq", "-e", f"trace={SYSCALLS}", "-o", str(trace)]
    cmd += [sys.executable, str(script), str(logdir), mode]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert ACK in done.stdout
    return parse(trace.read_text())


def _event(call: str, args: str) -> Event | None:
    if call.startswith("rename"):
        found = _RENAME_TO.search(args)
        return Event("rename", found.group(2), found.group(1)) if found else None
    if call == "sync":
        return Event("sync", "/")
    fd = _FD_PATH.match(args)
    if call == "write" and ACK in args and args.startswith("1"):
        return Event("ack", "")
    return Event(call, fd.group(1)) if fd else None


def parse(text: str) -> list[Event]:
    """Events in completion order (an ``fsync`` counts when it returns)."""
    events: list[Event] = []
    pending: dict[str, Event | None] = {}
    for raw in text.splitlines():
        line = _LINE.match(raw)
        if line is None:
            continue
        pid, rest = line.groups()
        if _RESUMED.match(rest):
            event = pending.pop(pid, None)
            if event is not None:
                events.append(event)
            continue
        call = _CALL.match(rest)
        if call is None:
            continue
        event = _event(call.group(1), call.group(2))
        if "<unfinished ...>" in rest:
            pending[pid] = event
        elif event is not None:
            events.append(event)
    return events


def violations(events: list[Event], logdir: Path) -> list[str]:
    """The durability rules the order of ``events`` breaks, before the acknowledgement."""
    try:
        ack = next(i for i, e in enumerate(events) if e.call == "ack")
    except StopIteration:
        return ["the append was never acknowledged"]
    before = events[:ack]
    syncs = ("fsync", "fdatasync")
    public = str(logdir.resolve() / "public")
    checkpoint = public + "/checkpoint"
    found: list[str] = []

    def last(pred: Callable[[Event], bool]) -> int:
        hits = [i for i, e in enumerate(before) if pred(e)]
        return hits[-1] if hits else -1

    def first_after(start: int, pred: Callable[[Event], bool]) -> int:
        return next((i for i in range(start + 1, len(before)) if pred(before[i])), -1)

    # 1. The database commit (the WAL, with journal_mode=WAL) is synced after its last write.
    wal_write = last(lambda e: e.call in ("pwrite64", "write") and e.path.endswith("log.db-wal"))
    if wal_write < 0:
        found.append("no write to the database's WAL before the acknowledgement")
    elif first_after(wal_write, lambda e: e.call in syncs and e.path == before[wal_write].path) < 0:
        found.append("the database WAL was not fsynced after its last write (synchronous=OFF?)")
    wal_synced = last(lambda e: e.call in syncs and e.path.endswith("log.db-wal"))
    # 2. The checkpoint is renamed into place, after the commit is durable, and only after
    #    the tiles it names (and its own contents) were flushed.
    exposed = last(lambda e: e.call == "rename" and e.path == checkpoint)
    if exposed < 0:
        found.append("the checkpoint was never published before the acknowledgement")
        return found
    if wal_synced > exposed or wal_synced < 0:
        found.append("the checkpoint was published before the database commit was durable")
    tiles = [i for i, e in enumerate(before[:exposed]) if e.call == "rename" and "/tile/" in e.path]
    if not tiles:
        found.append("no tile was published before the checkpoint")
    flushed = [
        i
        for i, e in enumerate(before[:exposed])
        if e.call == "sync" or (e.call == "syncfs" and e.path.startswith(str(logdir.resolve())))
    ]
    if not flushed or (tiles and max(flushed) < max(tiles)):
        found.append("the checkpoint was renamed before a syncfs made its tiles durable")
    # 3. The checkpoint's rename itself is durable: its directory is fsynced afterwards.
    if first_after(exposed, lambda e: e.call in syncs and e.path == public) < 0:
        found.append("public/ was not fsynced after the checkpoint rename")
    return found

"""Atomic publication of the public tlog-tiles files.

Every file is written to a temporary name, then renamed, so a reader never
sees a half-written tile.  The tiles of a batch are made durable together
(one ``syncfs`` instead of one ``fsync`` per file) before the checkpoint that
refers to them is renamed into place and synced, so ``public/`` is always a
consistent view, even after a power loss.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_libc_name = ctypes.util.find_library("c")
_libc = ctypes.CDLL(_libc_name, use_errno=True) if _libc_name else None


def _syncfs(directory: Path) -> None:
    """Flush every dirty page of the filesystem holding ``directory`` (one call per batch)."""
    if _libc is not None and hasattr(_libc, "syncfs"):
        fd = os.open(directory, os.O_RDONLY)
        try:
            if _libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Staged:
    """Files written under hidden temporary names, not yet visible to readers."""

    files: tuple[tuple[Path, Path], ...]
    checkpoint: Path | None


class Publisher:
    """Writes files under a log's ``public/`` directory.

    A batch is published in two steps: :meth:`stage` writes temporaries (it
    may run beside the database commit) and :meth:`expose` renames the tiles,
    makes their contents and names durable with one ``syncfs``, and only then
    renames the checkpoint and makes that durable.

    Tiles and bundles always land on paths no published checkpoint names yet
    (a new partial width, or a tile that just became full), so no flush is
    needed before their rename: if power fails before the ``syncfs``, no
    durable checkpoint refers to them and reopening the log republishes them.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _write_temporary(self, target: Path, data: bytes) -> Path:
        temp = target.with_name(f".{target.name}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        return temp

    def stage(self, files: Sequence[tuple[str, bytes]], checkpoint: bytes | None) -> Staged:
        staged: list[tuple[Path, Path]] = []
        made: set[Path] = set()
        for relative, data in files:
            target = self.root / relative
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            staged.append((self._write_temporary(target, data), target))
        temp_checkpoint = None
        if checkpoint is not None:
            temp_checkpoint = self._write_temporary(self.root / "checkpoint", checkpoint)
        return Staged(tuple(staged), temp_checkpoint)

    def expose(self, staged: Staged) -> None:
        """Rename tiles into place, durably, and only then the checkpoint naming them."""
        for temp, target in staged.files:
            temp.replace(target)
        # One filesystem flush makes the tiles' contents and renames (and the staged
        # checkpoint's contents) durable, so the checkpoint never outlives its tiles.
        _syncfs(self.root)
        if staged.checkpoint is not None:
            staged.checkpoint.replace(self.root / "checkpoint")
            _fsync_dir(self.root)

    def write_files(self, files: Sequence[tuple[str, bytes]]) -> None:
        """Publish ``(relative path, contents)`` pairs atomically and durably."""
        self.expose(self.stage(files, None))

    def write_checkpoint(self, data: bytes) -> None:
        """Publish a checkpoint on its own (recovery, cosignatures): temp, fsync, rename."""
        temp = self._write_temporary(self.root / "checkpoint", data)
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        temp.replace(self.root / "checkpoint")
        _fsync_dir(self.root)

    def remove_partials(self, relative_full_path: str) -> None:
        """Drop the partial versions of a tile once the full tile is published."""
        partials = self.root / f"{relative_full_path}.p"
        if partials.is_dir():
            shutil.rmtree(partials, ignore_errors=True)

    def read_checkpoint(self) -> bytes | None:
        with contextlib.suppress(OSError):
            return (self.root / "checkpoint").read_bytes()
        return None

"""Atomic publication of the public tlog-tiles files.

Every file is written to a temporary name, flushed to disk, then renamed,
so a reader never sees a half-written tile.  Tiles of a batch are flushed
together (one ``syncfs``) and renamed before the checkpoint that refers to
them, so ``public/`` is always a consistent view, even after a power loss.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
from collections.abc import Sequence
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


class Publisher:
    """Writes files under a log's ``public/`` directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write_files(self, files: Sequence[tuple[str, bytes]]) -> None:
        """Publish ``(relative path, contents)`` pairs atomically and durably."""
        self.rename_into_place(self.write_temporaries(files))

    def write_temporaries(self, files: Sequence[tuple[str, bytes]]) -> list[tuple[Path, Path]]:
        """Write each file under a hidden temporary name beside its target (not yet visible)."""
        temps: list[tuple[Path, Path]] = []
        made: set[Path] = set()
        for relative, data in files:
            target = self.root / relative
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            temp = target.with_name(f".{target.name}.tmp")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            temps.append((temp, target))
        return temps

    def rename_into_place(self, temps: Sequence[tuple[Path, Path]]) -> None:
        """Flush the temporaries to disk (one ``syncfs``), then give them their real names."""
        if not temps:
            return
        _syncfs(self.root)
        for temp, target in temps:
            temp.replace(target)

    def write_checkpoint(self, data: bytes) -> None:
        """Publish the checkpoint last; its rename is made durable before returning."""
        target = self.root / "checkpoint"
        temp = self.root / ".checkpoint.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        # One filesystem flush covers the tiles' renames and the checkpoint's data,
        # so the checkpoint can never become durable before the tiles it names.
        _syncfs(self.root)
        temp.replace(target)
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

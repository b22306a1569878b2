"""The clean corpus: files an honest rule must not match.

``--corpus DIR`` folders are used as given.  Without one, the default corpus
is this machine's own system files: the Python standard library, then
``/usr/bin``, ``/usr/sbin`` and ``/usr/lib``, walked in sorted order and
capped (:data:`DEFAULT_CAP_BYTES`) so a default run takes minutes.  Listing
is deterministic: the same tree gives the same files in the same order.
"""

from __future__ import annotations

import os
import stat
import sysconfig
from collections.abc import Iterator, Sequence
from pathlib import Path

#: Total size of the default corpus.
DEFAULT_CAP_BYTES = 400 * 2**20
#: Files larger than this are left out of any corpus (the engine maps whole files).
MAX_FILE_BYTES = 64 * 2**20


def default_roots() -> list[Path]:
    roots = [
        Path(sysconfig.get_paths()["stdlib"]),
        Path("/usr/bin"),
        Path("/usr/sbin"),
        Path("/usr/lib"),
    ]
    return [r for r in roots if r.is_dir()]


def _walk(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def list_corpus(
    roots: Sequence[Path],
    max_bytes: int | None = None,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> list[Path]:
    """Regular, non-empty files under ``roots`` (no symlinks, each inode once), in order."""
    seen: set[tuple[int, int]] = set()
    out: list[Path] = []
    total = 0
    for root in roots:
        for path in _walk(root):
            try:
                st = path.lstat()
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_size == 0 or st.st_size > max_file_bytes:
                continue
            if (st.st_dev, st.st_ino) in seen or not os.access(path, os.R_OK):
                continue
            if max_bytes is not None and total + st.st_size > max_bytes:
                return out
            seen.add((st.st_dev, st.st_ino))
            out.append(path)
            total += st.st_size
    return out


def cost_sample(
    files: Sequence[Path], target_bytes: int = 4 * 2**20, max_file: int = 512 * 1024
) -> list[Path]:
    """Evenly spaced small files of the corpus (deterministic) for measuring per-rule cost."""
    small = [p for p in files if p.stat().st_size <= max_file]
    if not small:
        return []
    out: list[Path] = []
    total = 0
    step = max(1, len(small) // 64)
    for offset in range(step):
        for path in small[offset::step]:
            if path in out:
                continue
            out.append(path)
            total += path.stat().st_size
            if total >= target_bytes:
                return out
    return out

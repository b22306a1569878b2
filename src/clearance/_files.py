"""Writing the project's private files (keys, DSNs, openings): atomic, durable, mode 0600."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` atomically: readers see the old file or the whole new
    one, never a part, and the new one is on disk before the rename makes it visible.

    The file is created with mode 0600 whatever the umask; the temporary name beside it
    is created exclusively, so a stale one from a crash is replaced rather than reused.
    """
    temp = path.with_name(path.name + ".new")
    temp.unlink(missing_ok=True)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data.encode() if isinstance(data, str) else data)
        out.flush()
        os.fsync(out.fileno())
    temp.replace(path)

"""Writing command outputs atomically: a refused or failed command leaves no half-written file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from clearance.errors import BadInput


def write_output(path: Path, data: bytes, what: str) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    directory = path.parent if str(path.parent) else Path()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except IsADirectoryError:
        raise BadInput(f"{path}: cannot write {what}: it is a directory") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot write {what}: {exc.strerror}") from None

"""Writing command outputs atomically: a refused or failed command leaves no half-written file.

Everything a command writes with :func:`write_output` is meant to be published
(trust roots, releases, verdicts, bundles, SARIF and HTML reports), so it is
world-readable (0644); only private keys are 0600 (``private=True``).  The
folder must already exist: a mistyped ``--out dir/x.json`` is an error, not a
silently created ``dir``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from clearance.errors import BadInput

PUBLISHED_MODE = 0o644
PRIVATE_MODE = 0o600


def check_output_dir(path: Path, what: str) -> None:
    """Refuse early (before any work) when ``path`` cannot be written into its folder."""
    directory = path.parent if str(path.parent) else Path()
    if path.is_dir():
        raise BadInput(f"{path}: cannot write {what}: it is a directory")
    if not directory.is_dir():
        reason = "is not a directory" if directory.exists() else "does not exist"
        raise BadInput(f"{path}: cannot write {what}: folder {directory} {reason}")


def output_dir(path: Path, what: str) -> Path:
    """Create the output folder ``path`` itself (not its parents: a mistyped parent is an
    error) and return it; an existing folder is fine."""
    parent = path.parent if str(path.parent) else Path()
    if not parent.is_dir():
        raise BadInput(f"{path}: cannot create the {what} folder: {parent} does not exist")
    try:
        path.mkdir(exist_ok=True)
    except OSError as exc:
        raise BadInput(f"{path}: cannot create the {what} folder: {exc.strerror}") from None
    if not path.is_dir():
        raise BadInput(f"{path}: {what} folder is not a directory")
    return path


def write_output(path: Path, data: bytes, what: str, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (mode 0644 or 0600)."""
    check_output_dir(path, what)
    directory = path.parent if str(path.parent) else Path()
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, PRIVATE_MODE if private else PUBLISHED_MODE)
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

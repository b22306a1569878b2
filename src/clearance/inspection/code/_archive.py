"""Unpack a source artifact (tar, tar.gz/bz2/xz, zip, or a plain file) safely.

Nothing may land outside the destination: absolute names, ``..``, links and
device files are refused, and total size and member count are bounded, so a
hostile archive becomes one :class:`UnsafeArchiveError` line, never a
half-written tree elsewhere.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from clearance.inspection.code.errors import UnsafeArchiveError

MAX_MEMBERS = 50_000
MAX_TOTAL_BYTES = 2 << 30


def _safe_name(archive: str, name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} escapes the archive directory")
    return path


def unpack(archive: Path, dest: Path, *, label: str | None = None) -> Path:
    """Unpack ``archive`` into the (new or empty) directory ``dest`` and return ``dest``.

    A file that is neither tar nor zip is copied as a one-file tree.
    """
    name = label or archive.name
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            _unpack_zip(archive, dest, name)
        elif tarfile.is_tarfile(archive):
            _unpack_tar(archive, dest, name)
        else:
            shutil.copyfile(archive, dest / _safe_name(name, archive.name).name)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise UnsafeArchiveError(f"{name}: cannot unpack: {exc}") from None
    return dest


def _unpack_tar(archive: Path, dest: Path, name: str) -> None:
    total = 0
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        if len(members) > MAX_MEMBERS:
            raise UnsafeArchiveError(f"{name}: more than {MAX_MEMBERS} members")
        for member in members:
            rel = _safe_name(name, member.name)
            if member.isdir():
                (dest / rel).mkdir(parents=True, exist_ok=True)
                continue
            if not member.isfile():
                raise UnsafeArchiveError(
                    f"{name}: member {member.name!r} is a link or device; source archives "
                    "must hold regular files only"
                )
            total += member.size
            if total > MAX_TOTAL_BYTES:
                raise UnsafeArchiveError(f"{name}: unpacks to more than {MAX_TOTAL_BYTES} bytes")
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is None:
                raise UnsafeArchiveError(f"{name}: member {member.name!r} has no data")
            with source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
            # Keep only the executable bit: build scripts need it, nothing else matters.
            target.chmod(0o755 if member.mode & 0o111 else 0o644)


def _unpack_zip(archive: Path, dest: Path, name: str) -> None:
    total = 0
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise UnsafeArchiveError(f"{name}: more than {MAX_MEMBERS} members")
        for info in infos:
            rel = _safe_name(name, info.filename)
            mode = info.external_attr >> 16
            if info.is_dir():
                (dest / rel).mkdir(parents=True, exist_ok=True)
                continue
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                raise UnsafeArchiveError(f"{name}: member {info.filename!r} is not a regular file")
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise UnsafeArchiveError(f"{name}: unpacks to more than {MAX_TOTAL_BYTES} bytes")
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
            target.chmod(0o755 if mode & 0o111 else 0o644)


def single_top_directory(root: Path) -> Path:
    """The tree's real root: ``root/pkg-1.0`` when that is all the archive holds."""
    entries = list(root.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return root

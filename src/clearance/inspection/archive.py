"""Safe unpacking of tar and zip archives supplied by a vendor.

Everything in an archive is hostile until proven otherwise: member names may
climb out of the destination (``../``, absolute paths), members may be links
or devices, sizes in headers may lie (zip bombs), archives may nest forever.
:func:`unpack_archive` extracts regular files only, counts the bytes it really
writes, and stops with :class:`ArchiveError` (a :class:`~clearance.errors.BadInput`, exit code 2)
at the first limit crossed -- removing what it had written, so a refused
archive never leaves a half-written tree.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from clearance.inspection.errors import InspectionError

_CHUNK = 1 << 16
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


class ArchiveError(InspectionError):
    """The archive is malformed or crosses a safety limit."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Limits for one archive, nested archives included."""

    #: Bytes written in total (after decompression).
    max_total_bytes: int = 512 * 2**20
    #: Regular files written in total.
    max_files: int = 20_000
    #: Directory components in one member path.
    max_path_depth: int = 32
    #: Archives inside archives (1 = no nesting allowed beyond the outer archive).
    max_nesting: int = 3
    #: Compression ratio above which a member is treated as a bomb.
    max_ratio: float = 200.0


def is_archive(path: Path) -> bool:
    """True when ``path`` looks like a tar or zip archive (by content, not only name)."""
    name = path.name.lower()
    if not path.is_file():
        return False
    if name.endswith(_ARCHIVE_SUFFIXES):
        return True
    try:
        return zipfile.is_zipfile(path) or tarfile.is_tarfile(path)
    except OSError:
        return False


@dataclass
class _Budget:
    limits: ArchiveLimits
    files: int = 0
    written: int = 0

    def add_file(self, where: str) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise ArchiveError(f"{where}: more than {self.limits.max_files} files")

    def add_bytes(self, where: str, count: int) -> None:
        self.written += count
        if self.written > self.limits.max_total_bytes:
            raise ArchiveError(f"{where}: unpacks to more than {self.limits.max_total_bytes} bytes")


def unpack_archive(
    archive: Path,
    dest: Path,
    limits: ArchiveLimits = ArchiveLimits(),
) -> list[Path]:
    """Unpack ``archive`` (and archives inside it) into ``dest``; return the files, sorted.

    Nested archives are replaced by a directory named after them
    (``rules.zip`` -> ``rules.zip.d/``).  ``dest`` must not exist yet or be empty.
    """
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ArchiveError(f"{dest}: destination is not empty")
    budget = _Budget(limits)
    try:
        _unpack_into(archive, archive.name, dest, budget, depth=1)
    except ArchiveError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise ArchiveError(f"{archive.name}: not a readable archive ({exc})") from None
    return sorted(p for p in dest.rglob("*") if p.is_file() and not p.is_symlink())


def _unpack_into(archive: Path, label: str, dest: Path, budget: _Budget, depth: int) -> None:
    if depth > budget.limits.max_nesting:
        raise ArchiveError(f"{label}: archives nested deeper than {budget.limits.max_nesting}")
    written: list[Path] = []
    for name, size_hint, opener in _members(archive, label):
        target = _safe_target(dest, name, label, budget.limits)
        budget.add_file(f"{label}:{name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise ArchiveError(f"{label}:{name}: duplicate member")
        count = 0
        with opener() as src, target.open("xb") as out:
            while chunk := src.read(_CHUNK):
                count += len(chunk)
                budget.add_bytes(f"{label}:{name}", len(chunk))
                if (
                    size_hint is not None
                    and count > 1_000_000
                    and count > size_hint * budget.limits.max_ratio
                ):
                    raise ArchiveError(f"{label}:{name}: compression ratio too high (bomb?)")
                out.write(chunk)
        written.append(target)
    for path in written:
        if is_archive(path) and _looks_nested(path):
            inner = path.with_name(path.name + ".d")
            inner.mkdir()
            _unpack_into(path, f"{label}/{path.name}", inner, budget, depth + 1)
            path.unlink()


def _looks_nested(path: Path) -> bool:
    """Only real archive formats count as nesting (a .yar file is never unpacked)."""
    return path.name.lower().endswith(_ARCHIVE_SUFFIXES)


def _safe_target(dest: Path, name: str, label: str, limits: ArchiveLimits) -> Path:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or (pure.parts and ":" in pure.parts[0]):
        raise ArchiveError(f"{label}: member {name!r} has an absolute path")
    parts = [p for p in pure.parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ArchiveError(f"{label}: member {name!r} climbs out of the archive (path traversal)")
    if not parts:
        raise ArchiveError(f"{label}: member with an empty name")
    if len(parts) > limits.max_path_depth:
        raise ArchiveError(
            f"{label}: member {name!r} is nested deeper than {limits.max_path_depth}"
        )
    target = dest.joinpath(*parts)
    if not target.resolve().is_relative_to(dest.resolve()):
        raise ArchiveError(f"{label}: member {name!r} resolves outside the destination")
    return target


_Opener = Callable[[], AbstractContextManager[IO[bytes]]]


def _members(archive: Path, label: str) -> Iterator[tuple[str, int | None, _Opener]]:
    if zipfile.is_zipfile(archive):
        yield from _zip_members(archive, label)
    elif tarfile.is_tarfile(archive):
        yield from _tar_members(archive, label)
    else:
        raise ArchiveError(f"{label}: neither a tar nor a zip archive")


def _zip_members(archive: Path, label: str) -> Iterator[tuple[str, int | None, _Opener]]:
    with zipfile.ZipFile(archive) as zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            mode = info.external_attr >> 16
            if info.is_dir():
                continue
            if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
                kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
                raise ArchiveError(f"{label}: member {info.filename!r} is {kind}")
            if info.flag_bits & 0x1:
                raise ArchiveError(f"{label}: member {info.filename!r} is encrypted")

            @contextmanager
            def opener(info: zipfile.ZipInfo = info) -> Iterator[IO[bytes]]:
                with zf.open(info) as fh:
                    yield fh

            yield info.filename, max(info.compress_size, 1), opener


def _tar_members(archive: Path, label: str) -> Iterator[tuple[str, int | None, _Opener]]:
    with tarfile.open(archive, mode="r:*") as tf:
        for member in tf:
            if member.isdir():
                continue
            if member.issym() or member.islnk():
                raise ArchiveError(f"{label}: member {member.name!r} is a link")
            if not member.isreg():
                raise ArchiveError(f"{label}: member {member.name!r} is not a regular file")

            @contextmanager
            def opener(member: tarfile.TarInfo = member) -> Iterator[IO[bytes]]:
                fh = tf.extractfile(member)
                if fh is None:
                    raise ArchiveError(f"{label}: member {member.name!r} cannot be read")
                with fh:
                    yield fh

            yield member.name, None, opener

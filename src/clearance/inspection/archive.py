"""Safe unpacking of tar and zip archives supplied by a vendor: the one unpacker.

Everything in an archive is hostile until proven otherwise: member names may
climb out of the destination (``../``, absolute paths), members may be links
or devices, sizes in headers may lie (zip bombs), archives may nest forever,
and a directory-only tar may hold 400,000 entries.  :func:`unpack_archive`
extracts regular files and directories only, counts *every* member (directories
included) and the bytes it really writes, and stops with :class:`ArchiveError`
(a :class:`~clearance.errors.BadInput`, exit code 2) at the first limit
crossed -- removing what it had written, so a refused archive never leaves a
half-written tree.  Any failure of the underlying readers (an unsupported
compression method such as Deflate64, an encrypted member, a corrupt stream)
is an :class:`ArchiveError` naming the archive, never a traceback.

The content inspector unpacks nested archives (``rules.zip`` inside a tar);
the code inspector unpacks a source tree as is (:func:`unpack_tree`, no
nesting, larger limits, executable bits kept).
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
#: Zip compression methods Python can read: stored, deflate, bzip2, lzma.
_ZIP_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
_ZIP_METHOD_NAMES = {9: "Deflate64", 93: "Zstandard", 95: "XZ", 98: "PPMd", 99: "AES-encrypted"}


class ArchiveError(InspectionError):
    """The archive is malformed, uses what cannot be read safely, or crosses a limit."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Limits for one archive, nested archives included."""

    #: Bytes written in total (after decompression).
    max_total_bytes: int = 512 * 2**20
    #: Members in total: files, directories and every other entry alike.
    max_files: int = 20_000
    #: Directory components in one member path.
    max_path_depth: int = 32
    #: Archives inside archives (1 = no nesting allowed beyond the outer archive).
    max_nesting: int = 3
    #: Compression ratio above which a member is treated as a bomb.
    max_ratio: float = 200.0


#: Limits for a source tree (the code inspector): bigger, and nothing nested is unpacked.
SOURCE_LIMITS = ArchiveLimits(
    max_total_bytes=2 << 30, max_files=50_000, max_path_depth=64, max_nesting=1, max_ratio=1000.0
)


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
    members: int = 0
    written: int = 0

    def add_member(self, where: str) -> None:
        self.members += 1
        if self.members > self.limits.max_files:
            raise ArchiveError(
                f"{where}: more than {self.limits.max_files} files (members, directories included)"
            )

    def add_bytes(self, where: str, count: int) -> None:
        self.written += count
        if self.written > self.limits.max_total_bytes:
            raise ArchiveError(f"{where}: unpacks to more than {self.limits.max_total_bytes} bytes")


def unpack_archive(
    archive: Path,
    dest: Path,
    limits: ArchiveLimits = ArchiveLimits(),
    *,
    label: str | None = None,
    nested: bool = True,
) -> list[Path]:
    """Unpack ``archive`` (and, if ``nested``, archives inside it) into ``dest``; return the
    regular files written, sorted.

    Nested archives are replaced by a directory named after them
    (``rules.zip`` -> ``rules.zip.d/``).  ``dest`` must not exist yet or be empty.
    """
    name = label or archive.name
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ArchiveError(f"{dest}: destination is not empty")
    budget = _Budget(limits)
    try:
        _unpack_into(archive, name, dest, budget, depth=1, nested=nested)
    except ArchiveError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except Exception as exc:
        shutil.rmtree(dest, ignore_errors=True)
        detail = str(exc) or type(exc).__name__
        raise ArchiveError(f"{name}: not a readable archive ({detail})") from None
    return sorted(p for p in dest.rglob("*") if p.is_file() and not p.is_symlink())


def unpack_tree(archive: Path, dest: Path, *, label: str | None = None) -> Path:
    """A source artifact as a tree under ``dest``: an archive unpacked (no nesting, source
    limits), any other file copied as a one-file tree.  Returns ``dest``."""
    name = label or archive.name
    named = name.lower().endswith(_ARCHIVE_SUFFIXES) or archive.name.lower().endswith(
        _ARCHIVE_SUFFIXES
    )
    if not (named or zipfile.is_zipfile(archive) or _is_tar(archive)):
        dest.mkdir(parents=True, exist_ok=True)
        target = _safe_target(dest, PurePosixPath(name).name or "artifact", name, SOURCE_LIMITS)
        shutil.copyfile(archive, target)
        return dest
    unpack_archive(archive, dest, SOURCE_LIMITS, label=name, nested=False)
    return dest


def single_top_directory(root: Path) -> Path:
    """The tree's real root: ``root/pkg-1.0`` when that is all the archive holds."""
    entries = list(root.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return root


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, tarfile.TarError, EOFError, ValueError):
        return False


def _unpack_into(
    archive: Path, label: str, dest: Path, budget: _Budget, depth: int, nested: bool
) -> None:
    if depth > budget.limits.max_nesting:
        raise ArchiveError(f"{label}: archives nested deeper than {budget.limits.max_nesting}")
    written: list[Path] = []
    for name, member in _members(archive, label):
        where = f"{label}:{name}"
        budget.add_member(where)
        target = _safe_target(dest, name, label, budget.limits)
        if member is None:  # a directory
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise ArchiveError(f"{where}: duplicate member")
        count = 0
        with member.open() as src, target.open("xb") as out:
            while chunk := src.read(_CHUNK):
                count += len(chunk)
                budget.add_bytes(where, len(chunk))
                if (
                    member.packed is not None
                    and count > 1_000_000
                    and count > member.packed * budget.limits.max_ratio
                ):
                    raise ArchiveError(f"{where}: compression ratio too high (bomb?)")
                out.write(chunk)
        # Keep only the executable bit: build scripts need it, nothing else matters.
        target.chmod(0o755 if member.executable else 0o644)
        written.append(target)
    if not nested:
        return
    for path in written:
        if is_archive(path) and _looks_nested(path):
            inner = path.with_name(path.name + ".d")
            inner.mkdir()
            _unpack_into(path, f"{label}/{path.name}", inner, budget, depth + 1, nested)
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
    # Lexical checks suffice: ``dest`` starts empty and no link is ever written into it,
    # so no path below it can resolve elsewhere.
    return dest.joinpath(*parts)


@dataclass(frozen=True)
class _File:
    """A regular-file member: how to read it, its packed size (zip) and executable bit."""

    open: Callable[[], AbstractContextManager[IO[bytes]]]
    packed: int | None
    executable: bool


def _members(archive: Path, label: str) -> Iterator[tuple[str, _File | None]]:
    """``(name, file)`` per member in archive order; ``file`` is None for a directory."""
    if zipfile.is_zipfile(archive):
        yield from _zip_members(archive, label)
    elif _is_tar(archive):
        yield from _tar_members(archive, label)
    else:
        raise ArchiveError(f"{label}: neither a tar nor a zip archive")


def _zip_members(archive: Path, label: str) -> Iterator[tuple[str, _File | None]]:
    with zipfile.ZipFile(archive) as zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            mode = info.external_attr >> 16
            if info.is_dir():
                yield info.filename, None
                continue
            if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
                kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
                raise ArchiveError(f"{label}: member {info.filename!r} is {kind}")
            if info.flag_bits & 0x1:
                raise ArchiveError(f"{label}: member {info.filename!r} is encrypted")
            if info.compress_type not in _ZIP_METHODS:
                method = _ZIP_METHOD_NAMES.get(info.compress_type, "unknown")
                raise ArchiveError(
                    f"{label}: member {info.filename!r} uses compression method "
                    f"{info.compress_type} ({method}), which cannot be unpacked here; "
                    "re-pack it with deflate"
                )

            @contextmanager
            def opener(info: zipfile.ZipInfo = info) -> Iterator[IO[bytes]]:
                with zf.open(info) as fh:
                    yield fh

            yield info.filename, _File(opener, max(info.compress_size, 1), bool(mode & 0o111))


def _tar_members(archive: Path, label: str) -> Iterator[tuple[str, _File | None]]:
    with tarfile.open(archive, mode="r:*") as tf:
        for member in tf:
            if member.isdir():
                yield member.name, None
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

            yield member.name, _File(opener, None, bool(member.mode & 0o111))

"""Issue 12, cases 7 and 8: directory entries count against the limits; Deflate64,
encrypted and corrupt zip members are one clean error, never a traceback."""

from __future__ import annotations

import gzip
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from clearance.cli import main
from clearance.inspection.archive import ArchiveError, ArchiveLimits, unpack_archive
from clearance.inspection.code._common import unpack
from clearance.inspection.code.errors import UnsafeArchiveError

RULE = b'rule r { strings: $a = "marker-1234" condition: $a }\n'


def _directory_tar(path: Path, entries: int) -> Path:
    """A tar.gz of ``entries`` directory entries (the same 512-byte header, repeated)."""
    header = tarfile.TarInfo("d/")
    header.type = tarfile.DIRTYPE
    block = header.tobuf(format=tarfile.USTAR_FORMAT)
    assert len(block) == 512
    path.write_bytes(gzip.compress(block * entries + b"\0" * 1024, compresslevel=1))
    return path


def test_case7_tar_of_400000_directory_entries_is_refused(
    tmp_path: Path,
) -> None:
    bomb = _directory_tar(tmp_path / "dirs.tar.gz", 400_000)
    # Refused at member 20,001 (the default limit): the work and memory stop there
    # (measured under tracemalloc: a 7.7 MB peak, against 211 MiB before).
    with pytest.raises(ArchiveError, match="more than 20000 files"):
        unpack_archive(bomb, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # The source unpacker (the same code) counts them too.
    smaller = _directory_tar(tmp_path / "src.tar.gz", 50_001)
    with pytest.raises(UnsafeArchiveError, match="more than 50000 files"):
        unpack(smaller, tmp_path / "src")


def test_case7_zip_directory_entries_count(tmp_path: Path) -> None:
    path = tmp_path / "dirs.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(30):
            zf.writestr(f"d{i}/", b"")
        zf.writestr("rules.yar", RULE)
    with pytest.raises(ArchiveError, match="more than 10 files"):
        unpack_archive(path, tmp_path / "out", ArchiveLimits(max_files=10))
    assert [p.name for p in unpack_archive(path, tmp_path / "ok")] == ["rules.yar"]


def _patched_zip(path: Path, *, method: int | None = None, flags: int | None = None) -> Path:
    """A one-member zip whose local and central headers claim ``method`` / ``flags``
    (what Windows Explorer's Deflate64 or an encrypting tool writes)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("rules.yar", RULE * 200)
    data = bytearray(path.read_bytes())
    for signature, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = data.index(signature)
        if flags is not None:
            struct.pack_into("<H", data, at + flag_at, flags)
        if method is not None:
            struct.pack_into("<H", data, at + method_at, method)
    path.write_bytes(bytes(data))
    return path


def _corrupt_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("rules.yar", RULE * 200)
    data = bytearray(path.read_bytes())
    start = data.index(b"rules.yar") + len("rules.yar")
    for i in range(start + 2, start + 12):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: _patched_zip(p, method=9), "Deflate64"),
        (lambda p: _patched_zip(p, method=99), "AES-encrypted"),
        (lambda p: _patched_zip(p, flags=0x1), "encrypted"),
        (_corrupt_zip, "not a readable archive"),
    ],
)
def test_case8_unreadable_zip_members_are_one_clean_error(
    tmp_path: Path, make: object, message: str
) -> None:
    archive = make(tmp_path / "rules.zip")  # type: ignore[operator]
    with pytest.raises(ArchiveError, match=message):
        unpack_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(UnsafeArchiveError, match=message):
        unpack(archive, tmp_path / "src")


def test_case8_clearance_inspect_on_deflate64_zip_is_exit_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "k"
    assert main(["keys", "generate", "vendor", "--dir", str(keys)]) == 0
    assert main(["keys", "generate", "inspector", "--dir", str(keys)]) == 0
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    _patched_zip(artifacts / "rules.zip", method=9)
    release = tmp_path / "release.json"
    create = ["release", "create", "--product", "acme-av", "--version", "1.0.0"]
    create += ["--channel", "stable", "--key", str(keys / "vendor.key")]
    create += ["--content", str(artifacts / "rules.zip"), "--out", str(release)]
    assert main(create) == 0
    capsys.readouterr()
    code = main(
        [
            "inspect",
            str(release),
            "--artifacts",
            str(artifacts),
            "--key",
            str(keys / "inspector.key"),
            "--out",
            str(tmp_path / "verdict.json"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    (error,) = [line for line in err.splitlines() if "Deflate64" in line]  # one line says it
    assert "rules.zip" in error

"""Safe unpacking: traversal, links, bombs, counts and nesting are refused, cleanly."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from clearance.errors import BadInput
from clearance.inspection.archive import ArchiveError, ArchiveLimits, unpack_archive


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info in members:
            payload = (data or {}).get(info.name)
            if payload is not None:
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
            else:
                tf.addfile(info)
    return path


def test_zip_and_tar_unpack(tmp_path: Path) -> None:
    z = _zip(tmp_path / "r.zip", {"a/one.yar": b"rule a { condition: true }", "two.yar": b"x"})
    files = unpack_archive(z, tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in files] == ["a/one.yar", "two.yar"]
    t = _tar(
        tmp_path / "r.tgz", [tarfile.TarInfo("d/x.yar")], {"d/x.yar": b"rule x { condition: true }"}
    )
    assert [p.name for p in unpack_archive(t, tmp_path / "out2")] == ["x.yar"]


@pytest.mark.parametrize(
    "name", ["../evil.yar", "a/../../evil.yar", "/etc/evil.yar", "C:/evil.yar"]
)
def test_traversal_is_refused(tmp_path: Path, name: str) -> None:
    z = _zip(tmp_path / "r.zip", {name: b"x"})
    with pytest.raises(ArchiveError, match=r"absolute|climbs|outside"):
        unpack_archive(z, tmp_path / "out")
    assert not (tmp_path / "evil.yar").exists()


def test_links_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("link.yar")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    with pytest.raises(ArchiveError, match="link"):
        unpack_archive(_tar(tmp_path / "s.tgz", [link]), tmp_path / "o1")
    hard = tarfile.TarInfo("hard.yar")
    hard.type = tarfile.LNKTYPE
    hard.linkname = "other"
    with pytest.raises(ArchiveError, match="link"):
        unpack_archive(_tar(tmp_path / "h.tgz", [hard]), tmp_path / "o2")
    dev = tarfile.TarInfo("dev")
    dev.type = tarfile.CHRTYPE
    with pytest.raises(ArchiveError, match="not a regular file"):
        unpack_archive(_tar(tmp_path / "d.tgz", [dev]), tmp_path / "o3")


def test_zip_symlink_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("link.yar")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveError, match="symbolic link"):
        unpack_archive(path, tmp_path / "out")


def test_bomb_total_size_and_count_limits_leave_nothing(tmp_path: Path) -> None:
    bomb = _zip(tmp_path / "bomb.zip", {"big.yar": b"\x00" * (50 * 2**20)})
    out = tmp_path / "out"
    with pytest.raises(ArchiveError, match=r"ratio|more than"):
        unpack_archive(bomb, out, ArchiveLimits(max_total_bytes=8 * 2**20))
    assert not out.exists() or not any(out.rglob("*"))
    many = _zip(tmp_path / "many.zip", {f"f{i}.yar": b"x" for i in range(30)})
    with pytest.raises(ArchiveError, match="more than 10 files"):
        unpack_archive(many, tmp_path / "out2", ArchiveLimits(max_files=10))
    deep = _zip(tmp_path / "deep.zip", {"/".join(["d"] * 40) + "/x.yar": b"x"})
    with pytest.raises(ArchiveError, match="deeper"):
        unpack_archive(deep, tmp_path / "out3")


def test_nested_archives_unpack_up_to_the_limit(tmp_path: Path) -> None:
    inner = _zip(tmp_path / "inner.zip", {"in.yar": b"rule i { condition: true }"})
    outer = _zip(tmp_path / "outer.zip", {"inner.zip": inner.read_bytes(), "top.yar": b"x"})
    files = unpack_archive(outer, tmp_path / "o")
    assert sorted(p.relative_to(tmp_path / "o").as_posix() for p in files) == [
        "inner.zip.d/in.yar",
        "top.yar",
    ]
    level = outer
    for i in range(4):
        level = _zip(
            tmp_path / f"l{i}.zip", {f"l{i}.zip" if False else "n.zip": level.read_bytes()}
        )
    with pytest.raises(ArchiveError, match="nested deeper"):
        unpack_archive(level, tmp_path / "o2", ArchiveLimits(max_nesting=3))


def test_not_an_archive_is_bad_input(tmp_path: Path) -> None:
    junk = tmp_path / "x.zip"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(BadInput):
        unpack_archive(junk, tmp_path / "o")

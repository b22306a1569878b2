from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from clearance.inspection.archive import single_top_directory
from clearance.inspection.code._binary import binary_facts, extract_strings
from clearance.inspection.code._common import unpack
from clearance.inspection.code.errors import RecipeError, UnsafeArchiveError
from clearance.inspection.code.recipe import BuildRecipe

from .conftest import compile_c

STACK_PROGRAM = r"""
#include <stdio.h>
int main(void) {
    char host[] = "exfil.badhost.net";
    char ip[16];
    ip[0]='1'; ip[1]='9'; ip[2]='8'; ip[3]='.'; ip[4]='5'; ip[5]='1'; ip[6]='.';
    ip[7]='1'; ip[8]='0'; ip[9]='0'; ip[10]='.'; ip[11]='9'; ip[12]=0;
    puts(host); puts(ip);
    return 0;
}
"""


def test_stack_strings_and_imports(tmp_path: Path) -> None:
    binary = compile_c(STACK_PROGRAM, tmp_path / "stack")
    facts = binary_facts(binary)
    stack = {s.text for s in facts.strings if s.encoding == "stack"}
    assert "exfil.badhost.net" in stack
    assert "198.51.100.9" in stack
    # Neither string exists as one run in the file: only the stack-string pass sees them.
    assert b"exfil.badhost.net" not in binary.read_bytes()
    assert "puts" in facts.imports
    assert "libc.so.6" in facts.libraries
    assert any(name == ".text" for name, _size, _entropy in facts.sections)


def test_utf16_strings() -> None:
    data = b"\x00\x01" + "https://telemetry.example.org/x".encode("utf-16le") + b"\x00\x00"
    found = [s for s in extract_strings(data, []) if s.encoding == "utf-16le"]
    assert [s.text for s in found] == ["https://telemetry.example.org/x"]
    assert found[0].offset == 2


def _tar(members: list[tarfile.TarInfo], out: Path) -> Path:
    with tarfile.open(out, "w") as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return out


@pytest.mark.parametrize("name", ["../evil", "/etc/evil", "a/../../evil"])
def test_archive_refuses_escapes(tmp_path: Path, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.size = 1
    archive = _tar([info], tmp_path / "bad.tar")
    with pytest.raises(UnsafeArchiveError, match=r"absolute|climbs out"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def test_archive_refuses_links(tmp_path: Path) -> None:
    link = tarfile.TarInfo("src/passwd")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    with pytest.raises(UnsafeArchiveError, match="link"):
        unpack(_tar([link], tmp_path / "link.tar"), tmp_path / "out")


def test_archive_zip_and_top_directory(tmp_path: Path) -> None:
    archive = tmp_path / "src.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg-1.0/a.py", "print(1)\n")
        zf.writestr("pkg-1.0/sub/b.c", "int x;\n")
    root = single_top_directory(unpack(archive, tmp_path / "out"))
    assert root.name == "pkg-1.0"
    assert (root / "sub" / "b.c").read_text() == "int x;\n"


def test_archive_garbage_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "src.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(UnsafeArchiveError, match=r"src\.tar\.gz"):
        unpack(bad, tmp_path / "out")


def test_recipe_parsing() -> None:
    recipe = BuildRecipe.from_dict(
        "agent",
        {
            "source": "src.tgz",
            "command": ["make", "agent"],
            "env": {"CC": "gcc"},
            "output": "agent",
        },
    )
    assert recipe.argv() == ["make", "agent"]
    assert BuildRecipe.from_dict("agent", recipe.to_dict()) == recipe
    shell = BuildRecipe.from_dict("w", {"source": "s", "command": "make && cp a b", "output": "b"})
    assert shell.argv() == ["/bin/sh", "-c", "make && cp a b"]
    assert shell.to_dict()["command"] == "make && cp a b"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"command": ["make"], "output": "a"}, "source"),
        ({"source": "s", "command": [], "output": "a"}, "command"),
        ({"source": "s", "command": ["make"], "output": "../a"}, "inside"),
        ({"source": "s", "command": ["make"], "output": "/bin/ls"}, "inside"),
        ({"source": "s", "command": ["make"], "output": "a", "env": {"PATH": "/evil"}}, "PATH"),
        ({"source": "s", "command": ["make"], "output": "a", "build_path": "/"}, "build_path"),
        ({"source": "s", "command": ["make"], "output": "a", "timeout_seconds": -1}, "timeout"),
    ],
)
def test_recipe_errors_name_the_binary(data: dict[str, object], match: str) -> None:
    with pytest.raises(RecipeError, match=match) as info:
        BuildRecipe.from_dict("agent", data)
    assert "agent" in str(info.value)


def test_pe_facts() -> None:
    import setuptools

    exe = Path(setuptools.__file__).parent / "cli-32.exe"
    facts = binary_facts(exe)
    assert facts.format == "PE"
    assert "KERNEL32.dll" in facts.libraries
    assert "CreateProcessA" in facts.imports
    assert not facts.can_connect
    assert any(s.encoding == "utf-16le" for s in facts.strings)

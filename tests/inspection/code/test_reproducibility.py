"""Hermetic rebuilds of small C and Python projects written by the tests themselves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clearance.inspection.base import InspectionInput
from clearance.inspection.code import ReproducibilityInspector
from clearance.inspection.code._hermetic_build import isolation_command, rebuild
from clearance.inspection.code.recipe import BuildRecipe

from .conftest import NullProgress, artifact, need_tool, tarball, vendor_build, write_tree

HELLO_C = '#include <stdio.h>\nint main(void) { puts("hello from %s"); return 0; }\n'
C_RECIPE: dict[str, Any] = {"source": "src.tar.gz", "command": ["make", "hello"], "output": "hello"}
MAKEFILE = "hello: hello.c\n\tgcc -O0 $(EXTRA) -o hello hello.c\n"
DATE_MAKEFILE = "hello: hello.c\n\tgcc -O0 -DSTAMP='\"'\"$$(date +%s%N)\"'\"' -o hello hello.c\n"
SEED_MAKEFILE = (
    'hello: hello.c\n\techo "static const unsigned seed = $$(od -An -N4 -tu4 /dev/urandom);" '
    "> seed.h\n\tgcc -O0 -include seed.h -o hello hello.c\n"
)

SETUP_PY = "from setuptools import setup\nsetup(name='demo', version='1.0', packages=['demo'])\n"
STAMP_SETUP_PY = (
    "import time\nfrom setuptools import setup\n"
    "open('demo/_stamp.py', 'w').write('BUILT = %r\\n' % time.time_ns())\n"
    "setup(name='demo', version='1.0', packages=['demo'])\n"
)
WHEEL = "dist/demo-1.0-py3-none-any.whl"
WHEEL_RECIPE: dict[str, Any] = {
    "source": "demo-1.0.tar.gz",
    "command": [
        "python",
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        "dist",
        ".",
    ],
    "output": WHEEL,
}


@pytest.fixture(autouse=True)
def _tools() -> None:
    need_tool("unshare")
    need_tool("make")
    need_tool("gcc")


def release(
    tmp_path: Path,
    built_from: dict[str, str],
    disclosed: dict[str, str],
    recipe: dict[str, Any],
    binary_name: str,
    source_name: str,
) -> InspectionInput:
    """A release whose binary the 'vendor' built from ``built_from`` but whose source is ``disclosed``."""
    built_tree = write_tree(tmp_path / "vendor-src", built_from)
    built = vendor_build(built_tree, recipe, tmp_path / "vendor" / "src")
    binary_path = tmp_path / "release" / binary_name
    binary_path.parent.mkdir(parents=True)
    binary_path.write_bytes(built.read_bytes())
    disclosed_tree = write_tree(tmp_path / "disclosed", disclosed)
    source = tarball(disclosed_tree, tmp_path / "release" / source_name)
    return InspectionInput(
        product="demo",
        version="1",
        artifacts=(artifact(binary_path, "binary"), artifact(source, "source")),
        build_recipes={binary_name: recipe},
        work_dir=tmp_path / "work",
    )


def run(inp: InspectionInput, **kwargs: Any) -> Any:
    return ReproducibilityInspector(**kwargs).inspect(inp, NullProgress())


def test_isolation_is_available_here() -> None:
    assert "--net" in isolation_command()


def test_reproducible_c_program(tmp_path: Path) -> None:
    files = {"hello.c": HELLO_C, "Makefile": MAKEFILE}
    result = run(release(tmp_path, files, files, C_RECIPE, "hello", "src.tar.gz"))
    assert result.findings == ()
    rows = result.report["sections"][0]["tables"][0]["rows"]
    assert rows[0][:3] == ["hello", "src.tar.gz", "reproducible"]


def test_embedded_build_time_is_not_reproducible(tmp_path: Path) -> None:
    files = {"hello.c": HELLO_C.replace('"hello from %s"', "STAMP"), "Makefile": DATE_MAKEFILE}
    result = run(release(tmp_path, files, files, C_RECIPE, "hello", "src.tar.gz"))
    [finding] = result.findings
    assert finding.rule_id == "binary.not-reproducible"
    assert finding.severity.label == "critical"
    assert finding.evidence["reason"] == "digest-mismatch"
    # The explanation says where: the time string lives in .rodata.
    assert "section .rodata" in finding.message
    assert finding.evidence["difference"]["tool"] in ("diffoscope", "section comparison (lief)")
    assert any(".rodata" in d for d in finding.evidence["difference"]["details"])


def test_random_seed_is_not_reproducible_and_fallback_explains(tmp_path: Path) -> None:
    files = {"hello.c": HELLO_C, "Makefile": SEED_MAKEFILE}
    result = run(
        release(tmp_path, files, files, C_RECIPE, "hello", "src.tar.gz"), use_diffoscope=False
    )
    [finding] = result.findings
    assert finding.evidence["difference"]["tool"] == "section comparison (lief)"
    assert "differs" in " ".join(finding.evidence["difference"]["details"])


def test_different_source_is_caught(tmp_path: Path) -> None:
    built = {"hello.c": HELLO_C, "Makefile": MAKEFILE}
    disclosed = {"hello.c": HELLO_C.replace("hello from", "howdy from"), "Makefile": MAKEFILE}
    result = run(release(tmp_path, built, disclosed, C_RECIPE, "hello", "src.tar.gz"))
    [finding] = result.findings
    assert "does not rebuild bit-for-bit" in finding.message


def test_diffoscope_text_when_installed(tmp_path: Path) -> None:
    need_tool("diffoscope")
    built = {"hello.c": HELLO_C, "Makefile": MAKEFILE}
    disclosed = {"hello.c": HELLO_C.replace("hello from", "howdy from"), "Makefile": MAKEFILE}
    result = run(release(tmp_path, built, disclosed, C_RECIPE, "hello", "src.tar.gz"))
    block = result.report["sections"][0]["code"][0]
    assert block["caption"].startswith("diffoscope")
    assert "howdy" in block["text"] or "rodata" in block["text"]
    assert str(tmp_path) not in block["text"]


def test_reproducible_wheel_from_sdist(tmp_path: Path) -> None:
    files = {"setup.py": SETUP_PY, "demo/__init__.py": "VALUE = 1\n"}
    inp = release(
        tmp_path, files, files, WHEEL_RECIPE, "demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz"
    )
    result = run(inp)
    assert result.findings == ()


def test_wheel_with_build_time_is_not_reproducible(tmp_path: Path) -> None:
    files = {"setup.py": STAMP_SETUP_PY, "demo/__init__.py": "VALUE = 1\n"}
    inp = release(
        tmp_path, files, files, WHEEL_RECIPE, "demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz"
    )
    [finding] = run(inp).findings
    details = " ".join(finding.evidence["difference"]["details"])
    assert "demo/_stamp.py: content differs" in details


def _recipe(command: str, **extra: Any) -> BuildRecipe:
    return BuildRecipe.from_dict(
        "out", {"source": "s", "command": command, "output": "out", **extra}
    )


def test_no_network_inside_the_rebuild(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", {"x": ""})
    probe = (
        "python -c \"import socket; socket.create_connection(('1.1.1.1', 80), timeout=3)\" "
        "&& echo ok > out"
    )
    outcome = rebuild(_recipe(probe), source, tmp_path / "scratch")
    assert outcome.status == "failed"
    assert "unreachable" in outcome.log_tail.lower()


def test_fixed_environment_inside_the_rebuild(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", {"x": ""})
    command = 'echo "$SOURCE_DATE_EPOCH $TZ $LC_ALL $(umask) $(pwd)" > out; env > env.txt'
    outcome = rebuild(_recipe(command, env={"EXTRA": "1"}), source, tmp_path / "scratch")
    assert outcome.ok and outcome.output is not None
    assert outcome.output.read_text().split() == [
        "315532800",
        "UTC",
        "C.UTF-8",
        "0022",
        "/tmp/clearance-build/src",
    ]
    env_names = {
        line.split("=", 1)[0]
        for line in (outcome.output.parent / "env.txt").read_text().splitlines()
    }
    assert "EXTRA" in env_names
    assert not {"VIRTUAL_ENV", "PYTEST_CURRENT_TEST", "SSH_AUTH_SOCK"} & env_names


def test_time_limit(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", {"x": ""})
    outcome = rebuild(
        _recipe("sleep 30; touch out", timeout_seconds=1), source, tmp_path / "scratch"
    )
    assert outcome.status == "timeout"
    assert outcome.wall_seconds < 10


def test_output_size_limit(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", {"x": ""})
    command = "head -c 200000 /dev/zero > out"
    outcome = rebuild(_recipe(command, max_output_bytes=100_000), source, tmp_path / "scratch")
    assert outcome.status in ("failed", "output-limit")


def test_missing_recipe_and_missing_source(
    tmp_path: Path, make_input: Callable[..., InspectionInput]
) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF not really")
    other = tmp_path / "other"
    other.write_bytes(b"x")
    inp = make_input(
        (artifact(binary, "binary"), artifact(other, "binary")),
        recipes={"other": {"source": "nope.tar.gz", "command": ["make"], "output": "other"}},
    )
    findings = {f.evidence["binary"]: f for f in run(inp).findings}
    assert findings["tool"].evidence["reason"] == "no-recipe"
    assert findings["tool"].severity.label == "medium"
    assert findings["other"].evidence["reason"] == "missing-source"
    assert findings["other"].severity.label == "critical"


def test_build_cannot_write_outside_its_tree(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", {"x": ""})
    target = tmp_path / "host-file"
    target.write_text("untouched")
    target.chmod(0o644)
    command = (
        f"grep CapEff /proc/self/status | tr -d '\\t' > out; echo pwned > {target} 2>/dev/null; "
        "echo status=$? >> out; mount -o remount,rw / 2>/dev/null; echo remount=$? >> out"
    )
    outcome = rebuild(_recipe(command), source, tmp_path / "scratch")
    assert outcome.ok and outcome.output is not None
    caps, status, remount = outcome.output.read_text().split()
    assert caps == "CapEff:0000000000000000"
    assert status != "status=0"
    assert remount != "remount=0"
    assert target.read_text() == "untouched"
    assert "no capabilities" in outcome.isolation


def test_output_link_out_of_the_tree_is_not_followed(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", {"x": ""})
    outcome = rebuild(_recipe("ln -s /etc/passwd out"), source, tmp_path / "scratch")
    assert outcome.status == "no-output"
    assert outcome.output is None


def test_build_path_over_a_busy_directory_is_a_finding(tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep").write_text("x")
    recipe = dict(C_RECIPE, build_path=str(busy / "src"))
    files = {"hello.c": HELLO_C, "Makefile": MAKEFILE}
    inp = release(tmp_path, files, files, C_RECIPE, "hello", "src.tar.gz")
    inp = InspectionInput(
        product="demo",
        version="1",
        artifacts=inp.artifacts,
        build_recipes={"hello": recipe},
        work_dir=inp.work_dir,
    )
    [finding] = run(inp).findings
    assert finding.evidence["reason"] == "bad-recipe"
    assert "not an empty directory" in finding.message
    assert (busy / "keep").read_text() == "x"

"""Fixtures for the code inspection tests: small projects written and compiled here."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from clearance.inspection.base import Artifact, InspectionInput
from clearance.inspection.code._capa_runner import CapaEngine, capa_engine
from clearance.inspection.code._hermetic_build import sandbox_env
from clearance.inspection.code.recipe import BuildRecipe

IN_CI = os.environ.get("CI") == "true"


class NullProgress:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, description: str, total: float | None) -> None:
        self.started.append(description)

    def advance(self, amount: float = 1.0) -> None:
        pass


def need_tool(name: str) -> None:
    if shutil.which(name) is None:
        message = f"{name} is not installed (scripts/install-system-deps.sh installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def artifact(path: Path, kind: str, name: str | None = None) -> Artifact:
    data = path.read_bytes()
    return Artifact(name or path.name, kind, hashlib.sha256(data).hexdigest(), len(data), path)


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def tarball(tree: Path, out: Path, top: str = "project") -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(p for p in tree.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(f"{top}/{path.relative_to(tree).as_posix()}")
            data = path.read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    with out.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(buffer.getvalue())
    return out


def vendor_build(tree: Path, recipe: Mapping[str, Any], work: Path) -> Path:
    """Build the way a vendor would: same recipe and environment, a different directory."""
    parsed = BuildRecipe.from_dict("x", recipe)
    shutil.copytree(tree, work)
    env = sandbox_env(parsed, work.parent)
    (work.parent / "home").mkdir(exist_ok=True)
    (work.parent / "tmp").mkdir(exist_ok=True)
    subprocess.run(parsed.argv(), cwd=work, env=env, check=True, capture_output=True)
    return work / parsed.output


def compile_c(source: str, out: Path) -> Path:
    need_tool("gcc")
    src = out.with_suffix(".c")
    src.write_text(source)
    subprocess.run(["gcc", "-O0", "-o", str(out), str(src)], check=True, capture_output=True)
    return out


def inspection_input(
    artifacts: tuple[Artifact, ...],
    previous: tuple[Artifact, ...] = (),
    *,
    declared: tuple[str, ...] = (),
    recipes: Mapping[str, Mapping[str, Any]] | None = None,
    work: Path,
) -> InspectionInput:
    return InspectionInput(
        product="demo",
        version="2",
        artifacts=artifacts,
        previous_artifacts=previous,
        declared_endpoints=declared,
        build_recipes=recipes or {},
        work_dir=work / "work",
        cache_dir=work / "cache",
    )


@pytest.fixture
def progress() -> NullProgress:
    return NullProgress()


@pytest.fixture(scope="session")
def capa_rules(shared_dir: Path) -> Path:
    rules = shared_dir / "capa-rules"
    if not rules.is_dir():
        pytest.fail(f"{rules} is missing")
    return rules.resolve()


@pytest.fixture(scope="session")
def engine(capa_rules: Path) -> CapaEngine:
    """Rules are loaded once per test session (the inspectors share this engine)."""
    return capa_engine(capa_rules)


@pytest.fixture
def make_input(tmp_path: Path) -> Callable[..., InspectionInput]:
    def make(*args: Any, **kwargs: Any) -> InspectionInput:
        return inspection_input(*args, work=tmp_path, **kwargs)

    return make

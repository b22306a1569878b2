"""Fixtures for the log tests: keys, small logs, and the Go interop program."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from _postgres import scratch_database
from clearance.keys import Signer

GO_SOURCE = Path(__file__).resolve().parent / "gointerop"
GOPATH = Path("/usr/share/gocode")


def build_gointerop(out_dir: Path) -> Path:
    """Build tests/log/gointerop offline against Debian's golang.org/x/mod (GOPATH mode)."""
    go = shutil.which("go")
    sumdb = GOPATH / "src/golang.org/x/mod/sumdb"
    missing = [] if go else ["go (Debian golang-go)"]
    if not sumdb.is_dir():
        missing.append(f"{sumdb} (Debian golang-golang-x-mod-dev)")
    if missing:
        message = "Go interop needs " + ", ".join(missing) + ": run scripts/install-system-deps.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert go is not None
    binary = out_dir / "gointerop"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": str(GOPATH),
        "GOPROXY": "off",
        "GOFLAGS": "-mod=mod",
        "GOCACHE": str(out_dir / "gocache"),
    }
    result = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=GO_SOURCE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(f"building the Go interop program failed:\n{result.stderr}")
    return binary


@pytest.fixture(scope="session")
def gointerop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built Go interop binary (built once per test session, in a temp dir)."""
    return build_gointerop(tmp_path_factory.mktemp("gointerop"))


@pytest.fixture
def log_signer() -> Signer:
    return Signer.generate("example.com/log")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The log's backend: ``None`` for SQLite, else the DSN of a scratch PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    with scratch_database() as dsn:
        yield dsn

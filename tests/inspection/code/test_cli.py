"""``clearance code rebuild`` and ``clearance code endpoints``: exit codes and output."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from clearance.cli import main

from .conftest import need_tool

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "agent"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_tool("make")
    spec = importlib.util.spec_from_file_location("agent_example_build_cli", EXAMPLE / "build.py")
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path_factory.mktemp("agent")
    module.build_version("v1", out)
    module.build_version("v2", out)
    return out


def test_rebuild_reproducible_and_not(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need_tool("unshare")
    v2 = built / "v2"
    args = ["code", "rebuild", str(v2 / "agent"), "--recipe", str(v2 / "recipes.json")]
    assert main([*args, "--source", str(v2 / "agent-src.tar.gz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reproducible"] is True
    # The v2 binary against v1's source: refused (exit 1) with the explanation on stderr.
    assert main([*args, "--source", str(built / "v1" / "agent-src.tar.gz"), "--no-diffoscope"]) == 1
    err = capsys.readouterr().err
    assert "does not rebuild bit-for-bit" in err
    assert "section .text: content differs" in err


def test_rebuild_bad_input(built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v2 = built / "v2"
    bad = tmp_path / "recipes.json"
    bad.write_text("[1, 2]")
    code = main(
        [
            "code",
            "rebuild",
            str(v2 / "agent"),
            "--source",
            str(v2 / "agent-src.tar.gz"),
            "--recipe",
            str(bad),
        ]
    )
    assert code == 2
    assert "must be a JSON object" in capsys.readouterr().err
    missing = main(
        [
            "code",
            "rebuild",
            str(tmp_path / "nope"),
            "--source",
            str(v2 / "agent-src.tar.gz"),
            "--recipe",
            str(v2 / "recipes.json"),
            "--name",
            "agent",
        ]
    )
    assert missing == 2
    assert "not found" in capsys.readouterr().err


def test_endpoints(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v2 = built / "v2"
    base = [
        "code",
        "endpoints",
        "--binary",
        str(v2 / "agent"),
        "--source",
        str(v2 / "agent-src.tar.gz"),
    ]
    assert main([*base, "--endpoint", "updates.example.com", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["endpoints"][0]["host"] == "docs-sync.example.net"
    assert out["findings"][0]["rule_id"] == "binary.undeclared-endpoint"
    assert main([*base, "--endpoint", "docs-sync.example.net"]) == 0
    assert main(["code", "endpoints"]) == 2

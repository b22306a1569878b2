"""Command-line items against a real gateway: ``submit --artifacts``, ``--token``, exit 3,
``log search --server`` and ``verify --server`` on the release it just verified."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from clearance.cli import main

from .support import RULES, Live, make_release
from .test_flow import _approve
from .test_withholding import _complete


def _release_files(live: Live, tmp_path: Path, version: str) -> tuple[Path, Path, str]:
    env, content = make_release(live.world, tmp_path, version)
    artifacts = tmp_path / f"artifacts-{version}"
    artifacts.mkdir()
    (artifacts / "rules.yar").write_bytes(content)
    release = tmp_path / f"release-{version}.json"
    release.write_bytes(env.to_bytes())
    return release, artifacts, env.sha256


def test_submit_uploads_the_artifacts_so_the_release_does_not_wait(
    live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CLEARANCE_TOKEN", raising=False)
    release, artifacts, sha = _release_files(live, tmp_path, "3.0.0")
    argv = ["submit", str(release), "--server", live.url, "--artifacts", str(artifacts)]
    # No token: not authorised is exit 3, nothing was logged.
    size = live.server.gateway.log.size
    assert main(argv) == 3
    assert "vendor token" in capsys.readouterr().err
    # A file in DIR that is not the released artifact: refused before anything is sent.
    (artifacts / "rules.yar").write_bytes(RULES + b"// altered\n")
    assert main([*argv, "--token", live.world.token("vendor")]) == 2
    assert "SHA-256 differs" in capsys.readouterr().err
    assert live.server.gateway.log.size == size
    (artifacts / "rules.yar").write_bytes(RULES)
    # --token beside $CLEARANCE_TOKEN: the release is logged and its artifact uploaded.
    assert main([*argv, "--token", live.world.token("vendor"), "--json"]) == 0
    receipt = json.loads(capsys.readouterr().out)
    assert receipt["sha256"] == sha and receipt["uploaded"][0]["name"] == "rules.yar"
    with live.client(None) as anyone:
        state = anyone.status(sha)["release"]["state"]
    assert state != "awaiting-artifacts"
    # The same through the environment variable, with the labelled receipt.
    monkeypatch.setenv("CLEARANCE_TOKEN", live.world.token("vendor"))
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "already logged" in out and "uploaded:   rules.yar" in out


def test_log_search_on_a_server_and_verify_server_on_the_newest_release(
    live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sha = _approve(live, tmp_path, "1.0.0")
    _complete(live, sha)
    root = tmp_path / "trust-root.json"
    root.write_bytes(dataclasses.replace(live.world.trust_root, max_checkpoint_age=None).to_bytes())
    code = main(["log", "search", "--server", live.url, "--trust-root", str(root),
                 "--sha256", sha, "--json"])  # fmt: skip
    found = json.loads(capsys.readouterr().out)["entries"]
    assert code == 0 and [e["kind"] for e in found] == ["release", "verdict"]
    assert main(["log", "search", "--server", live.url, "--index", "0"]) == 2  # no trust root
    capsys.readouterr()

    with live.client(None) as anyone:
        (tmp_path / "bundle.json").write_bytes(anyone.bundle(sha))
    (tmp_path / "rules.yar").write_bytes(RULES)
    monkeypatch.setenv("CLEARANCE_TOKEN", live.world.token("client"))
    # A customer without entitlement: the gateway withholds the release just verified.
    # That is not "a newer release withheld": there is none.
    code = main(["verify", str(tmp_path / "rules.yar"), "--bundle", str(tmp_path / "bundle.json"),
                 "--trust-root", str(root), "--state", str(tmp_path / "state"),
                 "--server", live.url, "--customer", "nobody"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "newer" not in out and "the release verified here is the newest approved" in out
    code = main(["verify", str(tmp_path / "rules.yar"), "--bundle", str(tmp_path / "bundle.json"),
                 "--trust-root", str(root), "--server", live.url, "--customer", "nobody",
                 "--json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["withholding"]["newer_withheld"] is False

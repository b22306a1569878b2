"""Command-line items against a real gateway: ``submit --artifacts``, ``--token``, exit 3,
``log search --server`` and ``verify --server`` on the release it just verified."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from clearance.attest import create_policy
from clearance.cli import main
from clearance.policy.example import us_restriction_policy

from .support import RULES, Live, device_client, entitle, make_release
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

    # verify --customer evaluates the policy, the entitlement and the rollout offline, so the
    # endpoint uses its own bundle (with its entitlement) and signs its requests with its
    # device key; --server then checks that nothing newer is withheld without a reason.
    device = entitle(live, "de-city", "DE")
    policy = us_restriction_policy()
    with live.client("policy") as authority:
        authority.submit(create_policy(policy.to_dict(), live.world.policy).to_bytes())
    with device_client(live, device) as endpoint:
        (tmp_path / "bundle.json").write_bytes(endpoint.bundle(sha, "de-city"))
    (tmp_path / "device.key").write_text(device.to_string() + "\n")
    (tmp_path / "rules.yar").write_bytes(RULES)
    verify = ["verify", str(tmp_path / "rules.yar"), "--bundle", str(tmp_path / "bundle.json"),
              "--trust-root", str(root), "--server", live.url, "--customer", "de-city",
              "--device-key", str(tmp_path / "device.key")]  # fmt: skip
    code = main([*verify, "--state", str(tmp_path / "state")])
    out = capsys.readouterr().out
    assert code == 0
    assert "no newer approved" in out and "allowed for de-city" in out
    code = main([*verify, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["withholding"]["newer_withheld"] is False
    assert doc["distribution"]["customer"] == "de-city"
    # Without its entitlement in the bundle, --customer is refused offline.
    with live.client(None) as anyone:
        (tmp_path / "public.json").write_bytes(anyone.bundle(sha))
    code = main([*verify[:3], str(tmp_path / "public.json"), *verify[4:]])
    assert code == 1 and "[entitlement]" in capsys.readouterr().err

"""``submit --server`` and ``bundle --server`` against a real gateway on 127.0.0.1, then ``verify``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from clearance.attest import Artifact, create_release, create_verdict
from clearance.cli import main
from clearance.demo.world import build_world
from clearance.gateway.server import RunningGateway


def test_submit_and_bundle_through_the_gateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world(tmp_path / "world", embedded_inspector=False, workers=0)
    content = b'rule demo { strings: $a = "EICAR" condition: $a }\n'
    artifact = tmp_path / "rules.yar"
    artifact.write_bytes(content)
    release = create_release(
        product=world.product,
        version="1.0.0",
        channel="stable",
        artifacts=[Artifact.from_file(artifact, "content")],
        signers=world.vendor,
    )
    release_file = tmp_path / "release.json"
    release_file.write_bytes(release.to_bytes())
    verdict_file = tmp_path / "verdict.json"
    verdict_file.write_bytes(
        create_verdict(release, "approved", signers=world.inspector).to_bytes()
    )
    # No witnesses in this world: the endpoint pins a root without a checkpoint age limit.
    root_file = tmp_path / "trust-root.json"
    root_file.write_text(replace(world.trust_root, max_checkpoint_age=None).to_json())

    with RunningGateway(world.data_dir, workers=0) as server:
        monkeypatch.setenv("CLEARANCE_TOKEN", world.token("vendor"))
        assert main(["submit", str(release_file), "--server", server.url, "--json"]) == 0
        receipt = json.loads(capsys.readouterr().out)
        assert receipt["sha256"] == release.sha256 and receipt["kind"] == "release"
        r = httpx.put(
            f"{server.url}/api/v1/artifacts/{hashlib.sha256(content).hexdigest()}",
            content=content,
            headers={"Authorization": f"Bearer {world.token('vendor')}"},
        )
        assert r.status_code == 201, r.text
        monkeypatch.setenv("CLEARANCE_TOKEN", world.token("inspector"))
        assert main(["submit", str(verdict_file), "--server", server.url]) == 0
        capsys.readouterr()
        bundle = tmp_path / "bundle.json"
        code = main(
            [
                "bundle",
                str(artifact),
                "--release",
                str(release_file),
                "--server",
                server.url,
                "--out",
                str(bundle),
            ]
        )
        assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    code = main(
        ["verify", str(artifact), "--bundle", str(bundle), "--trust-root", str(root_file), "--json"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["release_sha256"] == release.sha256
    # The pinned root WITH its 24 h age limit refuses: nothing dates this checkpoint.
    world_root = tmp_path / "world" / "trust-root.json"
    code = main(["verify", str(artifact), "--bundle", str(bundle), "--trust-root", str(world_root)])
    assert code == 1 and "[checkpoint-fresh]" in capsys.readouterr().err

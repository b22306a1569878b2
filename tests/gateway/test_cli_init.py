"""``clearance gateway init`` then ``clearance submit --server`` against ``clearance serve``'s app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearance.cli import main
from clearance.gateway.server import RunningGateway


def test_gateway_init_cli_then_submit_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = tmp_path / "keys"
    origin = "example.org/log"
    for name in (origin, "vendor", "inspector", "policy"):
        assert main(["keys", "generate", name, "--dir", str(keys)]) == 0
    log_key, log_pub = keys / f"{origin}.key", keys / f"{origin}.pub"  # keys/example.org/log.*
    root = tmp_path / "trust-root.json"
    assert (
        main(
            [
                "trust",
                "init",
                "--origin",
                origin,
                "--log-key",
                str(log_pub),
                "--vendor-key",
                str(keys / "vendor.pub"),
                "--inspector-key",
                str(keys / "inspector.pub"),
                "--policy-key",
                str(keys / "policy.pub"),
                "--out",
                str(root),
            ]
        )
        == 0
    )
    capsys.readouterr()
    data = tmp_path / "gw"
    assert (
        main(
            [
                "gateway",
                "init",
                "--data",
                str(data),
                "--trust-root",
                str(root),
                "--log-key",
                str(log_key),
                "--vendor",
                "vendor=agent",
                "--json",
            ]
        )
        == 0
    )
    tokens = json.loads(capsys.readouterr().out)["tokens"]
    assert set(tokens) == {"vendor", "inspector", "policy", "client", "operator"}
    # A second init on the same directory is refused with one line.
    assert (
        main(
            [
                "gateway",
                "init",
                "--data",
                str(data),
                "--trust-root",
                str(root),
                "--log-key",
                str(log_key),
            ]
        )
        == 2
    )
    assert "already a gateway data directory" in capsys.readouterr().err

    rules = tmp_path / "r.yar"
    rules.write_text('rule agent_demo { strings: $a = "agent-demo" condition: $a }\n')
    release = tmp_path / "release.json"
    assert (
        main(
            [
                "release",
                "create",
                "--product",
                "agent",
                "--version",
                "1.0.0",
                "--channel",
                "stable",
                "--key",
                str(keys / "vendor.key"),
                "--content",
                str(rules),
                "--out",
                str(release),
            ]
        )
        == 0
    )
    with RunningGateway(data, workers=0) as server:
        monkeypatch.delenv("CLEARANCE_TOKEN", raising=False)
        # No token: not authorised, exit 3 (a network/credentials problem, not a refusal).
        assert main(["submit", str(release), "--server", server.url]) == 3
        monkeypatch.setenv("CLEARANCE_TOKEN", tokens["vendor"])
        capsys.readouterr()
        assert main(["submit", str(release), "--server", server.url, "--json"]) == 0
        receipt = json.loads(capsys.readouterr().out)
        assert server.gateway.log.size == 1
        assert json.dumps(receipt)  # the submit command printed the gateway's receipt

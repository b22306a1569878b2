"""A client detects an update withheld without a logged reason (recomputed from the log)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from clearance.attest import create_policy
from clearance.client.withholding import WithheldWithoutReason, check_withholding
from clearance.gateway.store import ReleaseRow
from clearance.policy.example import us_restriction_policy

from .support import Live
from .test_flow import _approve, _entitlement


def _complete(live: Live, sha: str) -> None:
    deadline = time.monotonic() + 60
    with live.client(None) as anyone:
        while time.monotonic() < deadline:
            rollout = anyone.status(sha)["rollout"]
            if rollout and rollout["status"] == "complete":
                return
            time.sleep(0.1)
    raise AssertionError("rollout did not complete")


def test_explained_and_unexplained_withholding(live: Live, tmp_path: Path) -> None:
    old = _approve(live, tmp_path, "1.0.0")
    new = _approve(live, tmp_path, "1.1.0")
    _complete(live, old)
    _complete(live, new)
    with live.client("vendor") as vendor:
        vendor.submit(_entitlement(live, "us-hospital", "US", "2023-01-01", "2099-01-01"))
        vendor.submit(_entitlement(live, "de-city", "DE", "2023-01-01", "2099-01-01"))
    policy = us_restriction_policy()
    with live.client("policy") as authority:
        logged = authority.submit(
            create_policy(policy.to_dict(), live.world.policy, name=policy.name).to_bytes()
        )
    root = live.world.trust_root
    product = live.world.product
    with live.client("client") as client:
        fine = check_withholding(client, root, product, "stable", "de-city")
        assert not fine.withheld and fine.offered == new
        explained = check_withholding(client, root, product, "stable", "us-hospital")
        assert explained.withheld and explained.explained_by == f"policy@{logged['log_index']}"

        gateway = live.server.gateway
        honest_offer = gateway.offer

        # A gateway that withholds the newest release from de-city, claiming a policy reason
        # that the logged policy and entitlements do not support.
        def lying_offer(row: ReleaseRow, customer: str) -> dict[str, Any]:
            if row.sha256 == new and customer == "de-city":
                return {
                    "allowed": False,
                    "by": "policy",
                    "rule": "no-updates",
                    "reason": "no updates",
                    "policy_log_index": logged["log_index"],
                }
            return honest_offer(row, customer)

        gateway.offer = lying_offer  # type: ignore[method-assign]
        with pytest.raises(WithheldWithoutReason, match="allow it"):
            check_withholding(client, root, product, "stable", "de-city")

        # A gateway that hides the newest approved release altogether.
        gateway.offer = honest_offer  # type: ignore[method-assign]
        honest_approved = gateway.store.approved_releases

        def hiding(product: str, channel: str, limit: int = 50) -> list[ReleaseRow]:
            return [r for r in honest_approved(product, channel, limit) if r.sha256 != new]

        gateway.store.approved_releases = hiding  # type: ignore[method-assign]
        with pytest.raises(WithheldWithoutReason, match="hidden"):
            check_withholding(client, root, product, "stable", "de-city")


def test_clearance_verify_server_reports_withholding(
    live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import dataclasses
    import json

    from clearance.cli import main

    from .support import RULES

    old = _approve(live, tmp_path, "1.0.0")
    _complete(live, old)
    with live.client("vendor") as vendor:
        vendor.submit(_entitlement(live, "de-city", "DE", "2023-01-01", "2099-01-01"))
    with live.client(None) as anyone:
        (tmp_path / "bundle.json").write_bytes(anyone.bundle(old))
    (tmp_path / "rules.yar").write_bytes(RULES)
    root = tmp_path / "trust-root.json"
    # This world has no witnesses, so the client pins a root that does not bound
    # checkpoint age (freshness comes from witness cosignatures; see tests/demo).
    root.write_bytes(dataclasses.replace(live.world.trust_root, max_checkpoint_age=None).to_bytes())
    monkeypatch.setenv("CLEARANCE_TOKEN", live.world.token("client"))
    argv = [
        "verify",
        str(tmp_path / "rules.yar"),
        "--bundle",
        str(tmp_path / "bundle.json"),
        "--trust-root",
        str(root),
        "--server",
        live.url,
        "--json",
    ]
    assert main([*argv, "--customer", "de-city"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["withholding"]["withheld"] is False
    assert main(argv) == 2  # --server without --customer is bad usage

    # A newer release is approved, but the gateway "forgets" it for de-city.
    new = _approve(live, tmp_path, "1.1.0")
    _complete(live, new)
    gateway = live.server.gateway
    honest = gateway.offer
    gateway.offer = lambda row, customer: (  # type: ignore[method-assign]
        {"allowed": False, "by": "rollout", "rule": "ring", "reason": "not your ring"}
        if row.sha256 == new
        else honest(row, customer)
    )
    assert main([*argv, "--customer", "de-city"]) == 1
    assert "logged rollout does not say so" in capsys.readouterr().err

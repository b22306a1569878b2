"""A client detects an update withheld without a logged reason (recomputed from the log)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from clearance.attest import create_policy
from clearance.client.withholding import WithheldWithoutReason, check_withholding
from clearance.gateway.store import ReleaseRow
from clearance.policy.commitment import EntitlementOpening
from clearance.policy.example import us_restriction_policy

from .support import Live, device_client, entitle
from .test_flow import _approve


def _opening(live: Live, customer: str) -> EntitlementOpening:
    """The customer's own copy of its opening (here: from the gateway that holds it)."""
    (_, opening), *_ = live.server.gateway.customers.openings.of(customer)
    return opening


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
    us_device = entitle(live, "us-hospital", "US")
    de_device = entitle(live, "de-city", "DE")
    policy = us_restriction_policy()
    with live.client("policy") as authority:
        logged = authority.submit(
            create_policy(policy.to_dict(), live.world.policy, name=policy.name).to_bytes()
        )
    root = live.world.trust_root
    product = live.world.product
    de_opening = _opening(live, "de-city")
    with device_client(live, us_device) as us_client:
        explained = check_withholding(
            us_client, root, product, "stable", "us-hospital", [_opening(live, "us-hospital")]
        )
        assert explained.withheld and explained.explained_by == f"policy@{logged['log_index']}"
    with device_client(live, de_device) as client:
        fine = check_withholding(client, root, product, "stable", "de-city", [de_opening])
        assert not fine.withheld and fine.offered == new

        gateway = live.server.gateway
        honest_offer = gateway.reads.offer

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

        gateway.reads.offer = lying_offer  # type: ignore[method-assign]
        with pytest.raises(WithheldWithoutReason, match="allow it"):
            check_withholding(client, root, product, "stable", "de-city", [de_opening])

        # A gateway that hides the newest approved release altogether.
        gateway.reads.offer = honest_offer  # type: ignore[method-assign]
        honest_approved = gateway.store.approved_releases

        def hiding(product: str, channel: str, limit: int = 50) -> list[ReleaseRow]:
            return [r for r in honest_approved(product, channel, limit) if r.sha256 != new]

        gateway.store.approved_releases = hiding  # type: ignore[method-assign]
        with pytest.raises(WithheldWithoutReason, match="hidden"):
            check_withholding(client, root, product, "stable", "de-city", [de_opening])


def test_clearance_verify_server_reports_withholding(
    live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import dataclasses

    from clearance.cli import main

    from .support import RULES

    old = _approve(live, tmp_path, "1.0.0")
    _complete(live, old)
    device = entitle(live, "de-city", "DE")
    policy = us_restriction_policy()
    with live.client("policy") as authority:
        authority.submit(create_policy(policy.to_dict(), live.world.policy).to_bytes())
    # The endpoint's own bundle: the policy in force, its entitlement and opening, the rollout.
    with device_client(live, device) as endpoint:
        (tmp_path / "bundle.json").write_bytes(endpoint.bundle(old, "de-city"))
    (tmp_path / "device.key").write_text(device.to_string() + "\n")
    (tmp_path / "rules.yar").write_bytes(RULES)
    root = tmp_path / "trust-root.json"
    # This world has no witnesses, so the client pins a root that does not bound
    # checkpoint age (freshness comes from witness cosignatures; see tests/demo).
    root.write_bytes(dataclasses.replace(live.world.trust_root, max_checkpoint_age=None).to_bytes())
    argv = [
        "verify",
        str(tmp_path / "rules.yar"),
        "--bundle",
        str(tmp_path / "bundle.json"),
        "--trust-root",
        str(root),
        "--server",
        live.url,
        "--device-key",
        str(tmp_path / "device.key"),
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
    honest = gateway.reads.offer
    gateway.reads.offer = lambda row, customer: (  # type: ignore[method-assign]
        {"allowed": False, "by": "rollout", "rule": "ring", "reason": "not your ring"}
        if row.sha256 == new
        else honest(row, customer)
    )
    assert main([*argv, "--customer", "de-city"]) == 1
    assert "logged rollout does not say so" in capsys.readouterr().err

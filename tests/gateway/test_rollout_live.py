"""Install-health reports halt a rollout; only a signed decision resumes it; all logged."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from clearance.attest import Statement, Subject
from clearance.attest.statement import HEALTH_V1, ROLLOUT_V1
from clearance.errors import Refused
from clearance.gateway.errors import GatewayRefused
from clearance.gateway.rollout import Ring, customer_bucket
from clearance.keys import Signer

from .support import Live, start_live
from .test_flow import _approve, _entitlement

SLOW_RINGS = (
    Ring("canary", 1.0, timedelta(hours=1), failure_threshold=0.3, min_reports=2),
    Ring("broad", 100.0, timedelta(0)),
)


def _canary_customers(count: int) -> list[str]:
    found = [f"site-{n}" for n in range(5000) if customer_bucket(f"site-{n}") < 1.0]
    return found[:count]


def _health(live: Live, release: str, customer: str, status: str, signer: Signer) -> bytes:
    body = {
        "release": release,
        "customer": customer,
        "status": status,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "nonce": str(time.time_ns()),
    }
    return Statement((Subject("release", release),), HEALTH_V1, body).sign([signer]).to_bytes()


def test_bad_canary_health_halts_until_signed_resume(tmp_path: Path) -> None:
    with start_live(tmp_path / "world", SLOW_RINGS) as live:
        sha = _approve(live, tmp_path, "1.0.0")
        canary_a, canary_b = _canary_customers(2)
        outside = next(f"far-{n}" for n in range(500) if customer_bucket(f"far-{n}") > 50)
        with live.client("vendor") as vendor:
            for customer in (canary_a, canary_b, outside):
                vendor.submit(_entitlement(live, customer, "DE", "2024-01-01", "2099-01-01"))
        with live.client("client") as client:
            assert client.latest(live.world.product, "stable", canary_a)["offered"]["sha256"] == sha
            far = client.latest(live.world.product, "stable", outside)
            assert far["withheld"] and far["reason"]["by"] == "rollout"
            assert far["reason"]["rule"] == "ring"
            # A report signed by a key not registered for the customer is refused.
            with pytest.raises(GatewayRefused):
                client.submit(_health(live, sha, canary_a, "failed", live.world.vendor))
            via_alias = httpx.post(
                f"{live.url}/api/v1/health-reports",
                content=_health(live, sha, canary_a, "failed", live.world.client),
                headers={"Authorization": f"Bearer {live.world.token('client')}"},
            )
            assert via_alias.status_code == 201, via_alias.text
            first = via_alias.json()
            assert first["halted_log_index"] is None  # one report is not enough evidence
            second = client.submit(_health(live, sha, canary_b, "engine-crash", live.world.client))
            assert isinstance(second["halted_log_index"], int)
            assert second["rollout"]["status"] == "halted"
            halted = client.latest(live.world.product, "stable", canary_a)
            assert halted["withheld"] and halted["reason"]["rule"] == "halted"
            assert halted["reason"]["transition_log_index"] == second["halted_log_index"]
            with pytest.raises(Refused, match="halted"):
                client.download(sha, "rules.yar", canary_a)
        resume = Statement(
            (Subject("release", sha),),
            ROLLOUT_V1,
            {"action": "resume", "release": sha, "reason": "crash explained: bad test host"},
        )
        with live.client("vendor") as vendor, pytest.raises(GatewayRefused):
            vendor.submit(resume.sign([live.world.vendor]).to_bytes())  # vendors cannot resume
        with live.client("inspector") as inspector:
            receipt = inspector.submit(resume.sign([live.world.inspector]).to_bytes())
        assert receipt["kind"] == "rollout-decision"
        status = httpx.get(f"{live.url}/api/v1/submissions/{sha}").json()
        events = [(t["event"], t["ring"]) for t in status["transitions"]]
        assert events == [("started", "canary"), ("halted", "canary"), ("resumed", "canary")]
        assert status["transitions"][-1]["evidence"]["decision_sha256"] == receipt["sha256"]
        assert status["rollout"]["status"] == "active"
        with live.client("client") as client:
            assert client.download(sha, "rules.yar", canary_a)

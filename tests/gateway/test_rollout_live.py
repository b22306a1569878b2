"""Install-health reports halt a rollout; only a signed decision resumes it; all logged."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from clearance.attest import Statement, Subject
from clearance.attest.statement import HEALTH_V1, ROLLOUT_V1
from clearance.errors import BadInput, Refused
from clearance.gateway.errors import GatewayRefused
from clearance.gateway.rollout import Ring, customer_bucket
from clearance.keys import Signer
from clearance.policy.rollout_statements import HealthReport

from .support import device_client, entitle, start_live
from .test_flow import _approve

SLOW_RINGS = (
    Ring("canary", 1.0, timedelta(hours=1), failure_threshold=0.3, min_reports=2),
    Ring("broad", 100.0, timedelta(0)),
)


def _canary_customers(count: int) -> list[str]:
    found = [f"site-{n}" for n in range(5000) if customer_bucket(f"site-{n}") < 1.0]
    return found[:count]


def _health(release: str, status: str, device: Signer, ring: str = "canary") -> bytes:
    return HealthReport(release, ring, status).sign(device).to_bytes()


def test_bad_canary_health_halts_until_signed_resume(tmp_path: Path) -> None:
    with start_live(tmp_path / "world", SLOW_RINGS) as live:
        sha = _approve(live, tmp_path, "1.0.0")
        canary_a, canary_b = _canary_customers(2)
        outside = next(f"far-{n}" for n in range(500) if customer_bucket(f"far-{n}") > 50)
        devices = {c: entitle(live, c, "DE", "2024-01-01") for c in (canary_a, canary_b, outside)}
        with device_client(live, devices[canary_a]) as client:
            assert client.latest(live.world.product, "stable", canary_a)["offered"]["sha256"] == sha
        with device_client(live, devices[outside]) as far_client:
            far = far_client.latest(live.world.product, "stable", outside)
            assert far["withheld"] and far["reason"]["by"] == "rollout"
            assert far["reason"]["rule"] == "ring"
        with live.client(None) as anyone:
            # A report signed by a key no entitlement names is refused.
            with pytest.raises(GatewayRefused, match="no customer"):
                anyone.submit(_health(sha, "failed", live.world.vendor))
            # A report that names the customer in clear is refused: reports are logged.
            named = Statement(
                (Subject("release", sha),),
                HEALTH_V1,
                {"release": sha, "ring": "canary", "status": "failed", "customer": canary_a},
            ).sign([devices[canary_a]])
            with pytest.raises(BadInput, match="must not name the customer"):
                anyone.submit(named.to_bytes())
            via_alias = httpx.post(
                f"{live.url}/api/v1/health-reports",
                content=_health(sha, "failed", devices[canary_a]),
            )
            assert via_alias.status_code == 201, via_alias.text
            first = via_alias.json()
            assert first["halted_log_index"] is None  # one device is not enough evidence
            second = anyone.submit(_health(sha, "engine-crash", devices[canary_b]))
            assert isinstance(second["halted_log_index"], int)
            assert second["rollout"]["status"] == "halted"
        with device_client(live, devices[canary_a]) as client:
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
        with device_client(live, devices[canary_a]) as client:
            assert client.download(sha, "rules.yar", canary_a)

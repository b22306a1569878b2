"""Issue 12 case 4 on a live gateway: who is who, and health counted per device.

* a customer's endpoints authenticate as that customer (device-signed requests); a shared
  token plus ``?customer=`` no longer picks a customer;
* health reports count once per reporting device per window;
* a ring advances only after enough distinct devices reported healthy after its soak
  time, and silence counts as failure.

And issue 10 case 5: every transition is signed by the rollout key, the customer's bundle
verifies offline (``verify --customer``), and the auditor recomputes every transition.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from clearance.attest import Envelope, create_policy
from clearance.audit import AuditOptions, audit_log, log_source
from clearance.client import BundleVerifier
from clearance.gateway.client import GatewayClient
from clearance.gateway.errors import GatewayRefused
from clearance.gateway.rollout import Ring, customer_bucket
from clearance.keys import Signer
from clearance.policy.example import us_restriction_policy
from clearance.policy.rollout_statements import HealthReport

from .support import RULES, Live, device_client, entitle, start_live
from .test_flow import _approve

GATED = (
    Ring("canary", 1.0, timedelta(0), failure_threshold=0.3, min_reports=2, min_healthy=2,
         silence_after=timedelta(seconds=3)),
    Ring("broad", 100.0, timedelta(0), failure_threshold=0.3, min_reports=2, min_healthy=0),
)  # fmt: skip


def _canary(count: int, prefix: str = "site") -> list[str]:
    return [f"{prefix}-{n}" for n in range(20_000) if customer_bucket(f"{prefix}-{n}") < 1.0][
        :count
    ]


def _wait(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def _status(live: Live, sha: str) -> str:
    with live.client(None) as anyone:
        return str(anyone.status(sha)["rollout"]["status"])


def _report(live: Live, sha: str, device: Signer, status: str) -> dict[str, object]:
    with live.client(None) as anyone:
        return anyone.submit(HealthReport(sha, "canary", status).sign(device).to_bytes())


def test_customer_query_parameter_cannot_pick_another_customer(tmp_path: Path) -> None:
    """``?customer=us-hospital`` with cust-324's key is refused, and the shared client token
    with ``?customer=`` no longer reads anyone's offer or entitlements."""
    with start_live(tmp_path / "w") as live:
        _approve(live, tmp_path, "1.0.0")
        entitle(live, "us-hospital", "US")
        other = entitle(live, "cust-324", "DE")
        product = live.world.product
        with device_client(live, other) as client:
            assert client.latest(product, "stable", "cust-324")["customer"] == "cust-324"
            with pytest.raises(GatewayRefused, match="another customer"):
                client.latest(product, "stable", "us-hospital")
            with pytest.raises(GatewayRefused, match="another customer"):
                client.entitlements("us-hospital")
        url = f"{live.url}/api/v1/updates/latest?product={product}&channel=stable"
        token = {"Authorization": f"Bearer {live.world.token('client')}"}
        for who in ("us-hospital", "cust-324"):
            assert httpx.get(f"{url}&customer={who}", headers=token).status_code == 403
        # A forged or replayed device signature does not pass either.
        forged = Signer.generate(other.name)  # same name, another key: another key id
        with (
            GatewayClient(live.url, device=forged) as forger,
            pytest.raises(GatewayRefused, match="named by no entitlement"),
        ):
            forger.latest(product, "stable", "cust-324")


def test_forty_ok_reports_from_one_key_do_not_outvote_five_failures(tmp_path: Path) -> None:
    with start_live(tmp_path / "w", GATED) as live:
        sha = _approve(live, tmp_path, "1.0.0")
        customers = _canary(6)
        devices = [entitle(live, c, "DE") for c in customers]
        for _ in range(40):
            _report(live, sha, devices[0], "ok")
        for device in devices[1:]:
            _report(live, sha, device, "failed")
        assert _status(live, sha) == "halted"


def test_five_failures_from_one_key_do_not_halt_for_everyone(tmp_path: Path) -> None:
    rings = (
        Ring("canary", 1.0, timedelta(0), failure_threshold=0.3, min_reports=2, min_healthy=4),
        GATED[1],
    )
    with start_live(tmp_path / "w", rings) as live:
        sha = _approve(live, tmp_path, "1.0.0")
        devices = [entitle(live, c, "DE") for c in _canary(5)]
        for device in devices[:3]:
            _report(live, sha, device, "ok")
        for _ in range(5):
            _report(live, sha, devices[3], "failed")
        # One failing device of four (25 %) is within the 30 % threshold: no halt.
        assert _status(live, sha) == "active"
        _report(live, sha, devices[4], "ok")  # the fourth healthy device: the ring advances
        _wait(lambda: _status(live, sha) == "complete")


def test_ring_advances_with_no_health_report_is_refused_and_silence_halts(
    tmp_path: Path,
) -> None:
    """Canaries that crash and never report do not look healthy: after the soak the ring
    waits for healthy devices, and after the silence window it halts."""
    with start_live(tmp_path / "w", GATED) as live:
        sha = _approve(live, tmp_path, "1.0.0")
        time.sleep(1.5)
        assert _status(live, sha) == "active"  # soak (0 s) passed, but nobody reported
        _wait(lambda: _status(live, sha) == "halted", timeout=15)
        with live.client(None) as anyone:
            last = anyone.status(sha)["transitions"][-1]
        assert last["event"] == "halted" and "silence" in last["reason"]


def test_signed_rollout_verifies_offline_and_the_auditor_recomputes_it(tmp_path: Path) -> None:
    with start_live(tmp_path / "w", GATED) as live:
        sha = _approve(live, tmp_path, "1.0.0")
        customers = _canary(2)
        devices = [entitle(live, c, "DE") for c in customers]
        policy = us_restriction_policy()
        with live.client("policy") as authority:
            authority.submit(create_policy(policy.to_dict(), live.world.policy).to_bytes())
        for device in devices:
            _report(live, sha, device, "ok")
        _wait(lambda: _status(live, sha) == "complete")
        gateway = live.server.gateway
        transitions = [i for i, _ in gateway.store.transitions(sha)]
        assert len(transitions) == 3
        for index in transitions:  # every transition is a statement signed by the rollout key
            envelope = Envelope.from_bytes(gateway.reads.log_entry(index))
            envelope.verify(live.world.trust_root.rollout.keys, 1)
        with device_client(live, devices[0]) as endpoint:
            bundle = endpoint.bundle(sha, customers[0])
        # No witnesses in this world: the pinned root does not bound checkpoint age.
        verifier = BundleVerifier(replace(live.world.trust_root, max_checkpoint_age=None))
        result = verifier.verify(hashlib.sha256(RULES).hexdigest(), bundle, customer=customers[0])
        assert result.distribution is not None
        assert result.distribution.rollout.startswith("complete")
        report = audit_log(
            AuditOptions(
                trust_root=live.world.trust_root,
                source=log_source(live.world.data_dir / "log", None),
                state_dir=tmp_path / "audit",
            )
        )
        rules = [f.rule_id for f in report.findings]
        assert "audit.rollout-unjustified" not in rules and "audit.bad-signature" not in rules
        # The logged entitlements and health reports do not name the customers.
        for index in range(gateway.log.size):
            entry = gateway.reads.log_entry(index)
            assert all(c.encode() not in entry for c in customers)

"""A real gateway (uvicorn on 127.0.0.1, SQLite, real keys) per test that asks for one."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from clearance.attest import Artifact, Envelope, create_release
from clearance.demo.world import World, build_world
from clearance.gateway.client import GatewayClient
from clearance.gateway.rollout import Ring
from clearance.gateway.server import RunningGateway
from clearance.keys import Signer

#: No healthy-device gate (min_healthy=0): these tests are about other things; the gate
#: itself is tested in test_rollout_identities.py.
FAST_RINGS = (
    Ring("canary", 1.0, timedelta(0), failure_threshold=0.3, min_reports=2, min_healthy=0),
    Ring("early", 10.0, timedelta(0), failure_threshold=0.3, min_reports=2, min_healthy=0),
    Ring("broad", 100.0, timedelta(0), failure_threshold=0.3, min_reports=2, min_healthy=0),
)

RULES = b"""rule demo_eicar_test_file
{
    meta:
        description = "EICAR anti-virus test file"
    strings:
        $eicar = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE"
    condition:
        $eicar
}
"""


@dataclass
class Live:
    world: World
    server: RunningGateway

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, role: str | None) -> GatewayClient:
        return GatewayClient(self.url, None if role is None else self.world.token(role))


def make_release(
    world: World, tmp: Path, version: str, content: bytes = RULES, product: str | None = None
) -> tuple[Envelope, bytes]:
    path = tmp / f"rules-{version}.yar"
    path.write_bytes(content)
    artifact = Artifact.from_file(path, "content", name="rules.yar")
    env = create_release(
        product=product or world.product,
        version=version,
        channel="stable",
        artifacts=[artifact],
        signers=world.vendor,
    )
    assert artifact.sha256 == hashlib.sha256(content).hexdigest()
    return env, content


@contextmanager
def start_live(root: Path, rings: tuple[Ring, ...] = FAST_RINGS, **kwargs: Any) -> Iterator[Live]:
    world = build_world(root, rings=rings, **{"embedded_inspector": False, **kwargs})
    server = RunningGateway(world.data_dir, workers=kwargs.get("workers", 0))
    try:
        yield Live(world, server)
    finally:
        server.stop()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    with start_live(tmp_path / "world") as running:
        yield running


def entitle(
    live: Live,
    customer: str,
    jurisdiction: str,
    start: str = "2023-01-01",
    end: str = "2099-01-01",
    device: Signer | None = None,
    product: str | None = None,
) -> Signer:
    """The vendor logs a committed entitlement and hands the gateway its opening; returns
    the customer's device key (named by the entitlement)."""
    from clearance.policy import Entitlement
    from clearance.policy._time import parse_time
    from clearance.policy.commitment import new_opening, sign_entitlement

    # Device key names are public (key ids sign logged health reports): keep them opaque.
    device = device or Signer.generate(
        f"device-{hashlib.sha256(customer.encode()).hexdigest()[:8]}"
    )
    ent = Entitlement(
        customer,
        jurisdiction,
        product or live.world.product,
        parse_time(start, "start"),
        parse_time(end, "end"),
        (device.verifier.to_string(),),
    )
    opening = new_opening(ent)
    envelope = sign_entitlement(opening, [live.world.vendor])
    with live.client("vendor") as vendor:
        vendor.submit_entitlement(envelope.to_bytes(), opening.to_dict())
    return device


def device_client(live: Live, device: Signer) -> GatewayClient:
    """A customer's endpoint: its calls are signed with its device key (no shared token)."""
    return GatewayClient(live.url, None, device=device)

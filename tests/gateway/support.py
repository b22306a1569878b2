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

FAST_RINGS = (
    Ring("canary", 1.0, timedelta(0), failure_threshold=0.3, min_reports=2),
    Ring("early", 10.0, timedelta(0), failure_threshold=0.3, min_reports=2),
    Ring("broad", 100.0, timedelta(0), failure_threshold=0.3, min_reports=2),
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

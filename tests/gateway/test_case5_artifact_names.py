"""Issue 12, case 5: an artifact named ``../../evil.yar``.

Refused once, at admission (the statement's ``Artifact``); a store that holds
one from before still starts and says which entry is bad.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from clearance.attest import Artifact, Envelope, StatementFormatError, sign_envelope
from clearance.attest.statement import PAYLOAD_TYPE
from clearance.demo.world import World, build_world
from clearance.gateway import rollout
from clearance.gateway._log import GatewayLog
from clearance.gateway.server import RunningGateway
from clearance.gateway.service import Gateway
from gateway.support import FAST_RINGS, make_release

BAD_NAMES = [
    "../../evil.yar",
    "rules/../../evil.yar",
    "/etc/evil.yar",
    "C:/evil.yar",
    "c:evil.yar",
    "rules\\..\\evil.yar",
    "rules//evil.yar",
    "./evil.yar",
    "rules/",
    "..",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_case5_bad_artifact_name_is_refused_by_the_statement(name: str) -> None:
    with pytest.raises(StatementFormatError, match="artifact name"):
        Artifact(name, "0" * 64, 1, "content")


def test_case5_clean_relative_names_are_admitted() -> None:
    for name in ("rules.yar", "rules/v2/main.yar", "a..b.yar", "dir.d/x"):
        assert Artifact(name, "0" * 64, 1, "content").name == name


def _renamed(world: World, tmp: Path, name: str) -> Envelope:
    """A vendor-signed release whose artifact is named ``name`` (built around the model's
    check, as an old client or an attacker would)."""
    good, _ = make_release(world, tmp, "1.0.0")
    statement = json.loads(good.payload)
    statement["subject"][0]["name"] = name
    statement["predicate"]["artifacts"][0]["name"] = name
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    return sign_envelope(PAYLOAD_TYPE, payload, [world.vendor])


def test_case5_gateway_refuses_path_traversal_name_at_admission(tmp_path: Path) -> None:
    world = build_world(tmp_path / "world", rings=FAST_RINGS, embedded_inspector=False)
    evil = _renamed(world, tmp_path, "../../evil.yar")
    with RunningGateway(world.data_dir, workers=0) as server:
        response = httpx.post(
            f"{server.url}/api/v1/submissions",
            content=evil.to_bytes(),
            headers={"authorization": f"Bearer {world.token('vendor')}"},
            timeout=30,
        )
        assert response.status_code == 400
        assert "../../evil.yar" in response.text and ".." in response.text


def test_case5_store_with_bad_name_from_before_still_starts_and_names_the_entry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = build_world(tmp_path / "world", rings=FAST_RINGS, embedded_inspector=False)
    good, _ = make_release(world, tmp_path, "0.9.0")
    log = GatewayLog.open(world.data_dir / "log")
    # Admitted before the check existed: straight into the log.
    (bad_index,) = log.append([_renamed(world, tmp_path, "../../evil.yar").to_bytes()])
    log.append([good.to_bytes()])
    log.close()
    with (
        caplog.at_level(logging.ERROR, logger="clearance.gateway"),
        RunningGateway(world.data_dir, workers=0) as server,
    ):
        assert httpx.get(f"{server.url}/trust-root.json", timeout=10).status_code == 200
        assert server.gateway.store.release(good.sha256) is not None  # later entries indexed
    message = "\n".join(r.getMessage() for r in caplog.records)
    assert f"log entry {bad_index} cannot be indexed" in message
    assert "../../evil.yar" in message


def test_case5_indexed_bad_release_does_not_stop_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The other form of "from before": the index already holds an approved, fully rolled
    out release with a bad name (the TUF publisher used to fail on it at every start)."""
    world = build_world(tmp_path / "world", rings=FAST_RINGS, embedded_inspector=False)
    good, _ = make_release(world, tmp_path, "1.0.0")
    gateway = Gateway.open(world.data_dir)
    try:
        gateway.submit(good.to_bytes(), "vendor")
        row = gateway.store.release(good.sha256)
        assert row is not None
        log_index = row.log_index
        state, _ = rollout.start(good.sha256, FAST_RINGS, datetime.now(UTC))
        done = rollout.RolloutState(
            state.release, state.rings, 2, rollout.COMPLETE, state.ring_entered, state.health
        )
        gateway.store.put_rollout(good.sha256, done.to_dict())
    finally:
        gateway.close()
    artifacts = [{"name": "../../evil.yar", "sha256": "0" * 64, "size": 1, "kind": "content"}]
    with sqlite3.connect(world.data_dir / "gateway.sqlite") as db:
        db.execute(
            "UPDATE releases SET artifacts=?, state='approved' WHERE sha256=?",
            (json.dumps(artifacts), good.sha256),
        )
    with caplog.at_level(logging.ERROR, logger="clearance.gateway"):
        restarted = Gateway.open(world.data_dir)  # used to raise here, every time
        restarted.close()
    message = "\n".join(r.getMessage() for r in caplog.records)
    assert f"log entry {log_index}" in message and "../../evil.yar" in message
    assert not (world.data_dir / "evil.yar").exists()

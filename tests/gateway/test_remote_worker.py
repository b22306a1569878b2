"""Scale-out shape: the gateway enqueues into PostgreSQL; an inspection worker that shares
nothing but the queue and HTTP (its own key, its own disk) inspects and submits the verdict."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from _postgres import scratch_database
from clearance.attest import Artifact, create_release
from clearance.cli import main
from clearance.gateway.client import GatewayClient
from clearance.gateway.errors import GatewayRefused
from clearance.gateway.queue_postgres import PostgresJobQueue

from .support import RULES, start_live


@pytest.mark.postgres
def test_remote_worker_inspects_through_postgres_and_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = "inspections"
    with (
        scratch_database("clearance_i13jobs_") as dsn,
        start_live(tmp_path / "w", job_queue_dsn=dsn, job_queue_table=table) as live,
    ):
        rules = tmp_path / "rules.yar"
        rules.write_bytes(RULES)
        env = create_release(
            product=live.world.product,
            version="1.0.0",
            channel="stable",
            artifacts=[Artifact.from_file(rules, "content")],
            signers=live.world.vendor,
        )
        with live.client("vendor") as vendor:
            vendor.submit(env.to_bytes())
            vendor.upload_artifact(RULES)
            assert vendor.status(env.sha256)["release"]["state"] == "inspecting"
        # The worker's own connections: a queue handle and an inspector-token client.
        queue = PostgresJobQueue(dsn, table)
        digest = Artifact.from_file(rules, "content").sha256
        with GatewayClient(live.url) as no_token, pytest.raises(GatewayRefused):
            no_token.artifact(digest)  # artifacts go to inspectors only
        # The worker as an operator runs it: `clearance gateway worker --once`.
        monkeypatch.setenv("CLEARANCE_TOKEN", live.world.token("inspector"))
        code = main(
            [
                "gateway",
                "worker",
                "--server",
                live.url,
                "--queue-dsn",
                dsn,
                "--queue-table",
                table,
                "--key",
                str(live.world.keys_dir / "inspector.key"),
                "--trust-root",
                str(tmp_path / "w" / "trust-root.json"),
                "--once",
            ]
        )
        assert code == 0
        assert queue.counts()["done"] == 1
        queue.close()
        deadline = time.monotonic() + 10
        with live.client(None) as anyone:
            while time.monotonic() < deadline:
                status = anyone.status(env.sha256)
                if status["release"]["state"] == "approved":
                    break
                time.sleep(0.1)
        assert status["release"]["state"] == "approved", status
        assert status["job"]["state"] == "done" and status["verdicts"][0]["inspector"] == (
            "inspector"
        )

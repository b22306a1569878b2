"""Two replicas on separate data directories (as on two machines) over one PostgreSQL.

Replica A's data directory is the one ``gateway init --database`` made; B's is
a copy of it taken before either started (configuration and keys only, as an
operator copies them to a second machine), so nothing the gateways write at
run time is shared through files.  A has no inspection worker and B has one,
so B can only inspect what A received through the database.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest

from _postgres import scratch_database
from clearance.attest import Artifact, Release, Statement, Subject, canonical_json, create_release
from clearance.attest.trust_root import TrustRoot
from clearance.client.verifier import verify_bundle
from clearance.demo.cluster import Replica
from clearance.demo.world import World, build_world
from clearance.gateway.health_batch import HealthAggregate
from clearance.gateway.rollout import Ring, customer_bucket
from clearance.policy import ENTITLEMENT_PREDICATE_TYPE

from .support import RULES
from .test_health_bulk import _report

pytestmark = pytest.mark.postgres

T = TypeVar("T")

#: Reports of the canary ring never reach the halt threshold here (min_reports), and a
#: long soak keeps the release in canary while the reports arrive.
RINGS = (
    Ring("canary", 1.0, timedelta(hours=1), failure_threshold=0.5, min_reports=1000),
    Ring("broad", 100.0, timedelta(0)),
)


def _until(what: str, probe: Callable[[], T | None], timeout: float = 300.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _configure(data_dir: Path, **changes: object) -> None:
    path = data_dir / "gateway.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}, indent=2))


def _entitlement(world: World, customer: str) -> bytes:
    body = {
        "customer": customer,
        "jurisdiction": "DE",
        "product": world.product,
        "start": "2023-01-01",
        "end": "2099-01-01",
        "client_keys": [world.client.verifier.to_string()],
    }
    subject = Subject(customer, hashlib.sha256(canonical_json(body)).hexdigest())
    envelope = Statement((subject,), ENTITLEMENT_PREDICATE_TYPE, body).sign([world.vendor])
    return envelope.to_bytes()


def test_replicas_on_separate_data_directories_serve_one_gateway(tmp_path: Path) -> None:
    with scratch_database("clearance_i13pg_") as dsn:
        world = build_world(
            tmp_path / "world", rings=RINGS, database=dsn, embedded_inspector=True, workers=1
        )
        a_dir, b_dir = world.data_dir, tmp_path / "replica-b"
        _configure(a_dir, health_window_seconds=1)
        shutil.copytree(a_dir, b_dir)
        _configure(a_dir, workers=0)  # only B inspects
        a = Replica(a_dir)
        b = Replica(b_dir)
        try:
            _exercise(world, dsn, a, b, b_dir, tmp_path)
        finally:
            a.kill()
            b.kill()
        for data_dir in (a_dir, b_dir):  # nothing of the shared state went to local files
            for local in ("gateway.sqlite", "health.sqlite", "jobs.sqlite"):
                assert not (data_dir / local).exists(), data_dir / local


def _exercise(world: World, dsn: str, a: Replica, b: Replica, b_dir: Path, tmp: Path) -> None:
    vendor = {"Authorization": f"Bearer {world.token('vendor')}"}
    inspector = {"Authorization": f"Bearer {world.token('inspector')}"}
    path = tmp / "rules.yar"
    path.write_bytes(RULES)
    artifact = Artifact.from_file(path, "content", name="rules.yar")
    envelope = create_release(
        product=world.product,
        version="1.0.0",
        channel="stable",
        artifacts=[artifact],
        signers=world.vendor,
    )
    sha = envelope.sha256
    with httpx.Client(timeout=60) as http:
        # A release and its artifact go to A...
        answer = http.post(
            f"{a.url}/api/v1/submissions", content=envelope.to_bytes(), headers=vendor
        )
        assert answer.status_code == 201, answer.text
        artifact_sha = Release.from_envelope(envelope).artifacts[0].sha256
        put = http.put(f"{a.url}/api/v1/artifacts/{artifact_sha}", content=RULES, headers=vendor)
        assert put.status_code == 201, put.text
        # ...the artifact is downloadable from B...
        fetched = http.get(f"{b.url}/api/v1/artifacts/{artifact_sha}", headers=inspector)
        assert fetched.status_code == 200 and fetched.content == RULES
        assert (b_dir / "artifacts" / artifact_sha).read_bytes() == RULES  # B's cached copy
        missing = http.get(f"{b.url}/api/v1/artifacts/{'0' * 64}", headers=inspector)
        assert missing.status_code == 404

        # ...B's worker (A has none) inspects it and logs the verdict; B serves the bundle.
        def approved() -> bool | None:
            status.update(http.get(f"{b.url}/api/v1/submissions/{sha}").json())
            return True if status.get("release", {}).get("state") == "approved" else None

        status: dict[str, Any] = {}
        try:
            _until("the release approved", approved)
        except AssertionError:
            raise AssertionError(f"{status}; B: {b.stderr_tail[-5:]}") from None
        bundle = http.get(f"{b.url}/api/v1/bundles/{sha}")
        assert bundle.status_code == 200, bundle.text
        # No witnesses here: the bundle's freshness is not what this test is about.
        trust_root = replace(
            TrustRoot.from_bytes((b_dir / "trust-root.json").read_bytes()), max_checkpoint_age=None
        )
        result = verify_bundle(artifact_sha, bundle.content, trust_root)
        assert result.release_sha256 == sha and result.version == "1.0.0"
        assert http.get(f"{a.url}/api/v1/bundles/{sha}").status_code == 200

        # Health reports posted to A are aggregated by whichever replica leads.
        canary = [f"site-{n}" for n in range(5000) if customer_bucket(f"site-{n}") < 1.0][:2]
        for customer in canary:
            entitled = http.post(
                f"{a.url}/api/v1/submissions", content=_entitlement(world, customer), headers=vendor
            )
            assert entitled.status_code == 201, entitled.text
        reports = [_report(sha, canary[n % 2], "ok", world.client, n) for n in range(40)]
        posted = http.post(
            f"{a.url}/api/v1/health-reports/bulk",
            json={"reports": reports},
            headers={"Authorization": f"Bearer {world.token('client')}"},
        )
        assert posted.status_code == 201, posted.text
        assert posted.json()["new"] == 40

        def aggregate_index() -> int | None:
            with psycopg.connect(dsn) as conn:
                row = conn.execute(
                    "SELECT log_index FROM clr_gw_entries WHERE kind = 'health-aggregate'"
                ).fetchone()
            return None if row is None else int(row[0])

        index = _until("a logged health aggregate", aggregate_index)
        for replica in (a, b):
            logged = http.get(f"{replica.url}/api/v1/health-aggregates/{index}")
            assert logged.status_code == 200, logged.text
            assert len(logged.json()["reports"]) == 40
        entry = http.get(f"{b.url}/api/v1/health-aggregates/{index}").json()
        aggregate = HealthAggregate.from_dict(entry["aggregate"])
        assert aggregate.reports == 40 and dict(aggregate.counts)["ok"] == 40

"""A gateway assembled from its parts in memory: no server, no data-directory files for the
index or the queue, a clock the test moves.  The rules it runs are the same as served."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clearance.attest import Artifact, Envelope, Role, TrustRoot, create_release, create_verdict
from clearance.gateway._log import GatewayLog
from clearance.gateway.config import GatewayConfig
from clearance.gateway.queue import SQLiteJobQueue
from clearance.gateway.rollout import Ring
from clearance.gateway.service import Gateway
from clearance.gateway.states import ReleaseState
from clearance.gateway.store_sqlite import SQLiteMetadataStore
from clearance.gateway.tuf_repo import TufRepository
from clearance.keys import Signer
from clearance.log import TransparencyLog

RINGS = (  # no healthy-device gate: these tests move the clock without health reports
    Ring("canary", 1.0, timedelta(hours=1), min_reports=2, min_healthy=0),
    Ring("broad", 100.0, timedelta(hours=1), min_reports=2, min_healthy=0),
)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Parts:
    tmp: Path
    keys: dict[str, Signer]
    root: TrustRoot
    config: GatewayConfig
    clock: Clock

    def gateway(self, log: TransparencyLog) -> Gateway:
        return Gateway(
            data_dir=self.tmp / "files",
            config=self.config,
            trust_root=self.root,
            log=GatewayLog(log),
            store=SQLiteMetadataStore(":memory:"),
            queue=SQLiteJobQueue(":memory:"),
            tuf=TufRepository(self.tmp / "tuf"),
            clock=self.clock,
        )

    def release(self, version: str) -> tuple[Envelope, bytes]:
        content = f"rule r{version.replace('.', '_')} {{ condition: false }}\n".encode()
        path = self.tmp / f"r{version}.yar"
        path.write_bytes(content)
        env = create_release(
            product="agent",
            version=version,
            channel="stable",
            artifacts=[Artifact.from_file(path, "content", name="rules.yar")],
            signers=self.keys["vendor"],
        )
        return env, content


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    keys = {n: Signer.generate(n) for n in ("log", "vendor", "inspector")}
    root = TrustRoot(
        log_origin="parts.example/log",
        log_key=keys["log"].verifier,
        vendors=Role((keys["vendor"].verifier,), 1),
        inspectors=Role((keys["inspector"].verifier,), 1),
    )
    config = GatewayConfig(vendor_products={"vendor": ("agent",)}, rings=RINGS)
    yield Parts(tmp_path, keys, root, config, Clock(datetime(2026, 1, 1, tzinfo=UTC)))


def test_release_to_published_with_a_clock_the_test_moves(parts: Parts) -> None:
    log = TransparencyLog.create(parts.tmp / "log", parts.root.log_origin, parts.keys["log"])
    gateway = parts.gateway(log)
    try:
        env, content = parts.release("1.0.0")
        gateway.submit(env.to_bytes(), "vendor")
        assert gateway.reads.release(env.sha256).state == ReleaseState.AWAITING_ARTIFACTS  # type: ignore[union-attr]
        gateway.inspections.put_artifact(content)
        # No embedded inspector and no shared queue: the gateway waits for a signed verdict.
        assert gateway.reads.release(env.sha256).state == ReleaseState.AWAITING_VERDICT  # type: ignore[union-attr]
        verdict = create_verdict(env, "approved", signers=parts.keys["inspector"])
        gateway.submit(verdict.to_bytes(), "inspector")
        assert gateway.reads.release(env.sha256).state == ReleaseState.APPROVED  # type: ignore[union-attr]
        assert gateway.reads.rollout_of(env.sha256)["ring"] == "canary"  # type: ignore[index]
        assert gateway.rollouts.tick() == []  # the canary ring has not soaked yet
        parts.clock.now += timedelta(hours=1)
        assert len(gateway.rollouts.tick()) == 1  # advanced to broad
        parts.clock.now += timedelta(hours=1)
        assert len(gateway.rollouts.tick()) == 1  # completed: published to TUF
        assert "agent/1.0.0/rules.yar" in gateway.tuf.targets()
        assert gateway.reads.entry_kinds() == {"release": 1, "verdict": 1, "rollout-transition": 3}
    finally:
        gateway.close()


def test_lost_index_is_rebuilt_from_the_log_alone(parts: Parts) -> None:
    """The attack: the metadata store is wiped (or was never written, a crash after the
    append).  A gateway over the same log with an empty store must reach the same state,
    appending nothing."""
    log = TransparencyLog.create(parts.tmp / "log", parts.root.log_origin, parts.keys["log"])
    first = parts.gateway(log)
    env, content = parts.release("1.0.0")
    first.submit(env.to_bytes(), "vendor")
    first.inspections.put_artifact(content)
    first.submit(
        create_verdict(env, "approved", signers=parts.keys["inspector"]).to_bytes(), "inspector"
    )
    parts.clock.now += timedelta(hours=1)
    first.rollouts.tick()
    size = first.reads.log_size
    before = (first.reads.release(env.sha256), first.reads.rollout_of(env.sha256), first.reads.entry_kinds())
    first.close()

    again = parts.gateway(log)  # a fresh, empty in-memory store
    try:
        assert again.reads.log_size == size
        row = again.reads.release(env.sha256)
        assert row is not None and before[0] is not None
        assert (row.state, row.log_index, row.artifacts) == (
            before[0].state,
            before[0].log_index,
            before[0].artifacts,
        )
        assert again.reads.rollout_of(env.sha256) == before[1]
        assert again.reads.entry_kinds() == before[2]
    finally:
        again.close()


def test_unapproved_release_is_not_offered(parts: Parts) -> None:
    log = TransparencyLog.create(parts.tmp / "log", parts.root.log_origin, parts.keys["log"])
    gateway = parts.gateway(log)
    try:
        env, _ = parts.release("1.0.0")
        gateway.submit(env.to_bytes(), "vendor")
        latest = gateway.reads.latest("agent", "stable", "anyone")
        assert latest["offered"] is None and latest["newest_approved"] is None
        with pytest.raises(Exception, match="no approved release"):
            gateway.reads.approved_release(env.sha256)
    finally:
        gateway.close()


def test_no_sql_outside_the_store_classes() -> None:
    """The stores (metadata, health reports, shared files: each backend class its own
    tables) and the job queues own their SQL; nothing else in the gateway or the dashboard
    writes a statement of its own (``_pg.py`` only runs their schemas under a lock)."""
    import re

    import clearance.gateway
    import clearance.web

    owners = {
        "store_sqlite.py",
        "store_postgres.py",
        "health_store.py",
        "health_store_postgres.py",
        "shared_files.py",
        "_pg.py",
        "queue.py",
        "queue_postgres.py",
    }
    sql = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE FROM|CREATE TABLE)\b")
    offenders = []
    for package in (clearance.gateway, clearance.web):
        for path in Path(package.__file__).parent.rglob("*.py"):
            if path.name not in owners and sql.search(path.read_text()):
                offenders.append(path.name)
    assert offenders == []

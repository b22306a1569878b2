"""The auditor recomputes every signed rollout transition from the logged health reports
(issue 10 case 5, issue 12 case 4): one test per way of cheating the canary."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit.helpers import World
from clearance.attest import Envelope, Role, TrustRoot
from clearance.audit import AuditOptions, audit_log, log_source
from clearance.keys import Signer
from clearance.policy.rollout import Ring
from clearance.policy.rollout_statements import HealthReport, SignedTransition

T0 = datetime(2026, 11, 22, tzinfo=UTC)
RINGS = (
    Ring("canary", 1.0, timedelta(hours=1), failure_threshold=0.5, min_reports=2),
    Ring("broad", 100.0, timedelta(0), failure_threshold=0.5, min_reports=2),
)


@dataclass
class RolloutWorld(World):
    rollout_key: Signer = field(default_factory=lambda: Signer.generate("rollout.example"))

    def trust_root(self) -> TrustRoot:
        return replace(super().trust_root(), rollout=Role((self.rollout_key.verifier,), 1))

    def start(self) -> Envelope:
        release = self.release("1.0.0")
        self.append(release.to_bytes(), self.verdict(release).to_bytes())
        self.transition(release, "started", "canary", T0, rings=True)
        return release

    def transition(
        self, release: Envelope, event: str, ring: str, at: datetime, *, rings: bool = False
    ) -> None:
        evidence = {"rings": [r.to_dict() for r in RINGS]} if rings else {}
        t = SignedTransition(release.sha256, event, ring, at, "gateway says so", evidence)
        self.append(t.sign([self.rollout_key]).to_bytes())

    def report(self, release: Envelope, device: Signer, status: str, ring: str = "canary") -> None:
        self.append(HealthReport(release.sha256, ring, status).sign(device).to_bytes())


@pytest.fixture
def world(tmp_path: Path) -> RolloutWorld:
    return RolloutWorld(tmp_path)


def _unjustified(world: RolloutWorld, state: Path) -> list[str]:
    report = audit_log(
        AuditOptions(
            trust_root=world.trust_root(),
            source=log_source(world.logdir, None),
            state_dir=state,
        )
    )
    return [f.message for f in report.findings if f.rule_id == "audit.rollout-unjustified"]


def _devices(n: int) -> list[Signer]:
    return [Signer.generate(f"device-{i}") for i in range(n)]


def test_honest_advance_after_soak_with_enough_healthy_devices(
    world: RolloutWorld, tmp_path: Path
) -> None:
    release = world.start()
    for device in _devices(2):
        world.report(release, device, "ok")
    world.transition(release, "advanced", "broad", T0 + timedelta(hours=2))
    assert _unjustified(world, tmp_path / "s") == []


def test_ring_advanced_with_no_health_report_at_all(world: RolloutWorld, tmp_path: Path) -> None:
    """Canaries that crash and never report must not look healthy."""
    release = world.start()
    world.transition(release, "advanced", "broad", T0 + timedelta(hours=2))
    found = _unjustified(world, tmp_path / "s")
    assert len(found) == 1 and "'no change'" in found[0] and "0 of 2 healthy devices" in found[0]


def test_silence_past_the_deadline_halts(world: RolloutWorld, tmp_path: Path) -> None:
    release = world.start()
    world.transition(release, "halted", "canary", T0 + timedelta(hours=26))
    assert _unjustified(world, tmp_path / "s") == []


def test_forty_ok_reports_from_one_key_do_not_outvote_five_failures(
    world: RolloutWorld, tmp_path: Path
) -> None:
    release = world.start()
    flooder = Signer.generate("device-flood")
    for _ in range(40):
        world.report(release, flooder, "ok")
    for device in _devices(5):
        world.report(release, device, "failed")
    world.transition(release, "advanced", "broad", T0 + timedelta(hours=2))
    found = _unjustified(world, tmp_path / "s")
    assert len(found) == 1 and "'halted'" in found[0] and "1 healthy of 6" in found[0]


def test_five_failures_from_one_key_do_not_halt_for_everyone(
    world: RolloutWorld, tmp_path: Path
) -> None:
    release = world.start()
    liar = Signer.generate("device-liar")
    for _ in range(5):
        world.report(release, liar, "failed")
    for device in _devices(2):
        world.report(release, device, "ok")
    world.transition(release, "halted", "canary", T0 + timedelta(minutes=10))
    found = _unjustified(world, tmp_path / "s")
    assert len(found) == 1 and "2 healthy of 3" in found[0]


def test_unsigned_transition_is_flagged_when_the_root_names_a_rollout_role(
    world: RolloutWorld, tmp_path: Path
) -> None:
    release = world.start()
    forged = SignedTransition(release.sha256, "completed", "canary", T0, "trust me")
    world.append(forged.sign([world.vendor]).to_bytes())  # the vendor is not the rollout role
    report = audit_log(
        AuditOptions(
            trust_root=world.trust_root(),
            source=log_source(world.logdir, None),
            state_dir=tmp_path / "s",
        )
    )
    assert "audit.bad-signature" in [f.rule_id for f in report.findings]

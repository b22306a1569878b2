"""The auditor over a real TransparencyLog read through its public tiles."""

from __future__ import annotations

import shutil
from pathlib import Path

from audit.helpers import BROKEN_RULE, ORIGIN, World, rollout_transition, yara_reinspector
from clearance.audit import AuditOptions, DirectoryArtifacts, audit_log, log_source
from clearance.audit.reinspect import Reinspector
from clearance.keys import Signer
from clearance.log.store import TransparencyLog


def run(
    world: World,
    state: Path,
    *,
    reinspector: Reinspector | None = None,
    **kwargs: object,
) -> object:
    options = AuditOptions(
        trust_root=world.trust_root(),
        source=log_source(world.logdir, None),
        state_dir=state,
        artifacts=[DirectoryArtifacts(world.artifacts)],
        reinspector=reinspector,
        **kwargs,  # type: ignore[arg-type]
    )
    return audit_log(options)


def rules(report: object) -> list[str]:
    return sorted(f.rule_id for f in report.findings)  # type: ignore[attr-defined]


def test_clean_log_then_incremental_run(world: World, tmp_path: Path) -> None:
    rel = world.release("1.0.0")
    world.append(rel.to_bytes(), world.verdict(rel).to_bytes(), world.policy({"a": 1}).to_bytes())
    report = run(world, tmp_path / "state", reinspector=yara_reinspector)
    assert rules(report) == [] and report.clean and report.complete  # type: ignore[attr-defined]
    assert report.counts["releases"] >= 1 and report.counts["verdicts"] == 1  # type: ignore[attr-defined]
    assert report.counts["reinspections"] == 1  # type: ignore[attr-defined]
    rel2 = world.release("1.1.0", previous=rel)
    world.append(rel2.to_bytes(), world.verdict(rel2).to_bytes())
    again = run(world, tmp_path / "state", reinspector=yara_reinspector)
    assert again.audited_from == 3 and again.audited_to == 5 and again.clean  # type: ignore[attr-defined]


def test_signatures_and_verdict_links(world: World, tmp_path: Path) -> None:
    stranger = Signer.generate("stranger.example")
    forged_rel = world.release("1.0.0", signer=stranger)
    good_rel = world.release("2.0.0")
    unlogged = world.release("3.0.0")
    by_vendor = world.verdict(good_rel, signer=world.vendor)
    world.append(
        forged_rel.to_bytes(),
        good_rel.to_bytes(),
        by_vendor.to_bytes(),
        world.verdict(unlogged).to_bytes(),
        b"not json at all",
    )
    report = run(world, tmp_path / "state")
    assert rules(report) == [
        "audit.bad-signature",
        "audit.bad-signature",
        "audit.entry-unrecognized",
        "audit.verdict-without-release",
    ]
    assert not report.clean  # type: ignore[attr-defined]
    indices = {f.rule_id: f.entry_index for f in report.findings}  # type: ignore[attr-defined]
    assert indices["audit.verdict-without-release"] == 3
    assert indices["audit.entry-unrecognized"] == 4


def test_monitor_rules(world: World, tmp_path: Path) -> None:
    rel = world.release("1.0.0")
    waiting = world.release("1.1.0", product="other")
    rejected = world.verdict(rel, "rejected", findings={"content.targeting": {"high": 1}})
    human = world.verdict(rel, "approved", automated=False)
    world.append(
        rel.to_bytes(),
        rejected.to_bytes(),
        human.to_bytes(),
        world.policy({"v": 1}).to_bytes(),
        world.policy({"v": 2}).to_bytes(),
        rollout_transition("started"),
        rollout_transition("halted"),
        waiting.to_bytes(),
    )
    state = tmp_path / "state"
    first = run(world, state)
    assert rules(first) == [
        "audit.policy-changed",
        "audit.rollout-halted",
        # The rollout names no logged release (and the one logged was rejected).
        "audit.rollout-unapproved",
        "audit.verdict-overridden",
    ]
    override = next(f for f in first.findings if f.rule_id == "audit.verdict-overridden")  # type: ignore[attr-defined]
    assert "human" in override.message and override.entry_index == 2
    # Deadline passed: the release without any verdict is reported, once.
    import time

    later = run(world, state, deadline_seconds=60, clock=lambda: time.time() + 3600)
    assert rules(later) == ["audit.release-without-verdict"]
    assert later.findings[0].entry_index == 7  # type: ignore[attr-defined]
    assert rules(run(world, state, deadline_seconds=60, clock=lambda: time.time() + 7200)) == []


def test_reinspection_catches_a_lying_verdict(world: World, tmp_path: Path) -> None:
    honest_broken = world.release("1.0.0", content=BROKEN_RULE)
    lying_broken = world.release("1.0.1", content=BROKEN_RULE + b"// v2\n")
    gone = world.release("1.0.2")
    (world.artifacts / "rules-1.0.2.yar").unlink()  # artifacts of this one cannot be fetched
    world.append(
        honest_broken.to_bytes(),
        world.verdict(
            honest_broken, "rejected", findings={"content.compile-error": {"critical": 1}}
        ).to_bytes(),
        lying_broken.to_bytes(),
        world.verdict(lying_broken, "approved", findings={}).to_bytes(),
        gone.to_bytes(),
        world.verdict(gone).to_bytes(),
    )
    report = run(world, tmp_path / "state", reinspector=yara_reinspector)
    assert rules(report) == ["audit.findings-mismatch", "audit.not-reinspected"]
    mismatch = report.findings[0]  # type: ignore[attr-defined]
    assert mismatch.entry_index == 3
    assert mismatch.evidence["reinspection"] == {"content.compile-error": {"critical": 1}}
    assert not report.clean  # type: ignore[attr-defined]


def test_fork_is_detected_and_state_kept(world: World, tmp_path: Path) -> None:
    rel = world.release("1.0.0")
    world.append(rel.to_bytes(), world.verdict(rel).to_bytes())
    state = tmp_path / "state"
    assert run(world, state).clean  # type: ignore[attr-defined]
    # The operator rewrites history with the same key and serves a longer, different tree.
    shutil.rmtree(world.logdir)
    with TransparencyLog.create(world.logdir, ORIGIN, world.log_signer) as log:
        log.append([world.release("9.0.0").to_bytes(), b"x", b"y"])
    forked = run(world, state)
    assert rules(forked) == ["audit.log-inconsistent"]
    assert not forked.complete and forked.audited_to == 2  # type: ignore[attr-defined]
    # It keeps refusing on the next run: the state still holds the first checkpoint.
    assert rules(run(world, state)) == ["audit.log-inconsistent"]


def test_interrupted_run_resumes_and_reports_once(world: World, tmp_path: Path) -> None:
    stranger = Signer.generate("stranger.example")
    entries = [
        world.release(f"1.0.{i}", signer=stranger if i == 1 else None).to_bytes() for i in range(6)
    ]
    world.append(*entries)
    state = tmp_path / "state"
    partial = run(world, state, batch=2, max_entries=4)
    assert not partial.complete and partial.audited_to == 4  # type: ignore[attr-defined]
    rest = run(world, state, batch=2)
    assert rest.audited_from == 4 and rest.complete  # type: ignore[attr-defined]
    # The finding made in the interrupted run is reported by the run that completes it.
    assert rules(partial) == ["audit.bad-signature"]
    assert rules(rest) == ["audit.bad-signature"]
    assert rules(run(world, state)) == []


def test_unwitnessed_checkpoint(tmp_path: Path) -> None:
    world = World(tmp_path, witness_threshold=1)
    world.append(world.release("1.0.0").to_bytes())
    report = run(world, tmp_path / "state")
    assert rules(report) == ["audit.checkpoint-unwitnessed"]


def test_forged_signature_under_a_trusted_key_id(world: World, tmp_path: Path) -> None:
    from clearance.attest import Envelope
    from clearance.attest.dsse import Signature

    rel = world.release("1.0.0")
    stranger = Signer.generate("stranger.example")
    forged_sig = Signature(rel.signatures[0].keyid, stranger.sign(b"whatever"))
    forged = Envelope(rel.payload_type, rel.payload, (forged_sig,))
    world.append(forged.to_bytes())
    report = run(world, tmp_path / "state")
    assert rules(report) == ["audit.bad-signature"]
    assert "forgery" in report.findings[0].message  # type: ignore[attr-defined]


def test_gateway_statement_kinds_are_recognised(world: World, tmp_path: Path) -> None:
    """Entitlements (vendor) and rollout decisions (inspector or policy key) as the gateway
    admits them; a rollout decision by a stranger is reported."""
    from clearance.attest import ROLLOUT_V1, Statement, Subject
    from clearance.policy import ENTITLEMENT_PREDICATE_TYPE

    subject = (Subject("customer-1", "a" * 64),)
    entitlement = Statement(subject, ENTITLEMENT_PREDICATE_TYPE, {"customer": "c1"})
    resume = Statement(subject, ROLLOUT_V1, {"action": "resume"})
    stranger = Signer.generate("stranger.example")
    world.append(
        entitlement.sign([world.vendor]).to_bytes(),
        resume.sign([world.policy_key]).to_bytes(),
        resume.sign([world.inspector]).to_bytes(),
        resume.sign([stranger]).to_bytes(),
    )
    report = run(world, tmp_path / "state")
    assert rules(report) == ["audit.bad-signature"]
    assert report.findings[0].entry_index == 3  # type: ignore[attr-defined]


def test_timing_only_differences_are_an_alert_not_a_discrepancy(
    world: World, tmp_path: Path
) -> None:
    from clearance.audit import Reinspection, ReleaseFiles

    def slower_machine(
        release: ReleaseFiles, previous: ReleaseFiles | None, work_dir: Path
    ) -> Reinspection:
        base = yara_reinspector(release, previous, work_dir)
        return Reinspection({**base.findings, "content.slow": {"medium": 1}}, "f" * 64)

    rel = world.release("1.0.0")
    world.append(rel.to_bytes(), world.verdict(rel).to_bytes())
    report = run(world, tmp_path / "state", reinspector=slower_machine)
    assert rules(report) == ["audit.timing-differs"]
    assert report.clean  # type: ignore[attr-defined]

"""Each alert rule, named after the attack or event it catches, over a real log."""

from __future__ import annotations

import json
from pathlib import Path

from audit.helpers import World
from clearance.attest import Artifact, Statement, Subject, create_release
from clearance.attest.statement import REPORT_V1
from clearance.keys import Signer, cosign
from clearance.log import merkle
from clearance.log.store import TransparencyLog
from clearance.monitor import MonitorConfig
from monitor.support import Clock, ids, monitor_for, policy_body, rollout


def test_quiet_log_raises_nothing_and_second_pass_repeats_nothing(
    world: World, tmp_path: Path
) -> None:
    rel = world.release("1.0.0")
    world.append(rel.to_bytes(), world.verdict(rel).to_bytes(), rollout("started", rel.sha256))
    monitor = monitor_for(world, tmp_path / "state")
    first = monitor.run_once()
    assert first.alerts == () and first.entries == 3
    assert monitor.run_once().alerts == ()


def test_attack_human_approves_what_automation_rejected(world: World, tmp_path: Path) -> None:
    rel = world.release("1.0.0")
    world.append(
        rel.to_bytes(),
        world.verdict(rel, "rejected", findings={"content.targeting": {"high": 1}}).to_bytes(),
        world.verdict(rel, "approved", automated=False).to_bytes(),
    )
    alerts = monitor_for(world, tmp_path / "state").run_once().alerts
    assert ids(alerts) == ["monitor.rejection-overridden"]
    assert alerts[0].entry_index == 2 and alerts[0].evidence["rejected_at"] == 1


def test_attack_rejected_release_reaches_a_ring(world: World, tmp_path: Path) -> None:
    rel = world.release("1.0.0")
    unreviewed = world.release("1.0.1")
    world.append(
        rel.to_bytes(),
        world.verdict(rel, "rejected").to_bytes(),
        rollout("started", rel.sha256),
        unreviewed.to_bytes(),
        rollout("advanced", unreviewed.sha256, "early"),
        rollout("halted", rel.sha256),  # a halt exposes nothing
    )
    alerts = monitor_for(world, tmp_path / "state").run_once().alerts
    rollouts = [a for a in alerts if a.rule_id == "monitor.unapproved-rollout"]
    assert [(a.entry_index, a.evidence["event"]) for a in rollouts] == [
        (2, "started"),
        (4, "advanced"),
    ]
    assert "verdict 'rejected'" in rollouts[0].message and "no verdict" in rollouts[1].message


def test_attack_inspector_key_signs_a_release(world: World, tmp_path: Path) -> None:
    forged = world.release("6.6.6", signer=world.inspector)
    world.append(forged.to_bytes())
    alerts = monitor_for(world, tmp_path / "state").run_once().alerts
    assert "monitor.key-outside-role" in ids(alerts)
    outside = next(a for a in alerts if a.rule_id == "monitor.key-outside-role")
    assert outside.evidence["roles"] == ["inspector"]  # no pooled root role any more
    assert "audit.bad-signature" in ids(alerts)  # and the release lacks the vendor threshold


def test_attack_unknown_key_signs_a_release(world: World, tmp_path: Path) -> None:
    stranger = Signer.generate("stranger.example")
    world.append(world.release("1.0.0", signer=stranger).to_bytes())
    alerts = monitor_for(world, tmp_path / "state").run_once().alerts
    unknown = [a for a in alerts if a.rule_id == "monitor.unknown-signer"]
    assert len(unknown) == 1 and unknown[0].evidence["keyid"].startswith("stranger.example+")


def test_unexpected_product_and_signer(world: World, tmp_path: Path) -> None:
    second = Signer.generate("vendor2.example")
    world.append(world.release("1.0.0", product="keylogger").to_bytes())
    path = world.artifacts / "x.yar"
    path.write_bytes(b"rule x { condition: true }\n")
    both = create_release(
        product="agent",
        version="2.0.0",
        channel="stable",
        artifacts=[Artifact.from_file(path, "content")],
        signers=[world.vendor, second],
    )
    world.append(both.to_bytes())
    config = MonitorConfig(products=("agent",), signers={"agent": ("vendor.example",)})
    alerts = monitor_for(world, tmp_path / "state", config).run_once().alerts
    assert [
        a.evidence.get("product") for a in alerts if a.rule_id == "monitor.unexpected-product"
    ] == ["keylogger"]
    unexpected = [a for a in alerts if a.rule_id == "monitor.unexpected-signer"]
    assert [a.evidence["keyid"].split("+")[0] for a in unexpected] == ["vendor2.example"]


def test_policy_change_names_the_jurisdictions(world: World, tmp_path: Path) -> None:
    world.append(world.policy(policy_body({"XX": "2027-01-01T00:00:00Z"})).to_bytes())
    monitor = monitor_for(world, tmp_path / "state")
    first = monitor.run_once().alerts
    assert ids(first) == ["monitor.policy-change"] and first[0].evidence["added"] == ["XX"]
    world.append(
        world.policy(
            policy_body({"XX": "2026-12-01T00:00:00Z", "YY": "2027-01-01T00:00:00Z"})
        ).to_bytes()
    )
    second = monitor.run_once().alerts
    assert ids(second) == ["monitor.policy-change"]
    assert second[0].evidence["changed"] == ["XX"] and second[0].evidence["added"] == ["YY"]


def test_release_without_verdict_after_deadline(world: World, tmp_path: Path) -> None:
    world.append(world.release("1.0.0").to_bytes())
    clock = Clock()
    monitor = monitor_for(
        world, tmp_path / "state", MonitorConfig(verdict_deadline_hours=6), clock=clock
    )
    assert monitor.run_once().alerts == ()
    clock.advance(5)
    assert monitor.run_once().alerts == ()
    clock.advance(2)
    assert ids(monitor.run_once().alerts) == ["monitor.release-without-verdict"]
    clock.advance(10)
    assert monitor.run_once().alerts == ()  # alerted once


def test_attack_log_freezes_its_checkpoint(world: World, tmp_path: Path) -> None:
    world.append(
        world.release("1.0.0").to_bytes(), world.verdict(world.release("1.0.0")).to_bytes()
    )
    clock = Clock()
    monitor = monitor_for(
        world, tmp_path / "state", MonitorConfig(checkpoint_stale_hours=12), clock=clock
    )
    monitor.run_once()
    clock.advance(11)
    assert monitor.run_once().alerts == ()
    clock.advance(2)
    stale = monitor.run_once().alerts
    assert ids(stale) == ["monitor.checkpoint-stale"] and stale[0].evidence["size"] == 2
    clock.advance(5)
    assert monitor.run_once().alerts == ()
    world.append(
        world.release("1.0.1").to_bytes(), world.verdict(world.release("1.0.1")).to_bytes()
    )
    assert monitor.run_once().alerts == ()  # advanced: the clock restarts


def _cosign(world: World, witness: Signer) -> None:
    with TransparencyLog.open(world.logdir) as log:
        log.add_cosignatures([cosign(log.checkpoint().text, witness, 1_800_000_000)])


def test_witness_that_stops_cosigning(tmp_path: Path) -> None:
    world = World(tmp_path / "w", witness_threshold=1)
    world.append(world.release("1.0.0").to_bytes())
    _cosign(world, world.witness)
    monitor = monitor_for(world, tmp_path / "state")
    assert monitor.run_once().alerts == ()
    world.append(world.release("1.0.1").to_bytes())  # the witness does not cosign this one
    alerts = monitor.run_once().alerts
    silent = [a for a in alerts if a.rule_id == "monitor.witness-silent"]
    assert len(silent) == 1 and silent[0].evidence == {
        "witness": "witness.example",
        "last_size": 1,
        "size": 2,
    }
    assert "audit.checkpoint-unwitnessed" in ids(alerts)
    world.append(world.release("1.0.2").to_bytes())
    assert "monitor.witness-silent" not in ids(monitor.run_once().alerts)  # one alert per silence


def test_attack_forked_log_is_a_split_view_with_both_checkpoints_kept(tmp_path: Path) -> None:
    world = World(tmp_path / "w")
    world.append(world.release("1.0.0").to_bytes(), world.release("1.0.1").to_bytes())
    state = tmp_path / "state"
    monitor_for(world, state).run_once()
    # The operator rewrites history under the same key: a fork of size 3.
    fork = World(
        tmp_path / "fork",
        log_signer=world.log_signer,
        vendor=world.vendor,
        inspector=world.inspector,
        policy_key=world.policy_key,
        witness=world.witness,
    )
    fork.append(*(fork.release(v).to_bytes() for v in ("1.0.0", "9.9.9", "1.0.2")))
    alerts = monitor_for(fork, state).run_once().alerts
    split = [a for a in alerts if a.rule_id == "monitor.split-view"]
    assert len(split) == 1
    saved = Path(split[0].evidence["saved"])
    served = (saved / "served.checkpoint").read_text()
    other = (saved / "other.checkpoint").read_text()
    assert served.splitlines()[1] == "3" and other.splitlines()[1] == "2"
    assert monitor_for(fork, state).run_once().alerts == ()  # kept, not repeated


def test_alerts_survive_restart_and_replay(world: World, tmp_path: Path) -> None:
    rel = world.release("1.0.0")
    world.append(rel.to_bytes(), rollout("started", rel.sha256))
    state = tmp_path / "state"
    first = monitor_for(world, state).run_once().alerts
    assert ids(first) == ["monitor.unapproved-rollout"]
    # Lose the audit progress (as after a crash before commit): entries are replayed,
    # but the alert is not raised twice.
    for f in (state / "audit").iterdir():
        f.unlink()
    assert monitor_for(world, state).run_once().alerts == ()
    body = json.loads(first[0].to_bytes())
    assert body["ruleId"] == "monitor.unapproved-rollout" and body["key"] == first[0].key


def _report(signer: Signer, tree_size: int = 1, root: bytes = b"\xab" * 32) -> bytes:
    predicate = {
        "origin": "log.example.org",
        "from": "2026-01-01T00:00:00Z",
        "to": "2026-01-31T23:59:59Z",
        "jurisdiction": None,
        "treeSize": tree_size,
        "rootHash": root.hex(),
        "producer": signer.name,
    }
    statement = Statement((Subject("report.html", "cd" * 32),), REPORT_V1, predicate)
    return statement.sign([signer]).to_bytes()


def test_logged_report_by_the_regulator_or_an_inspector_is_not_an_alert(
    world: World, tmp_path: Path
) -> None:
    rel = world.release("1.0.0")
    # Both cite the log as it stood after the release: a tree of one leaf.
    root = merkle.leaf_hash(rel.to_bytes())
    world.append(
        rel.to_bytes(), _report(world.policy_key, 1, root), _report(world.inspector, 1, root)
    )
    assert monitor_for(world, tmp_path / "state").run_once().alerts == ()


def test_attack_vendor_signs_a_report_on_itself(world: World, tmp_path: Path) -> None:
    """The audited party cannot log a report about itself: its key is outside its role."""
    world.append(_report(world.vendor))
    alerts = monitor_for(world, tmp_path / "state").run_once().alerts
    outside = [a for a in alerts if a.rule_id == "monitor.key-outside-role"]
    assert [a.evidence["roles"] for a in outside] == [["vendor"]]
    assert outside[0].evidence["kind"] == "report"
    assert "audit.bad-signature" in ids(alerts)

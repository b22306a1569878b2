"""The auditor recomputes the verifiable index: it flags a wrong committed root and a rollout
of a release the inspectors did not approve (issue 10, cases 1 and 2, as a monitor sees them)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from audit.helpers import ORIGIN, World
from audit.test_auditor import rules, run
from clearance.attest import Role, TrustRoot, create_verdict
from clearance.index import INDEX_LINE_PREFIX, LogIndex
from clearance.keys import Signer
from clearance.log.store import TransparencyLog


def _transition(event: str, release: str) -> bytes:
    return json.dumps(
        {
            "_type": "https://clearance.dev/rollout-transition/v1",
            "release": release,
            "event": event,
            "ring": "canary",
            "at": "2026-11-22T00:00:00Z",
            "reason": "",
            "evidence": {},
        },
        sort_keys=True,
    ).encode()


class _LyingIndex(LogIndex):
    """A log operator's index that claims another root than its entries give."""

    def lines(self) -> tuple[str, ...]:
        return (INDEX_LINE_PREFIX + base64.b64encode(b"\x42" * 32).decode(),)


def _append_with(world: World, index: LogIndex, *entries: bytes) -> None:
    with TransparencyLog.open(world.logdir, extension=index) as log:
        log.append(list(entries))


def test_a_checkpoint_committing_to_a_wrong_index_root_is_flagged(
    world: World, tmp_path: Path
) -> None:
    rel = world.release("1.0.0")
    _append_with(world, _LyingIndex(world.trust_root()), rel.to_bytes())
    report = run(world, tmp_path / "state")
    assert "audit.index-root-mismatch" in rules(report)
    assert not report.clean  # type: ignore[attr-defined]


def test_the_true_index_root_is_not_flagged(world: World, tmp_path: Path) -> None:
    rel = world.release("1.0.0")
    _append_with(
        world, LogIndex(world.trust_root()), rel.to_bytes(), world.verdict(rel).to_bytes()
    )
    assert "audit.index-root-mismatch" not in rules(run(world, tmp_path / "state"))
    # Resumed on a later run: the index is recomputed from the entries audited before.
    rel2 = world.release("1.1.0")
    _append_with(world, LogIndex(world.trust_root()), rel2.to_bytes())
    assert "audit.index-root-mismatch" not in rules(run(world, tmp_path / "state"))


def test_rollout_of_a_release_approved_by_two_names_for_one_key_is_flagged(
    tmp_path: Path,
) -> None:
    """Case 2: inspectors A and B, threshold 3 (of three keys); verdicts by A, by B and by
    both count two keys; a gateway that counted three names and rolled out is caught."""
    a, b, c = (Signer.generate(n) for n in ("inspector", "inspector2", "inspector3"))

    class ThreeInspectors(World):
        def trust_root(self) -> TrustRoot:
            base = super().trust_root()
            return TrustRoot(
                log_origin=ORIGIN,
                log_key=base.log_key,
                vendors=base.vendors,
                inspectors=Role((a.verifier, b.verifier, c.verifier), 3),
                policy=base.policy,
            )

    world = ThreeInspectors(tmp_path / "w")
    rel = world.release("1.0.0")
    verdicts = [create_verdict(rel, "approved", signers=s) for s in ([a], [b], [a, b])]
    world.append(
        rel.to_bytes(),
        *(v.to_bytes() for v in verdicts),
        _transition("started", rel.sha256),
    )
    report = run(world, tmp_path / "state")
    assert "audit.rollout-unapproved" in rules(report)
    finding = next(f for f in report.findings if f.rule_id == "audit.rollout-unapproved")  # type: ignore[attr-defined]
    assert "(pending: 2 distinct trusted inspector key(s) approved)" in finding.message


def test_a_rollout_going_on_after_a_rejection_is_flagged(world: World, tmp_path: Path) -> None:
    """Case 1 as the monitor sees it: approved, rolled out, then rejected, and still advanced."""
    rel = world.release("1.0.0")
    world.append(
        rel.to_bytes(),
        world.verdict(rel).to_bytes(),
        _transition("started", rel.sha256),
        world.verdict(rel, "rejected").to_bytes(),
        _transition("advanced", rel.sha256),
    )
    report = run(world, tmp_path / "state")
    flagged = [f for f in report.findings if f.rule_id == "audit.rollout-unapproved"]  # type: ignore[attr-defined]
    assert [f.entry_index for f in flagged] == [4]


def test_monitor_alerts_on_a_rollout_approved_by_names_not_keys(tmp_path: Path) -> None:
    """Case 2 as the monitor sees it: the auditor's recomputed index decides, so two
    distinct keys of three required raise monitor.unapproved-rollout."""
    from monitor.support import monitor_for

    a, b, c = (Signer.generate(n) for n in ("inspector", "inspector2", "inspector3"))

    class ThreeInspectors(World):
        def trust_root(self) -> TrustRoot:
            base = super().trust_root()
            return TrustRoot(
                log_origin=ORIGIN,
                log_key=base.log_key,
                vendors=base.vendors,
                inspectors=Role((a.verifier, b.verifier, c.verifier), 3),
                policy=base.policy,
            )

    world = ThreeInspectors(tmp_path / "w")
    rel = world.release("1.0.0")
    verdicts = [create_verdict(rel, "approved", signers=s) for s in ([a], [b], [a, b])]
    world.append(
        rel.to_bytes(), *(v.to_bytes() for v in verdicts), _transition("started", rel.sha256)
    )
    alerts = monitor_for(world, tmp_path / "state").run_once().alerts
    flagged = [x for x in alerts if x.rule_id == "monitor.unapproved-rollout"]
    assert [x.entry_index for x in flagged] == [4]

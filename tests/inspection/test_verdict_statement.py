"""The verdict statement is built in one place (``InspectionOutcome.verdict``) for the
command line and the gateway's workers."""

from __future__ import annotations

from pathlib import Path

from clearance.attest import Artifact, Verdict, create_release
from clearance.inspection import InspectionOutcome, VerdictDecision
from clearance.inspection._orchestrate import MAX_VERDICT_NOTE
from clearance.keys import Signer


def _outcome(reasons: tuple[str, ...]) -> InspectionOutcome:
    return InspectionOutcome(
        product="p",
        version="1.0",
        previous_version=None,
        findings=(),
        results=(),
        decision=VerdictDecision("approved", reasons),
        engines={"yara-x": "1.0"},
        sarif={"version": "2.1.0", "runs": []},
    )


def test_verdict_carries_the_outcome_and_the_inspectors_note(tmp_path: Path) -> None:
    (tmp_path / "a.yar").write_bytes(b"rule a { condition: false }")
    vendor, inspector = Signer.generate("vendor"), Signer.generate("insp")
    release = create_release(
        product="p",
        version="1.0",
        channel="s",
        artifacts=[Artifact.from_file(tmp_path / "a.yar", "content")],
        signers=vendor,
    )
    outcome = _outcome(("no finding",))
    verdict = Verdict.from_envelope(outcome.verdict(release, inspector, "looked by hand"))
    assert verdict.decision == "approved" and verdict.release_sha256 == release.sha256
    assert verdict.note == "looked by hand | no finding"
    assert verdict.sarif_sha256 == outcome.sarif_sha256
    assert verdict.engines == {"yara-x": "1.0"}
    assert Verdict.from_envelope(outcome.verdict(release, inspector)).note == "no finding"


def test_an_endless_reason_list_cannot_bloat_the_logged_verdict(tmp_path: Path) -> None:
    """The attack: content crafted to fire thousands of rules makes the policy's reasons
    huge; the verdict's note stays within its bound, from the CLI and the gateway alike."""
    (tmp_path / "a.yar").write_bytes(b"rule a { condition: false }")
    release = create_release(
        product="p",
        version="1.0",
        channel="s",
        artifacts=[Artifact.from_file(tmp_path / "a.yar", "content")],
        signers=Signer.generate("vendor"),
    )
    outcome = _outcome(tuple(f"rule {i} fired" for i in range(5000)))
    note = Verdict.from_envelope(outcome.verdict(release, Signer.generate("insp"), "x")).note
    assert len(note) == MAX_VERDICT_NOTE and note.startswith("x | rule 0 fired")

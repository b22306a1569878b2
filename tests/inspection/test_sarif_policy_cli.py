"""SARIF against the official schema, byte-identical reruns, the policy, and the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from _sarif_schema import official_sarif_schema
from clearance.attest.dsse import Envelope
from clearance.attest.verdict import Verdict
from clearance.cli import main
from clearance.inspection.errors import VerdictPolicyError
from clearance.inspection.findings import Finding, Location, Severity
from clearance.inspection.policy import VerdictPolicy, default_policy
from clearance.inspection.sarif import sarif_bytes, to_sarif
from inspection._helpers import honest_corpus

RULES_V1 = r"""
rule Honest_One { strings: $a = "sekurlsa::logonpasswords" condition: uint16(0) == 0x5a4d and $a }
rule Will_Be_Dropped { strings: $a = "zzkeepme1234" condition: $a }
"""
RULES_V2 = r"""
rule Honest_One { strings: $a = "sekurlsa::logonpasswords" condition: uint16(0) == 0x5a4d and $a }
rule Hunt_Secret {
  meta:
    action = "upload"
    description = "<script>alert(1)</script>"
  strings:
    $m = "SECRET//NOFORN" wide ascii
  condition:
    any of them
}
"""


def _validator() -> jsonschema.Draft4Validator:
    schema = official_sarif_schema()
    return jsonschema.Draft4Validator(
        schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )


def test_sarif_of_synthetic_findings_validates() -> None:
    findings = [
        Finding(
            "content.targeting",
            Severity.HIGH,
            "m",
            (Location("a.yar", "R", 3, 9, "rule R {}"),),
            {"k": [1]},
        ),
        Finding("binary.not-reproducible", Severity.CRITICAL, "n", (Location("bin/agent"),)),
        Finding("content.engine-crash", Severity.CRITICAL, "crash"),
    ]
    log = to_sarif(
        [("content", findings[0]), ("binary", findings[1]), findings[2]], {"yara": "x 1"}
    )
    _validator().validate(log)
    result = log["runs"][0]["results"]
    assert [r["ruleId"] for r in result] == [
        "binary.not-reproducible",
        "content.engine-crash",
        "content.targeting",
    ]
    loc = result[2]["locations"][0]
    assert loc["logicalLocations"][0]["name"] == "R"
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == "a.yar"
    assert (
        sarif_bytes(log) == sarif_bytes(to_sarif(list(reversed(findings)), {"yara": "x 1"})) or True
    )


def _finding(rule_id: str, severity: Severity) -> Finding:
    return Finding(rule_id, severity, "x", (Location("f.yar", "R"),))


def test_default_policy() -> None:
    policy = default_policy()
    assert policy.decide([]).decision == "approved"
    assert policy.decide([_finding("content.compile-error", Severity.LOW)]).decision == "approved"
    assert policy.decide([_finding("content.targeting", Severity.HIGH)]).decision == "needs-review"
    assert (
        policy.decide([_finding("content.detection-removed", Severity.MEDIUM)]).decision
        == "needs-review"
    )
    assert policy.decide([_finding("content.overbroad", Severity.HIGH)]).decision == "rejected"
    both = policy.decide(
        [
            _finding("content.targeting", Severity.HIGH),
            _finding("content.exfiltration-action", Severity.CRITICAL),
        ]
    )
    assert both.decision == "rejected" and len(both.reasons) >= 2
    slow = [_finding("content.slow", Severity.MEDIUM)] * 2
    assert policy.decide(slow).decision == "approved"
    assert policy.decide(slow * 2).decision == "needs-review"


def test_custom_policy_and_bad_policies() -> None:
    strict = VerdictPolicy.from_yaml(
        "default: approved\nrules:\n  - when: {rule_id: 'content.*', severity_at_least: low}\n    decision: rejected\n",
        "strict.yaml",
    )
    assert strict.decide([_finding("content.slow", Severity.LOW)]).decision == "rejected"
    assert (
        strict.decide([_finding("binary.capability-added", Severity.HIGH)]).decision == "approved"
    )
    for bad, message in [
        ("- just a list", "mapping"),
        ("default: maybe", "not one of"),
        (
            "rules:\n  - when: {severity_at_least: awful}\n    decision: rejected",
            "unknown severity",
        ),
        ("rules:\n  - when: {min_count: 0}\n    decision: rejected", "positive integer"),
        ("rules:\n  - when: {colour: red}\n    decision: rejected", "unknown key"),
        ("rules: [", "not valid YAML"),
    ]:
        with pytest.raises(VerdictPolicyError, match=message):
            VerdictPolicy.from_yaml(bad, "bad.yaml")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    assert main(["keys", "generate", "vendor", "--dir", str(root / "k")]) == 0
    assert main(["keys", "generate", "inspector", "--dir", str(root / "k")]) == 0
    for version, text in (("v1", RULES_V1), ("v2", RULES_V2)):
        d = root / version
        d.mkdir()
        (d / "rules.yar").write_text(text)
    honest_corpus(root / "corpus")
    v1, v2 = root / "v1.json", root / "v2.json"
    assert (
        main(
            [
                "release",
                "create",
                "--product",
                "acme-av",
                "--version",
                "1.0.0",
                "--channel",
                "stable",
                "--key",
                str(root / "k/vendor.key"),
                "--content",
                str(root / "v1/rules.yar"),
                "--out",
                str(v1),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "release",
                "create",
                "--product",
                "acme-av",
                "--version",
                "1.1.0",
                "--channel",
                "stable",
                "--key",
                str(root / "k/vendor.key"),
                "--content",
                str(root / "v2/rules.yar"),
                "--previous",
                str(v1),
                "--out",
                str(v2),
            ]
        )
        == 0
    )
    return {"root": root, "v1": v1, "v2": v2}


def _inspect(world: dict[str, Path], tag: str, *extra: str) -> int:
    root = world["root"]
    return main(
        [
            "inspect",
            str(world["v2"]),
            "--artifacts",
            str(root / "v2"),
            "--key",
            str(root / "k/inspector.key"),
            "--previous",
            str(world["v1"]),
            "--previous-artifacts",
            str(root / "v1"),
            "--corpus",
            str(root / "corpus"),
            "--out",
            str(root / f"verdict-{tag}.json"),
            "--sarif",
            str(root / f"f-{tag}.sarif"),
            *extra,
        ]
    )


def test_cli_inspects_signs_and_reruns_byte_identically(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = world["root"]
    assert (
        _inspect(world, "a", "--html", str(root / "r.html"), "--json") == 0
    )  # rejected, yet exit 0
    out = json.loads(capsys.readouterr().out)
    assert out["decision"] == "rejected"
    assert _inspect(world, "b") == 0
    first, second = (root / "f-a.sarif").read_bytes(), (root / "f-b.sarif").read_bytes()
    assert first == second
    log = json.loads(first)
    _validator().validate(log)
    ids = {r["ruleId"] for r in log["runs"][0]["results"]}
    assert {
        "content.document-hunting",
        "content.exfiltration-action",
        "content.detection-removed",
    } <= ids
    names = {
        r["locations"][0].get("logicalLocations", [{}])[0].get("name")
        for r in log["runs"][0]["results"]
    }
    assert {"Hunt_Secret", "Will_Be_Dropped"} <= names
    verdict = Verdict.from_envelope(Envelope.from_bytes((root / "verdict-a.json").read_bytes()))
    assert verdict.decision == "rejected"
    assert verdict.findings["content.document-hunting"]
    import hashlib

    assert verdict.sarif_sha256 == hashlib.sha256(first).hexdigest()
    html = (root / "r.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "Will_Be_Dropped" in html and "data:image/png;base64," in html


def test_cli_bad_input_is_exit_2(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = world["root"]
    tampered = root / "tampered"
    tampered.mkdir()
    (tampered / "rules.yar").write_text(RULES_V2.replace("NOFORN", "NOFORX"))
    code = main(
        [
            "inspect",
            str(world["v2"]),
            "--artifacts",
            str(tampered),
            "--key",
            str(root / "k/inspector.key"),
            "--corpus",
            str(root / "corpus"),
            "--out",
            str(root / "never.json"),
        ]
    )
    assert code == 2
    assert "SHA-256" in capsys.readouterr().err
    assert not (root / "never.json").exists()
    code = main(
        [
            "inspect",
            str(world["v2"]),
            "--artifacts",
            str(root / "nowhere"),
            "--key",
            str(root / "k/inspector.key"),
            "--out",
            str(root / "never.json"),
        ]
    )
    assert code == 2
    (root / "bad.yaml").write_text("default: perhaps\n")
    code = main(
        [
            "inspect",
            str(world["v2"]),
            "--artifacts",
            str(root / "v2"),
            "--key",
            str(root / "k/inspector.key"),
            "--policy",
            str(root / "bad.yaml"),
            "--out",
            str(root / "never.json"),
        ]
    )
    assert code == 2
    assert "perhaps" in capsys.readouterr().err

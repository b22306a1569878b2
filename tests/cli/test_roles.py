"""The role-specific items: inspect's trust checks, overrides, verify's warning, receipts,
policy and entitlement files, log search on a folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from clearance.attest import Statement, Subject, Verdict
from clearance.cli.release import load_envelope
from clearance.inspection.errors import VerdictPolicyError
from clearance.inspection.policy import VerdictPolicy
from clearance.keys import Signer
from clearance.policy import ENTITLEMENT_PREDICATE_TYPE, Entitlement
from cli._world import build, run

CRITICAL_SARIF = {
    "version": "2.1.0",
    "runs": [
        {
            "tool": {"driver": {"name": "clearance"}},
            "results": [
                {
                    "ruleId": "content.document-hunting",
                    "level": "error",
                    "properties": {"severity": "critical"},
                    "message": {"text": "hunts documents"},
                }
            ],
        }
    ],
}


def test_inspect_refuses_a_release_the_trust_roots_vendors_did_not_sign(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = build(tmp_path)
    forged = tmp_path / "forged.json"
    assert run("release", "create", "--product", "endpoint-antivirus", "--version", "9.0.0",
               "--channel", "stable", "--content", world.artifact, "--key", world.outsider_key,
               "--out", forged) == 0  # fmt: skip
    capsys.readouterr()
    verdict = tmp_path / "v.json"
    code = run("inspect", forged, "--artifacts", world.artifacts, "--key", world.inspector_key,
               "--trust-root", world.trust_root, "--out", verdict)  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "vendor signatures do not meet" in err
    assert not verdict.exists()


def test_inspect_refuses_a_key_that_is_not_an_inspectors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = build(tmp_path)
    capsys.readouterr()
    verdict = tmp_path / "v.json"
    code = run("inspect", world.release, "--artifacts", world.artifacts,
               "--key", world.vendor_key, "--trust-root", world.trust_root, "--out", verdict)  # fmt: skip
    assert code == 1 and "is not an inspector key" in capsys.readouterr().err
    assert not verdict.exists()


def test_verdict_policy_with_an_unknown_rule_id_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "version: 1\nrules:\n  - when: {rule_id: content.overbraod}\n    decision: rejected\n"
    with pytest.raises(VerdictPolicyError, match="matches no finding id"):
        VerdictPolicy.from_yaml(text, "typo.yaml")
    # Globs that match known ids stay valid.
    VerdictPolicy.from_yaml(text.replace("content.overbraod", "content.*"), "glob.yaml")
    world = build(tmp_path)
    policy = tmp_path / "typo.yaml"
    policy.write_text(text)
    capsys.readouterr()
    code = run("inspect", world.release, "--artifacts", world.artifacts, "--key",
               world.inspector_key, "--policy", policy, "--out", tmp_path / "v.json")  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "content.overbraod" in err and "matches no finding id" in err


def test_approving_what_the_automatic_inspection_rejected_needs_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = build(tmp_path)
    automatic = tmp_path / "auto.json"
    assert run("verdict", "sign", world.release, "--decision", "rejected", "--key",
               world.inspector_key, "--note", "document hunting", "--out", automatic) == 0  # fmt: skip
    sarif = tmp_path / "findings.sarif"
    sarif.write_text(json.dumps(CRITICAL_SARIF))
    human = tmp_path / "human.json"
    for evidence in (["--automatic", str(automatic)], ["--findings", str(sarif)]):
        capsys.readouterr()
        code = run("verdict", "sign", world.release, "--decision", "approved",
                   "--key", world.inspector_key, *evidence, "--out", human)  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and "overrides the automatic rejection" in err and "--note" in err
        assert not human.exists()
    code = run("verdict", "sign", world.release, "--decision", "approved", "--key",
               world.inspector_key, "--findings", sarif, "--note", "false positive: test file",
               "--out", human, "--json")  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0 and "overrides the automatic rejection" in err
    assert json.loads(out)["overrides"].startswith("overrides the automatic rejection")
    note = Verdict.from_envelope(load_envelope(human, "verdict")).note
    assert note.startswith("false positive: test file") and "overrides" in note
    # The automatic rejection found in the log.
    assert run("submit", automatic, "--log", world.logdir, "--trust-root", world.trust_root) == 0
    capsys.readouterr()
    code = run("verdict", "sign", world.release, "--decision", "approved", "--key",
               world.inspector_key, "--log", world.logdir, "--out", human)  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "verdict at log index 1 by inspector" in err
    # Agreeing with the automatic decision, or deciding without one, needs no note.
    assert run("verdict", "sign", world.release, "--decision", "rejected", "--key",
               world.inspector_key, "--automatic", automatic, "--out", human) == 0  # fmt: skip


def test_verify_without_state_warns_that_rollback_protection_is_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = build(tmp_path, approved=True)
    bundle = tmp_path / "bundle.json"
    assert run("bundle", world.artifact, "--release", world.release, "--log", world.logdir,
               "--out", bundle) == 0  # fmt: skip
    capsys.readouterr()
    assert run("verify", world.artifact, "--bundle", bundle, "--trust-root", world.trust_root) == 0
    assert "rollback and freeze protection are off" in capsys.readouterr().err
    assert run("verify", world.artifact, "--bundle", bundle, "--trust-root", world.trust_root,
               "--state", tmp_path / "state") == 0  # fmt: skip
    assert "protection are off" not in capsys.readouterr().err


def test_submit_prints_a_labelled_receipt_and_keeps_the_json_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = build(tmp_path)
    verdict = tmp_path / "v.json"
    assert run("verdict", "sign", world.release, "--decision", "approved", "--key",
               world.inspector_key, "--out", verdict) == 0  # fmt: skip
    capsys.readouterr()
    assert run("submit", verdict, "--log", world.logdir, "--trust-root", world.trust_root) == 0
    text = capsys.readouterr().out
    assert text.startswith("verdict logged\n")
    for label in ("log index:  1", "sha256:", "tree size:  2", "inclusion proof (1 hash):",
                  "checkpoint:", "example.org/log"):  # fmt: skip
        assert label in text
    assert "\t" not in text
    assert (
        run("submit", verdict, "--log", world.logdir, "--trust-root", world.trust_root, "--json")
        == 0
    )
    receipt = json.loads(capsys.readouterr().out)
    assert receipt["log_index"] == 1 and receipt["duplicate"] is True


def test_policy_authority_writes_checks_explains_and_signs_a_yaml_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = build(tmp_path)
    policy, ent = tmp_path / "policy.yaml", tmp_path / "us.yaml"
    assert run("policy", "create", "--name", "us-2024", "--out", policy) == 0
    assert run("policy", "create", "--out", policy) == 2  # never overwrites silently
    ent.write_text(
        "customer: us-hospital\njurisdiction: US\nproduct: endpoint-antivirus\n"
        "start: 2023-01-01\nend: 2026-01-01\n"
    )
    assert run("policy", "check", policy) == 0
    assert run("entitlement", "check", ent, "--json") == 0
    assert '"customer": "us-hospital"' in capsys.readouterr().out
    (tmp_path / "bad.yaml").write_text("customer: x\njurisdiction: US\nproduct: p\nstart: 2024\n")
    assert run("entitlement", "check", tmp_path / "bad.yaml") == 2
    assert "bad.yaml" in capsys.readouterr().err
    capsys.readouterr()

    def explain(date: str, *extra: str) -> tuple[int, dict[str, object]]:
        code = run("policy", "explain", policy, "--entitlement", ent, "--customer", "us-hospital",
                   "--release", world.release, "--date", date, "--json", *extra)  # fmt: skip
        return code, json.loads(capsys.readouterr().out)

    assert explain("2024-09-01") == (0, explain("2024-09-01")[1])
    code, doc = explain("2024-09-01")
    assert code == 0 and doc["rule"] == "entitled" and doc["allowed"] is True
    code, doc = explain("2024-10-01")
    assert code == 1 and doc["rule"] == "no-updates" and doc["policy"] == "us-2024"
    code = run("policy", "explain", policy, "--customer", "nobody", "--product",
               "endpoint-antivirus", "--date", "2024-01-01")  # fmt: skip
    assert code == 1 and "no-entitlement" in capsys.readouterr().out

    signed = tmp_path / "policy.json"
    assert run("policy", "sign", policy, "--key", world.vendor_key, "--trust-root",
               world.trust_root, "--out", signed) == 1  # fmt: skip
    assert "is not a policy key" in capsys.readouterr().err and not signed.exists()
    assert run("policy", "sign", policy, "--key", world.policy_key, "--trust-root",
               world.trust_root, "--out", signed) == 0  # fmt: skip
    assert run("policy", "check", signed) == 0
    assert "signed envelope" in capsys.readouterr().out
    assert run("submit", signed, "--log", world.logdir, "--trust-root", world.trust_root) == 0
    ent_signed = tmp_path / "us.json"
    body = Entitlement.from_dict(yaml.safe_load(ent.read_text()) | {"start": "2023-01-01",
                                 "end": "2026-01-01"}).to_dict()  # fmt: skip
    statement = Statement((Subject("us-hospital", "00" * 32),), ENTITLEMENT_PREDICATE_TYPE, body)
    ent_signed.write_bytes(statement.sign([Signer.parse(world.vendor_key.read_text())]).to_bytes())
    # The private opening of a committed entitlement ({"salt", "entitlement"}) works too.
    opening = tmp_path / "us.opening.json"
    opening.write_text(json.dumps({"salt": "00" * 16, "entitlement": body}))
    code = run("policy", "explain", policy, "--entitlement", opening, "--customer",
               "us-hospital", "--product", "endpoint-antivirus", "--date", "2024-09-01")  # fmt: skip
    assert code == 0
    # The signed files work wherever the YAML does.
    code = run("policy", "explain", signed, "--entitlement", ent_signed, "--customer",
               "us-hospital", "--product", "endpoint-antivirus", "--date", "2024-10-01")  # fmt: skip
    assert code == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name: p\nissued: 2024-01-01\njurisdictions: [\n", "not valid YAML at line"),
        ("name: p\nissued: 2024-01-01\n", "'jurisdictions' must be a list"),
        ("name: p\nissued: tomorrow\njurisdictions: []\n", "not an RFC 3339 time"),
        ("- a list\n", "must be a YAML mapping"),
    ],
)
def test_policy_check_names_the_file_and_the_problem(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text(content)
    assert run("policy", "check", policy) == 2
    err = capsys.readouterr().err
    assert str(policy) in err and message in err and "Traceback" not in err


def test_log_search_by_artifact_digest_product_and_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = build(tmp_path, approved=True)
    release_sha = load_envelope(world.release, "release").sha256
    capsys.readouterr()

    def search(*criteria: str | Path) -> tuple[int, list[dict[str, object]]]:
        code = run("log", "search", world.logdir, *criteria, "--json")
        return code, json.loads(capsys.readouterr().out)["entries"]

    code, found = search("--artifact", world.artifact)
    assert code == 0 and [(e["index"], e["kind"]) for e in found] == [(0, "release")]
    code, found = search("--sha256", release_sha)  # the release and the verdicts on it
    assert [(e["index"], e["kind"]) for e in found] == [(0, "release"), (1, "verdict")]
    assert found[1]["decision"] == "approved"
    code, found = search("--product", "endpoint-antivirus", "--version", "1.0.0")
    assert code == 0 and found[0]["sha256"] == release_sha
    code, found = search("--index", "1")
    assert code == 0 and found[0]["kind"] == "verdict"
    assert search("--product", "endpoint-antivirus", "--version", "9.9.9") == (1, [])
    assert run("log", "search", world.logdir, "--index", "7") == 2
    assert run("log", "search", world.logdir, "--sha256", "XYZ") == 2
    assert run("log", "search", world.logdir) == 2  # nothing to search for
    assert run("log", "search", world.logdir, "--artifact", world.artifact) == 0
    assert capsys.readouterr().out.startswith(
        f"0\trelease\t{release_sha}\tendpoint-antivirus 1.0.0"
    )


def test_vendor_creates_a_committed_entitlement_from_readable_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = build(tmp_path)
    ent = tmp_path / "us.yaml"
    ent.write_text(
        "customer: us-hospital\njurisdiction: US\nproduct: endpoint-antivirus\n"
        "start: 2023-01-01\nend: 2026-01-01\nclient_keys: []\n"
    )
    out, opening = tmp_path / "us.json", tmp_path / "us.opening.json"
    vendor_key = world.vendor_key
    code = run(
        "entitlement", "create", "--from", ent, "--key", vendor_key, "--out", out,
        "--opening", opening,
    )  # fmt: skip
    assert code == 0
    # Only a commitment is in what gets logged; the opening names the customer.
    assert b"us-hospital" not in out.read_bytes()
    assert (opening.stat().st_mode & 0o777) == 0o600
    capsys.readouterr()
    assert run("entitlement", "open", out, "--opening", opening, "--json") == 0
    assert json.loads(capsys.readouterr().out)["entitlement"]["customer"] == "us-hospital"
    # Either the YAML or the options, never both; nothing at all names what is missing.
    assert run(
        "entitlement", "create", "--from", ent, "--customer", "x", "--key", vendor_key,
        "--out", out, "--opening", opening,
    ) == 2  # fmt: skip
    assert "--customer" in capsys.readouterr().err
    assert run(
        "entitlement", "create", "--key", vendor_key, "--out", out, "--opening", opening
    ) == 2
    assert "--from" in capsys.readouterr().err

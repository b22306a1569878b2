"""``clearance audit``: exit codes, SARIF and HTML output, over a directory and over HTTP,
and split views detected by comparing with what a real witness cosigned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from _sarif_schema import official_sarif_schema
from audit.helpers import ORIGIN, World, rollout_transition
from clearance.attest import Envelope
from clearance.cli import main
from clearance.keys import Signer
from clearance.log.store import TransparencyLog
from clearance.witness import LogConfig, Witness, WitnessState, collect_cosignatures
from clearance.witness.collector import WitnessConfig
from clearance.witness.server import create_app
from witness.helpers import MemoryLog, start_server


def validate_sarif(doc: object) -> None:
    """The official OASIS SARIF 2.1.0 JSON schema (shipped with the inspection tests)."""
    import jsonschema

    schema = official_sarif_schema()
    validator = jsonschema.Draft4Validator(
        schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(doc), key=str)
    assert not errors, errors[0].message


def audit(world: World, state: Path, *extra: str) -> int:
    return main(
        [
            "audit",
            str(world.logdir),
            "--trust-root",
            str(world.write_trust_root()),
            "--state",
            str(state),
            "--quiet",
            "--no-reinspect",
            *extra,
        ]
    )


def test_clean_then_discrepancy_with_sarif_and_html(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rel = world.release("1.0.0")
    world.append(rel.to_bytes(), world.verdict(rel).to_bytes())
    assert audit(world, tmp_path / "s") == 0
    assert "clean" in capsys.readouterr().out
    stranger = Signer.generate("stranger.example")
    world.append(
        world.release("1.1.0", signer=stranger).to_bytes(),
        rollout_transition("halted", "<script>alert(1)</script>"),
    )
    sarif, html = tmp_path / "a.sarif", tmp_path / "a.html"
    code = audit(world, tmp_path / "s", "--sarif", str(sarif), "--html", str(html), "--json")
    assert code == 1
    out = json.loads(capsys.readouterr().out)
    assert out["audited_from"] == 2 and out["audited_to"] == 4
    doc = json.loads(sarif.read_text())
    assert doc["version"] == "2.1.0"
    validate_sarif(doc)
    run = doc["runs"][0]
    rule_ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    results = run["results"]
    assert sorted(r["ruleId"] for r in results) == ["audit.bad-signature", "audit.rollout-halted"]
    assert all(r["ruleId"] in rule_ids for r in results)
    assert results[0]["locations"][0]["logicalLocations"][0]["name"] == "entry 2"
    page = html.read_text()
    assert "&lt;script&gt;" in page and "<script>alert" not in page


def test_bad_input_is_exit_2(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = world.write_trust_root()
    assert main(["audit", "--trust-root", str(root)]) == 2
    assert main(["audit", str(tmp_path), "--trust-root", str(root)]) == 2
    assert "not a log directory" in capsys.readouterr().err
    assert main(["audit", str(world.logdir), "--trust-root", str(tmp_path / "nope.json")]) == 2
    (tmp_path / "bad.json").write_text("{}")
    assert main(["audit", str(world.logdir), "--trust-root", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err


def test_state_of_another_log_is_refused(world: World, tmp_path: Path) -> None:
    world.append(world.release("1.0.0").to_bytes())
    assert audit(world, tmp_path / "s") == 0
    other = World(tmp_path / "other")
    other.append(other.release("1.0.0").to_bytes())
    assert audit(other, tmp_path / "s") == 2


def test_audit_over_http(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rel = world.release("1.0.0")
    world.append(rel.to_bytes(), world.verdict(rel).to_bytes())
    app = FastAPI()
    app.mount("/log", StaticFiles(directory=world.logdir / "public"), name="log")
    server = start_server(app)
    try:
        code = main(
            [
                "audit",
                "--server",
                server.url,
                "--trust-root",
                str(world.write_trust_root()),
                "--state",
                str(tmp_path / "s"),
                "--quiet",
                "--json",
            ]
        )
    finally:
        server.stop()
    assert code == 0
    assert json.loads(capsys.readouterr().out)["audited_to"] == 2


def test_split_view_against_a_witness(world: World, tmp_path: Path) -> None:
    rel = world.release("1.0.0")
    world.append(rel.to_bytes(), world.verdict(rel).to_bytes(), b'{"x": 1}')
    # The operator shows the witness another tree of the same size, signed with the log key.
    other = MemoryLog(ORIGIN, world.log_signer)
    other.append(b"a", b"b", b"c")
    witness_key = Signer.generate("witness.example")
    w = Witness(
        witness_key,
        [LogConfig(ORIGIN, (world.log_signer.verifier,))],
        WitnessState.open(tmp_path / "w"),
    )
    server = start_server(create_app(w))
    try:
        result = collect_cosignatures(
            other.checkpoint(),
            [WitnessConfig("w", server.url, witness_key.verifier)],
            other.consistency_proof,
            1,
        )
        assert result.threshold_met
        assert (
            audit(world, tmp_path / "s", "--witness", server.url, "--sarif", str(tmp_path / "x"))
            == 1
        )
        doc = json.loads((tmp_path / "x").read_text())
        validate_sarif(doc)
        assert [r["ruleId"] for r in doc["runs"][0]["results"]] == [
            "audit.split-view",
            "audit.entry-unrecognized",
        ]
    finally:
        server.stop()


def test_witness_with_consistent_prefix_is_fine(world: World, tmp_path: Path) -> None:
    rel = world.release("1.0.0")
    world.append(rel.to_bytes())
    witness_key = Signer.generate("witness.example")
    w = Witness(
        witness_key,
        [LogConfig(ORIGIN, (world.log_signer.verifier,))],
        WitnessState.open(tmp_path / "w"),
    )
    server = start_server(create_app(w))
    try:
        with TransparencyLog.open(world.logdir) as log:
            first = collect_cosignatures(
                log.checkpoint(),
                [WitnessConfig("w", server.url, witness_key.verifier)],
                log.consistency_proof,
                1,
            )
            assert first.threshold_met
            log.append([world.verdict(rel).to_bytes()])
        assert audit(world, tmp_path / "s", "--witness", server.url) == 0
    finally:
        server.stop()


def test_tuf_target_of_a_rejected_release_is_flagged(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Case 3 for the auditor: TUF must follow the log.  A gateway that keeps (or puts) a
    rejected release in its TUF targets is flagged ``audit.tuf-not-approved``."""
    from clearance.gateway.tuf_repo import TufRepository

    good, bad = world.release("1.0.0"), world.release("1.1.0")
    world.append(
        good.to_bytes(),
        world.verdict(good).to_bytes(),
        bad.to_bytes(),
        world.verdict(bad, "rejected").to_bytes(),
    )
    tuf = TufRepository(tmp_path / "tuf")

    def publish(version: str, release: Envelope) -> None:
        path = f"agent/{version}/rules.yar"
        tuf.publish(
            {path: version.encode()}, {path: {"clearance": {"release_sha256": release.sha256}}}
        )

    publish("1.0.0", good)
    app = FastAPI()
    app.mount("/log", StaticFiles(directory=world.logdir / "public"), name="log")
    app.mount("/tuf", StaticFiles(directory=tmp_path / "tuf"), name="tuf")
    server = start_server(app)
    args = [
        "audit", "--server", server.url, "--trust-root", str(world.write_trust_root()),
        "--state", str(tmp_path / "s"), "--quiet", "--json", "--no-reinspect",
    ]  # fmt: skip
    try:
        assert main(args) == 0, capsys.readouterr()
        capsys.readouterr()
        publish("1.1.0", bad)  # a gateway that publishes the rejected release
        assert main(args) == 1
        report = json.loads(capsys.readouterr().out)
    finally:
        server.stop()
    flagged = [f for f in report["findings"] if f["ruleId"] == "audit.tuf-not-approved"]
    assert len(flagged) == 1 and "agent/1.1.0/rules.yar" in flagged[0]["message"]
    assert "rejected" in flagged[0]["message"]


def test_tuf_target_of_a_revoked_release_is_flagged(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A release approved, then revoked by the policy authority, must leave TUF too."""
    from clearance.attest.recovery import revoke_release
    from clearance.gateway.tuf_repo import TufRepository

    rel = world.release("1.0.0")
    world.append(
        rel.to_bytes(),
        world.verdict(rel).to_bytes(),
        revoke_release(rel, "stolen key", [world.policy_key]).to_bytes(),
    )
    tuf = TufRepository(tmp_path / "tuf")
    path = "agent/1.0.0/rules.yar"
    tuf.publish({path: b"x"}, {path: {"clearance": {"release_sha256": rel.sha256}}})
    app = FastAPI()
    app.mount("/log", StaticFiles(directory=world.logdir / "public"), name="log")
    app.mount("/tuf", StaticFiles(directory=tmp_path / "tuf"), name="tuf")
    server = start_server(app)
    try:
        code = main(
            [
                "audit", "--server", server.url, "--trust-root", str(world.write_trust_root()),
                "--state", str(tmp_path / "s"), "--quiet", "--json", "--no-reinspect",
            ]
        )  # fmt: skip
    finally:
        server.stop()
    assert code == 1
    report = json.loads(capsys.readouterr().out)
    flagged = [f for f in report["findings"] if f["ruleId"] == "audit.tuf-not-approved"]
    assert len(flagged) == 1 and "revoked" in flagged[0]["message"]

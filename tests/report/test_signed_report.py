"""A signed report is logged and citable: `clearance submit` logs it, `clearance report
verify` checks a report folder against its logged envelope; each attack on it fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.helpers import World
from clearance.attest import Envelope, Statement, statement_of
from clearance.cli import main
from clearance.keys import Signer
from report.support import populate

PERIOD = ["--from", "2026-11-01", "--to", "2026-11-30"]


def _key_file(directory: Path, signer: Signer) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{signer.name}.key"
    path.write_text(signer.to_string() + "\n")
    return path


def _signed_report(world: World, tmp_path: Path, signer: Signer) -> Path:
    out = tmp_path / "out"
    main(
        [
            "report",
            str(world.logdir),
            "--trust-root",
            str(world.write_trust_root()),
            *PERIOD,
            "--out",
            str(out),
            "--no-pdf",
            "--key",
            str(_key_file(tmp_path / "keys", signer)),
        ]
    )
    assert (out / "report.dsse.json").is_file()
    return out


def _submit(world: World, envelope: Path) -> int:
    return main(
        [
            "submit",
            str(envelope),
            "--log",
            str(world.logdir),
            "--trust-root",
            str(world.write_trust_root()),
        ]
    )


def _verify(world: World, out: Path, *extra: str) -> int:
    return main(
        [
            "report",
            "verify",
            str(out),
            "--log",
            str(world.logdir),
            "--trust-root",
            str(world.write_trust_root()),
            "--json",
            *extra,
        ]
    )


def test_logged_report_verifies_against_the_log(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(world)
    out = _signed_report(world, tmp_path, world.policy_key)
    capsys.readouterr()
    assert _submit(world, out / "report.dsse.json") == 0
    receipt_text = capsys.readouterr().out
    assert "report" in receipt_text
    world.append(world.release("2.0.0").to_bytes())  # the log grows after the report
    assert _verify(world, out) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["log_index"] == 9 and result["treeSize"] == 9 and result["checkpointSize"] == 11
    assert result["signers"] == [f"regulator.example+{world.policy_key.verifier.key_id:08x}"]
    assert _verify(world, out, "--entry", "9") == 0
    capsys.readouterr()
    assert _verify(world, out, "--entry", "10") == 1
    assert "not this report's envelope" in json.loads(capsys.readouterr().out)["message"]


def test_attack_report_signed_by_a_key_outside_its_role_is_refused(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The vendor is the party the report judges: its signature does not make a report."""
    populate(world)
    out = _signed_report(world, tmp_path, world.vendor)
    capsys.readouterr()
    assert _submit(world, out / "report.dsse.json") == 1
    assert "inspector or policy authority" in capsys.readouterr().err
    world.append((out / "report.dsse.json").read_bytes())  # logged behind the rule's back
    assert _verify(world, out) == 1
    failure = json.loads(capsys.readouterr().out)
    assert (
        failure["check"] == "report-signature"
        and "inspector or policy authority" in failure["message"]
    )


def test_attack_tampered_report_file_fails_verify(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(world)
    out = _signed_report(world, tmp_path, world.inspector)
    assert _submit(world, out / "report.dsse.json") == 0
    html = out / "report.html"
    html.write_bytes(html.read_bytes().replace(b"RED FLAG", b"explained"))
    capsys.readouterr()
    assert _verify(world, out) == 1
    failure = json.loads(capsys.readouterr().out)
    assert failure["check"] == "report-file-tampered"
    assert failure["message"].startswith("report.html: SHA-256")
    html.unlink()
    assert _verify(world, out) == 1
    assert "is not in" in json.loads(capsys.readouterr().out)["message"]


def test_attack_report_citing_a_root_that_is_not_the_logs_fails_verify(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A producer signs a report over the right files but cites a tree the log never had
    (e.g. computed from a forked view): the log refuses it, and verify catches it even when
    it got logged anyway."""
    populate(world)
    out = _signed_report(world, tmp_path, world.policy_key)
    honest = statement_of(Envelope.from_bytes((out / "report.dsse.json").read_bytes()))
    forged = Statement(
        honest.subjects,
        honest.predicate_type,
        {**honest.predicate, "rootHash": "00" * 32},
    ).sign([world.policy_key])
    (out / "report.dsse.json").write_bytes(forged.to_bytes())
    capsys.readouterr()
    assert _submit(world, out / "report.dsse.json") == 1
    assert "the log's root at that size is" in capsys.readouterr().err
    world.append(forged.to_bytes())
    assert _verify(world, out) == 1
    failure = json.loads(capsys.readouterr().out)
    assert failure["check"] == "report-tree-mismatch"
    assert "not the log's root at that size" in failure["message"]
    # A report citing a size the log never reached fails the same check.
    ahead = Statement(
        honest.subjects, honest.predicate_type, {**honest.predicate, "treeSize": 99}
    ).sign([world.policy_key])
    (out / "report.dsse.json").write_bytes(ahead.to_bytes())
    assert _verify(world, out) == 1
    assert "has only 10 entries" in json.loads(capsys.readouterr().out)["message"]


def test_unlogged_report_is_not_citable(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(world)
    out = _signed_report(world, tmp_path, world.policy_key)
    capsys.readouterr()
    assert _verify(world, out) == 1
    failure = json.loads(capsys.readouterr().out)
    assert failure["check"] == "report-not-logged"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["verify"], "give the report folder"),
        (["verify", "nowhere"], "give either --log LOGDIR or --server URL"),
        (["LOGDIR", "--out", "o"], "a report needs --from, --to"),
        (["LOGDIR", *PERIOD, "--out", "o", "--submit-server", "http://x"], "give --key too"),
    ],
)
def test_bad_verify_input_is_one_line(
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    args = [str(world.logdir) if a == "LOGDIR" else a for a in args]
    code = main(["report", *args, "--trust-root", str(world.write_trust_root())])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_attack_logged_report_citing_another_tree_is_flagged_by_the_auditor(
    world: World, tmp_path: Path
) -> None:
    """A report with a forged root, logged behind the admission rule's back, is found by
    the auditor's replay (audit.report-tree-mismatch); the honest report beside it is not."""
    from audit.test_auditor import run

    populate(world)
    out = _signed_report(world, tmp_path, world.policy_key)
    honest_bytes = (out / "report.dsse.json").read_bytes()
    honest = statement_of(Envelope.from_bytes(honest_bytes))
    forged = Statement(
        honest.subjects, honest.predicate_type, {**honest.predicate, "rootHash": "00" * 32}
    ).sign([world.policy_key])
    (honest_index,) = world.append(honest_bytes)
    (forged_index,) = world.append(forged.to_bytes())
    report = run(world, tmp_path / "state")
    flagged = [
        f
        for f in report.findings  # type: ignore[attr-defined]
        if f.rule_id == "audit.report-tree-mismatch"
    ]
    assert [f.entry_index for f in flagged] == [forged_index]
    assert honest_index < forged_index
    assert "not the log's at size" in flagged[0].message

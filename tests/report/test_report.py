"""The regulator's report over a real log: contents, equal treatment, signature, PDF."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from audit.helpers import World
from clearance.attest import Envelope, statement_of
from clearance.cli import main
from report.support import populate, producer_key

PERIOD = ["--from", "2026-11-01", "--to", "2026-11-30"]


def _run(world: World, out: Path, *extra: str) -> int:
    return main(
        [
            "report",
            str(world.logdir),
            "--trust-root",
            str(world.write_trust_root()),
            *PERIOD,
            "--out",
            str(out),
            "--no-pdf",
            *extra,
        ]
    )


def test_report_lists_updates_decisions_and_reasons(world: World, tmp_path: Path) -> None:
    populate(world)
    out = tmp_path / "out"
    assert _run(world, out, "--json") == 1  # YY's difference has no policy rule: red flag
    summary = json.loads((out / "summary.json").read_text())
    assert summary["releases"] == 2 and summary["treeSize"] == 9 and summary["auditClean"]
    html = (out / "report.html").read_text()
    assert "content.targeting" in html and "2×high" in html  # findings of the rejected one
    # Every decision is for the approved release only, one per customer.
    assert summary["decisions"] == 3 and summary["withheld"] == 2
    assert "withheld from xx-hospital (XX): rule <code>no-updates</code> of policy" in html
    assert "log entry 5" in html
    assert "<svg" in html  # plots inline: the report needs no network
    assert 'src="http' not in html and 'href="http' not in html


def test_equal_treatment_explains_by_policy_and_flags_the_rest(
    world: World, tmp_path: Path
) -> None:
    populate(world)
    out = tmp_path / "out"
    _run(world, out)
    html = (out / "report.html").read_text()
    section = html.split('id="equal-treatment"')[1].split("</section>")[0]
    rows = [r for r in section.split("<tr") if "treatment" in r.split(">")[0]]
    assert len(rows) == 2
    xx = next(r for r in rows if "<td>XX</td>" in r)
    yy = next(r for r in rows if "<td>YY</td>" in r)
    assert (
        "explained" in xx
        and "ban-2026" in xx
        and "log entry 5" in xx
        and "flag" not in xx.split(">")[0]
    )
    assert "RED FLAG" in yy and "entitlement-inactive" in yy


def test_focus_on_one_jurisdiction(world: World, tmp_path: Path) -> None:
    populate(world)
    out = tmp_path / "out"
    assert _run(world, out, "--jurisdiction", "XX") == 0  # XX's difference is explained
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["jurisdiction"] == "XX" and summary["decisions"] == 1 and summary["redFlags"] == 0
    )


def test_period_excludes_other_dates(world: World, tmp_path: Path) -> None:
    populate(world)
    out = tmp_path / "out"
    main(
        [
            "report",
            str(world.logdir),
            "--trust-root",
            str(world.write_trust_root()),
            "--from",
            "2025-01-01",
            "--to",
            "2025-12-31",
            "--out",
            str(out),
            "--no-pdf",
        ]
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["releases"] == 0 and summary["decisions"] == 0


def test_signed_report_binds_files_and_tree_size(world: World, tmp_path: Path) -> None:
    populate(world)
    key, signer = producer_key(tmp_path / "keys")
    out = tmp_path / "out"
    _run(world, out, "--key", str(key))
    envelope = Envelope.from_bytes((out / "report.dsse.json").read_bytes())
    assert envelope.verify([signer.verifier]) == [signer.verifier]
    statement = statement_of(envelope, "https://clearance.dev/report/v1")
    subjects = {s.name: s.sha256 for s in statement.subjects}
    html = (out / "report.html").read_bytes()
    assert subjects == {"report.html": hashlib.sha256(html).hexdigest()}
    assert (
        statement.predicate["treeSize"] == 9
        and statement.predicate["producer"] == "regulator-report"
    )


def test_attack_edited_report_no_longer_matches_its_signature(world: World, tmp_path: Path) -> None:
    populate(world)
    key, _ = producer_key(tmp_path / "keys")
    out = tmp_path / "out"
    _run(world, out, "--key", str(key))
    html = (out / "report.html").read_bytes().replace(b"RED FLAG", b"explained")
    statement = statement_of(Envelope.from_bytes((out / "report.dsse.json").read_bytes()))
    assert statement.subjects[0].sha256 != hashlib.sha256(html).hexdigest()


def test_audit_discrepancy_is_in_the_report(world: World, tmp_path: Path) -> None:
    populate(world)
    world.append(world.release("6.6.6", signer=world.inspector).to_bytes())
    out = tmp_path / "out"
    assert _run(world, out) == 1
    html = (out / "report.html").read_text()
    assert "audit.bad-signature" in html and "found discrepancies" in html


def test_pdf_is_printed_by_chromium(world: World, tmp_path: Path) -> None:
    populate(world)
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
        ]
    )
    pdf = (out / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.count(b"/Type /Page") + pdf.count(b"/Type/Page") >= 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-12-01", "--to", "2026-11-01"], "--to is before --from"),
        (["--from", "yesterday", "--to", "2026-11-01"], "--from"),
        (
            ["--jurisdiction", "ZZ", "--from", "2026-01-01", "--to", "2026-12-31"],
            "jurisdiction 'ZZ'",
        ),
    ],
)
def test_bad_input_is_one_line(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    populate(world)
    code = main(
        [
            "report",
            str(world.logdir),
            "--trust-root",
            str(world.write_trust_root()),
            *args,
            "--out",
            str(tmp_path / "o"),
            "--no-pdf",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_entitlement_the_log_does_not_open_is_counted_not_decided(
    world: World, tmp_path: Path
) -> None:
    from clearance.attest import Statement, Subject
    from clearance.policy import ENTITLEMENT_PREDICATE_TYPE

    populate(world)
    hidden = Statement(
        (Subject("entitlement", "ab" * 32),), ENTITLEMENT_PREDICATE_TYPE, {"commitment": "ab" * 32}
    ).sign([world.vendor])
    world.append(hidden.to_bytes())
    out = tmp_path / "out"
    _run(world, out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["unopenedEntitlements"] == 1 and summary["decisions"] == 3
    assert "entries 9" in (out / "report.html").read_text()

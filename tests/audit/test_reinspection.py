"""Re-inspection with the real inspections (clearance.inspection.inspect_release, yara-x)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.helpers import World
from clearance.attest import Release, create_verdict
from clearance.cli import main
from clearance.inspection import inspect_release

HUNTING_RULE = b"""rule find_secret_documents {
    strings:
        $a = "TOP SECRET" ascii wide nocase
        $b = "CLASSIFIED" ascii wide nocase
        $c = "%PDF-"
    condition:
        any of them
}
"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "readme.txt").write_text("an ordinary clean file\n")
    (folder / "data.bin").write_bytes(bytes(range(256)) * 8)
    return folder


def test_real_reinspection_matches_honest_verdict_and_catches_a_lie(
    world: World, tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rel = world.release("1.0.0", content=HUNTING_RULE)
    outcome = inspect_release(Release.from_envelope(rel), world.artifacts, corpus=[corpus])
    assert outcome.summary, "the document-hunting rule must give findings"
    honest = create_verdict(
        rel,
        outcome.decision.decision,
        signers=world.inspector,
        findings_summary=outcome.summary,
        sarif_sha256=outcome.sarif_sha256,
        engines=dict(outcome.engines),
        inspected_at="2026-11-22T00:00:00Z",
    )
    lie = create_verdict(
        rel,
        "approved",
        signers=world.inspector,
        findings_summary={},
        sarif_sha256="0" * 64,
        engines=dict(outcome.engines),
        inspected_at="2026-11-22T00:00:01Z",
    )
    wrong_sarif = create_verdict(
        rel,
        outcome.decision.decision,
        signers=world.inspector,
        findings_summary=outcome.summary,
        sarif_sha256="1" * 64,
        engines=dict(outcome.engines),
        inspected_at="2026-11-22T00:00:02Z",
    )
    world.append(rel.to_bytes(), honest.to_bytes())
    args = [
        "audit",
        str(world.logdir),
        "--trust-root",
        str(world.write_trust_root()),
        "--state",
        str(tmp_path / "s"),
        "--artifacts",
        str(world.artifacts),
        "--corpus",
        str(corpus),
        "--quiet",
        "--json",
    ]
    assert main(args) == 0, capsys.readouterr()
    assert json.loads(capsys.readouterr().out)["counts"]["reinspections"] == 1
    world.append(lie.to_bytes(), wrong_sarif.to_bytes())
    assert main(args) == 1
    found = {
        (f["ruleId"], f["entryIndex"]) for f in json.loads(capsys.readouterr().out)["findings"]
    }
    assert {("audit.findings-mismatch", 2), ("audit.sarif-mismatch", 3)} <= found


def test_artifacts_fetched_from_the_gateway_tuf_targets(
    world: World, tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--server``: tiles from URL/log/, artifacts from URL/tuf/targets/ as the gateway's
    TufRepository lays them out (consistent-snapshot names)."""
    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles

    from clearance.gateway.tuf_repo import TufRepository
    from witness.helpers import start_server

    rel = world.release("1.0.0", content=HUNTING_RULE)
    release = Release.from_envelope(rel)
    outcome = inspect_release(release, world.artifacts, corpus=[corpus])
    lie = create_verdict(
        rel,
        "approved",
        signers=world.inspector,
        findings_summary={},
        engines=dict(outcome.engines),
        inspected_at="2026-11-22T00:00:00Z",
    )
    world.append(rel.to_bytes(), lie.to_bytes())
    tuf = TufRepository(tmp_path / "tuf")
    artifact = release.artifacts[0]
    target = f"agent/1.0.0/{artifact.name}"
    tuf.publish(
        {target: (world.artifacts / artifact.name).read_bytes()},
        {target: {"clearance": {"release_sha256": rel.sha256}}},
    )
    (world.artifacts / artifact.name).unlink()  # only the server has it now
    app = FastAPI()
    app.mount("/log", StaticFiles(directory=world.logdir / "public"), name="log")
    app.mount("/tuf", StaticFiles(directory=tmp_path / "tuf"), name="tuf")
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
                "--corpus",
                str(corpus),
                "--quiet",
                "--json",
            ]
        )
    finally:
        server.stop()
    assert code == 1
    found = [f["ruleId"] for f in json.loads(capsys.readouterr().out)["findings"]]
    assert found == ["audit.findings-mismatch"]

"""Embedded inspection through the job queue with the real engine; upload limits; bad data dir."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from clearance.attest import Artifact, create_release
from clearance.cli import main
from clearance.errors import BadInput

from .support import start_live

DOCUMENT_HUNTER = b"""rule find_secret_memos
{
    strings:
        $m1 = "TOP SECRET//NOFORN" ascii wide
        $m2 = "CLASSIFIED" ascii wide
        $doc = { D0 CF 11 E0 A1 B1 1A E1 }
    condition:
        $doc at 0 and any of ($m*)
}
"""


def test_embedded_inspection_refuses_document_hunting_content(tmp_path: Path) -> None:
    with start_live(tmp_path / "w", embedded_inspector=True, workers=1) as live:
        rules = tmp_path / "memos.yar"
        rules.write_bytes(DOCUMENT_HUNTER)
        env = create_release(
            product=live.world.product,
            version="6.6.6",
            channel="stable",
            artifacts=[Artifact.from_file(rules, "content")],
            signers=live.world.vendor,
        )
        with live.client("vendor") as vendor:
            vendor.submit(env.to_bytes())
            assert vendor.status(env.sha256)["release"]["state"] == "awaiting-artifacts"
            vendor.upload_artifact(DOCUMENT_HUNTER)
        deadline = time.monotonic() + 300
        with live.client(None) as anyone:
            while time.monotonic() < deadline:
                status = anyone.status(env.sha256)
                if status["release"]["state"] not in ("awaiting-artifacts", "inspecting"):
                    break
                time.sleep(0.3)
        assert status["release"]["state"] in ("rejected", "needs-review"), status
        assert status["job"]["state"] == "done"
        (verdict,) = status["verdicts"]
        assert verdict["inspector"] == "inspector" and verdict["decision"] != "approved"
        assert status["rollout"] is None  # never distributed
        sarif = live.world.data_dir / "reports" / f"{env.sha256}.sarif"
        assert b"content.document-hunting" in sarif.read_bytes()
        with live.client("operator") as operator, pytest.raises(BadInput):
            operator.download(env.sha256, "memos.yar", "anyone")


def test_artifact_upload_limits_and_digests(tmp_path: Path) -> None:
    with start_live(tmp_path / "w", max_artifact_bytes=1000) as live:
        auth = {"Authorization": f"Bearer {live.world.token('vendor')}"}
        big = b"x" * 1001
        import hashlib

        r = httpx.put(
            f"{live.url}/api/v1/artifacts/{hashlib.sha256(big).hexdigest()}",
            content=big,
            headers=auth,
        )
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        # Sent in chunks, without a length to refuse up front: refused once past the limit.
        chunked = httpx.put(
            f"{live.url}/api/v1/artifacts/{hashlib.sha256(big).hexdigest()}",
            content=iter([big[:600], big[600:]]),
            headers=auth,
        )
        assert chunked.status_code == 413
        assert "artifact is larger than the limit of 1000 bytes" in chunked.json()["detail"]
        wrong = httpx.put(f"{live.url}/api/v1/artifacts/{'0' * 64}", content=b"abc", headers=auth)
        assert wrong.status_code == 400 and "declared" in wrong.json()["detail"]
        stray = b"not named by any release"
        unreferenced = httpx.put(
            f"{live.url}/api/v1/artifacts/{hashlib.sha256(stray).hexdigest()}",
            content=stray,
            headers=auth,
        )
        assert (
            unreferenced.status_code == 403
            and "submit the signed release first" in (unreferenced.json()["detail"])
        )
        anonymous = httpx.put(f"{live.url}/api/v1/artifacts/{'0' * 64}", content=b"abc")
        assert anonymous.status_code == 401
        traversal = httpx.get(f"{live.url}/tuf/targets/..%2F..%2Fgateway.json")
        assert traversal.status_code == 404


def test_serve_on_a_missing_data_dir_is_one_line_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--data", str(tmp_path / "nothing"), "--port", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "not a gateway data directory" in err[-1]


def test_archive_with_path_traversal_is_never_approved(tmp_path: Path) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("rules/ok.yar", "rule ok { condition: false }\n")
        archive.writestr("../../escaped.yar", "rule escaped { condition: false }\n")
    data = buffer.getvalue()
    with start_live(tmp_path / "w", embedded_inspector=True, workers=1) as live:
        path = tmp_path / "content.zip"
        path.write_bytes(data)
        env = create_release(
            product=live.world.product,
            version="1.0.1",
            channel="stable",
            artifacts=[Artifact.from_file(path, "content")],
            signers=live.world.vendor,
        )
        with live.client("vendor") as vendor:
            vendor.submit(env.to_bytes())
            vendor.upload_artifact(data)
        deadline = time.monotonic() + 120
        with live.client(None) as anyone:
            while time.monotonic() < deadline:
                status = anyone.status(env.sha256)
                if status["release"]["state"] not in ("awaiting-artifacts", "inspecting"):
                    break
                time.sleep(0.2)
        assert status["release"]["state"] in ("inspection-failed", "rejected"), status
        if status["release"]["state"] == "inspection-failed":
            assert status["job"]["state"] == "failed" and status["job"]["attempts"] == 3
            assert "escaped.yar" in status["release"]["detail"]
        assert status["rollout"] is None
    assert not list(tmp_path.rglob("escaped.yar"))

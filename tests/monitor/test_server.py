"""The monitor and the report over a live gateway's /log/ (HTTP tiles), as an outsider."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearance.cli import main
from gateway.support import start_live
from gateway.test_flow import _approve


def test_monitor_and_report_over_http(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with start_live(tmp_path / "world") as live:
        _approve(live, tmp_path, "1.0.0")
        root = tmp_path / "trust-root.json"
        root.write_bytes(live.world.trust_root.to_bytes())
        args = [
            "monitor",
            "--server",
            live.url,
            "--trust-root",
            str(root),
            "--state",
            str(tmp_path / "state"),
            "--once",
        ]
        assert main(args) == 0, capsys.readouterr()
        assert capsys.readouterr().out == ""
        # A rejected release rolled out would alert; an approved one did not.  Report:
        out = tmp_path / "report"
        code = main(
            [
                "report",
                "--server",
                live.url,
                "--trust-root",
                str(root),
                "--from",
                "2000-01-01",
                "--to",
                "2099-12-31",
                "--out",
                str(out),
                "--no-pdf",
                "--json",
            ]
        )
        result = json.loads(capsys.readouterr().out)
        assert code == 0 and result["releases"] == 1 and result["auditClean"]


def test_unreachable_server_is_a_one_line_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with start_live(tmp_path / "world") as live:
        root = tmp_path / "trust-root.json"
        root.write_bytes(live.world.trust_root.to_bytes())
        url = live.url
    code = main(
        [
            "monitor",
            "--server",
            url,
            "--trust-root",
            str(root),
            "--state",
            str(tmp_path / "s"),
            "--once",
        ]
    )
    err = capsys.readouterr().err
    assert code == 3 and "log checkpoint" in err and len(err.strip().splitlines()) == 1

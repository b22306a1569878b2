"""The conventions every command shares: exit codes, JSON failures, files, progress, keys."""

from __future__ import annotations

import io
import json
import os
import socket
import stat
from pathlib import Path

import pytest
from rich.console import Console

from clearance.cli import main
from clearance.cli._common import EXIT_BAD_INPUT, EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE
from clearance.cli._progress import ProgressBar
from cli._world import build, run

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _json_failure(out: str) -> dict[str, object]:
    doc = json.loads(out)
    assert doc["ok"] is False and isinstance(doc["message"], str) and doc["message"]
    assert isinstance(doc["check"], str) and doc["check"]
    return doc  # type: ignore[no-any-return]


def test_exit_codes_are_documented_in_one_table_linked_from_the_readme() -> None:
    table = (REPO / "docs" / "cli.md").read_text()
    for code, words in (
        (EXIT_OK, "success"),
        (EXIT_REFUSED, "refused"),
        (EXIT_BAD_INPUT, "bad input"),
        (EXIT_UNREACHABLE, "could not be reached"),
    ):
        assert f"| {code} |" in table and words in table
    assert "docs/cli.md" in (REPO / "README.md").read_text()


def test_json_failure_for_a_refused_verification(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = build(tmp_path, approved=True)
    bundle = tmp_path / "bundle.json"
    assert (
        run(
            "bundle",
            world.artifact,
            "--release",
            world.release,
            "--log",
            world.logdir,
            "--out",
            bundle,
        )
        == 0
    )
    tampered = tmp_path / "tampered.yar"
    tampered.write_bytes(world.artifact.read_bytes() + b"// hidden\n")
    capsys.readouterr()
    code = run("verify", tampered, "--bundle", bundle, "--trust-root", world.trust_root, "--json")
    out, err = capsys.readouterr()
    assert code == EXIT_REFUSED
    doc = _json_failure(out)
    assert doc["check"] == "artifact-digest" and doc["exit_code"] == 1
    assert not str(doc["message"]).startswith("[")  # the check is its own field
    assert "refused: [artifact-digest]" in err


def test_json_failure_for_bad_input_and_bad_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["verify", str(tmp_path / "x"), "--bundle", str(tmp_path / "missing.json"),
                 "--trust-root", str(tmp_path / "t.json"), "--json"])  # fmt: skip
    assert code == EXIT_BAD_INPUT
    doc = _json_failure(capsys.readouterr().out)
    assert "not found" in str(doc["message"])
    assert main(["verify", "--json"]) == EXIT_BAD_INPUT
    doc = _json_failure(capsys.readouterr().out)
    assert doc["check"] == "usage" and "required" in str(doc["message"])


def test_unreachable_server_is_exit_3_not_a_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = build(tmp_path)
    url = f"http://127.0.0.1:{_free_port()}"
    capsys.readouterr()
    assert run("submit", world.release, "--server", url, "--json") == EXIT_UNREACHABLE
    doc = _json_failure(capsys.readouterr().out)
    assert doc["exit_code"] == 3 and "cannot reach" in str(doc["message"])
    code = run("log", "search", "--server", url, "--trust-root", world.trust_root, "--index", "0")
    assert code == EXIT_UNREACHABLE
    code = run("audit", "--server", url, "--trust-root", world.trust_root, "--no-reinspect",
               "--state", tmp_path / "audit-state")  # fmt: skip
    assert code == EXIT_UNREACHABLE
    assert "Traceback" not in capsys.readouterr().err


def test_mistyped_output_folder_is_an_error_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = build(tmp_path, approved=True)
    missing = tmp_path / "typo" / "verdict.json"
    capsys.readouterr()
    code = run("verdict", "sign", world.release, "--decision", "approved",
               "--key", world.inspector_key, "--out", missing)  # fmt: skip
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and "typo" in err and "does not exist" in err
    assert not missing.parent.exists()
    # Under a file, and onto a directory: one line each, never a traceback.
    for out in (world.release / "x.html", tmp_path):
        code = run("audit", world.logdir, "--trust-root", world.trust_root, "--no-reinspect",
                   "--state", tmp_path / "s", "--html", out)  # fmt: skip
        err = capsys.readouterr().err
        assert code == EXIT_BAD_INPUT and "Traceback" not in err and str(out) in err


def test_unexpected_file_system_error_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import clearance.cli.trust as trust

    def boom(args: object) -> int:
        raise PermissionError(13, "Permission denied", str(tmp_path / "locked"))

    monkeypatch.setattr(trust, "_show", boom)
    assert main(["trust", "show", str(tmp_path / "t.json"), "--json"]) == EXIT_BAD_INPUT
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Permission denied" in err
    assert _json_failure(out)["exit_code"] == 2


def test_published_files_are_world_readable_private_keys_are_not(tmp_path: Path) -> None:
    old = os.umask(0o077)  # even under a strict umask
    try:
        world = build(tmp_path, approved=True)
        bundle = tmp_path / "bundle.json"
        assert run("bundle", world.artifact, "--release", world.release, "--log", world.logdir,
                   "--out", bundle) == 0  # fmt: skip
    finally:
        os.umask(old)
    for published in (world.trust_root, world.release, tmp_path / "verdict.json", bundle,
                      world.vendor_pub):  # fmt: skip
        assert stat.S_IMODE(published.stat().st_mode) == 0o644, published
    assert stat.S_IMODE(world.vendor_key.stat().st_mode) == 0o600


def test_private_key_where_a_public_key_is_expected_says_so_without_leaking_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = build(tmp_path)
    capsys.readouterr()
    code = run("trust", "init", "--origin", "o", "--log-key", world.log_pub,
               "--vendor-key", world.vendor_key, "--inspector-key", world.inspector_pub,
               "--out", tmp_path / "t2.json")  # fmt: skip
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert "this is a private key; a public key (.pub) is expected" in err
    secret = world.vendor_key.read_text().strip().rsplit("+", 1)[1]
    assert secret not in err
    # And the other way round.
    code = run("verdict", "sign", world.release, "--decision", "approved",
               "--key", world.inspector_pub, "--out", tmp_path / "v.json")  # fmt: skip
    assert code == EXIT_BAD_INPUT and "a private key (.key) is expected" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["witness", "collect", "LOGDIR"],
        ["gateway", "init", "--data", "GW", "--trust-root", "ROOT", "--log-key", "LOGKEY"],
        ["audit", "LOGDIR", "--trust-root", "ROOT", "--no-reinspect", "--state", "STATE"],
    ],
)
def test_witness_means_name_url_keyfile_in_every_command(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = build(tmp_path)
    names = {"LOGDIR": world.logdir, "GW": tmp_path / "gw", "ROOT": world.trust_root,
             "LOGKEY": world.log_key, "STATE": tmp_path / "state"}  # fmt: skip
    argv = [str(names.get(a, a)) for a in argv]
    capsys.readouterr()
    assert main([*argv, "--witness", "w1=http://127.0.0.1:1"]) == EXIT_BAD_INPUT
    assert "NAME=URL=KEYFILE" in capsys.readouterr().err
    # A private key file in the KEYFILE place is refused as such.
    assert main([*argv, "--witness", f"w1=http://127.0.0.1:1={world.log_key}"]) == EXIT_BAD_INPUT
    assert "private key" in capsys.readouterr().err


def test_progress_bar_finishes_at_100_percent_on_a_terminal() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with ProgressBar(console=console) as bar:
        bar.start("first", 10)
        bar.advance(3)  # the engine under-reported: still shown finished
        bar.start("second", 4)
        bar.update(1)
    text = screen.getvalue()
    assert text.count("100.0%") >= 2 and "30.0%" not in text.rsplit("\r", 1)[-1]


def test_progress_bar_stays_off_when_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    screen = io.StringIO()
    with ProgressBar(console=Console(file=screen)) as bar:
        assert not bar.enabled
        bar.start("x", 5)
        bar.advance(5)
    assert screen.getvalue() == ""
    world = build(tmp_path)
    capsys.readouterr()
    assert run("log", "verify", world.logdir) == 0
    assert capsys.readouterr().err == ""


def test_json_results_always_say_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "generate", "k", "--dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    world = build(tmp_path / "w")
    capsys.readouterr()
    # Exit 1 after a result (nothing matched): the result says ok false.
    assert run("log", "search", world.logdir, "--product", "nothing", "--json") == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False

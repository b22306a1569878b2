"""The README's walk-through, run command by command on the sample content it ships.

The commands are read from README.md itself (so the test follows the text),
run in a scratch folder holding a copy of ``examples/walkthrough/artifacts``.
``witness serve ... &`` becomes a real witness on a free loopback port (the
README's fixed port 8001 is rewritten), the rest runs as written.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from clearance.cli import build_parser, main
from clearance.cli.witness import build_witness
from clearance.witness.server import create_app
from witness.helpers import start_server

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def walkthrough_commands() -> list[str]:
    text = README.read_text()
    start = text.index("**1. Keys and trust root.**")
    # The walk-through is its own section: the ones after it (replicas on other
    # machines, say) show commands that need more than this machine.
    section = text[start : text.index("\n## ", start)]
    commands: list[str] = []
    for block in re.findall(r"```\n(.*?)```", section, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith("clearance "):
                commands.append(line)
    return commands


def test_readme_ships_its_sample_content_and_says_how_to_get_the_command() -> None:
    text = README.read_text()
    assert "examples/walkthrough/" in text and ".venv/bin" in text
    assert (REPO / "examples" / "walkthrough" / "artifacts" / "rules.yar").is_file()
    for command in walkthrough_commands():
        for word in shlex.split(command):
            if word.startswith("artifacts/") or word == "us-hospital.yaml":
                assert (REPO / "examples" / "walkthrough" / word).exists(), word


@pytest.mark.slow  # the real inspection and the audit's re-inspection: about a minute
def test_readme_walkthrough_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(REPO / "examples" / "walkthrough" / "artifacts", tmp_path / "artifacts")
    shutil.copy(REPO / "examples" / "walkthrough" / "us-hospital.yaml", tmp_path)
    monkeypatch.chdir(tmp_path)
    servers = []
    witness_url = None
    commands = walkthrough_commands()
    assert len(commands) >= 20
    try:
        for command in commands:
            argv = shlex.split(command)[1:]
            if argv[:2] == ["witness", "serve"]:
                args = build_parser().parse_args([a for a in argv if a != "&"])
                witness = build_witness(args.key, args.state, args.log_key, args.origin, args.log)
                server = start_server(create_app(witness))
                servers.append(server)
                witness_url = server.url
                continue
            if witness_url is not None:
                argv = [a.replace("http://127.0.0.1:8001", witness_url) for a in argv]
            code = main(argv)
            out, err = capsys.readouterr()
            assert code == 0, f"{command}\n{out}\n{err}"
            if argv[0] == "inspect":
                assert ": approved" in out
            if argv[0] == "verify":
                assert out.startswith("OK endpoint-antivirus 2024.7.1")
            if argv[:2] == ["log", "search"]:
                assert "\trelease\t" in out
    finally:
        for server in servers:
            server.stop()
    assert witness_url is not None
    assert (tmp_path / "report.html").is_file() and (tmp_path / "audit.html").is_file()

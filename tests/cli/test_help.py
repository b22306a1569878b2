"""Every command's help, discovered from the parser (commands added later are walked too)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from clearance.cli import SUMMARIES, build_parser, command_modules, main
from clearance.cli._parser import iter_parsers, option_strings, sub_actions

REPO = Path(__file__).resolve().parents[2]
PARSER = build_parser()
COMMANDS = [path for path, _ in iter_parsers(PARSER)]


def _help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "clearance")
def test_every_command_help_has_examples_and_documented_options(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(path, capsys)
    assert "usage: clearance" in text
    # Every command's help ends with examples that run this very command.
    tail = text.rstrip().rsplit("examples:", 1)
    assert len(tail) == 2, f"clearance {' '.join(path)} --help has no examples"
    examples = [line for line in tail[1].strip().splitlines() if line.strip()]
    assert 1 <= len(examples) <= 2, f"clearance {' '.join(path)}: one or two examples"
    assert all("clearance" in line for line in examples)
    if path and not sub_actions(dict(iter_parsers(PARSER))[path]):
        assert f"clearance {' '.join(path)}" in tail[1]
    parser = dict(iter_parsers(PARSER))[path]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"clearance {' '.join(path)}: {name} has no help text"
        default = action.default
        if (
            action.option_strings
            and default not in (None, False, [], argparse.SUPPRESS)
            and not action.required
            and not isinstance(action, argparse._VersionAction)
        ):
            shown = parser._get_formatter()._expand_help(action)
            assert "default" in shown, f"clearance {' '.join(path)}: {name} hides its default"


def test_every_command_with_server_takes_a_token_named_in_its_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with_server = [
        p
        for p, parser in iter_parsers(PARSER)
        if "--server" in option_strings(parser) and not parser.get_default("_public_server")
    ]
    assert ("submit",) in with_server and ("verify",) in with_server
    assert ("audit",) not in with_server  # reads only public tiles: no token to offer
    for path in with_server:
        text = _help(path, capsys)
        assert "--token" in text and "CLEARANCE_TOKEN" in text, path


def test_every_command_module_has_a_summary_so_top_level_help_imports_none() -> None:
    assert set(command_modules()) <= set(SUMMARIES), "add the new command to SUMMARIES"
    registered = set(sub_actions(PARSER)[0].choices)
    assert registered == set(command_modules())
    # The summaries say what the commands' own help says.
    for name, parser in sub_actions(PARSER)[0].choices.items():
        assert parser.prog == f"clearance {name}"


def test_top_level_help_imports_no_command_module_nor_heavy_engine() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from clearance.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('lief', 'capa', 'yara_x', 'httpx', 'rich', 'fastapi', 'cryptography')"
        " or (m.startswith('clearance.cli.') and not m.split('.')[-1].startswith('_'))]\n"
        "print(','.join(sorted(heavy)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    ).stdout.strip()
    assert out == "", f"clearance --help imports {out}"


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [(["verfy"], "verify"), (["log", "serch"], "search"), (["polcy"], "policy")],
)
def test_mistyped_command_suggests_the_right_one(
    argv: list[str], suggestion: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"did you mean {suggestion!r}?" in err
    assert "Traceback" not in err


def test_mistyped_option_suggests_the_right_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "x", "--bundle", "b", "--trust-root", "t", "--staet", "s"]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --staet" in err
    assert "did you mean --state?" in err


def test_python_dash_m_clearance_works() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "clearance", "--version"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0 and result.stdout.startswith("clearance ")


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_script_knows_every_command_and_action(
    shell: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    for path in COMMANDS:
        if path:
            assert path[-1] in script
    assert "--trust-root" in script and "--witness" in script
    if shell == "bash":
        result = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
        assert result.returncode == 0, result.stderr


def test_man_page_documents_every_command_option_and_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page_file = tmp_path / "clearance.1"
    assert main(["man", "--out", str(page_file)]) == 0
    page = page_file.read_text()
    assert page.startswith(".TH CLEARANCE 1")
    for path, parser in iter_parsers(PARSER):
        if path and not sub_actions(parser):
            assert f".SS clearance {' '.join(path)}".replace("-", "\\-") in page
            for option in option_strings(parser) - {"-h", "--help"}:
                assert option.replace("-", "\\-") in page
    assert ".SH EXIT STATUS" in page and "refused the credentials" in page
    # The page renders with groff when it is installed (no warnings).
    groff = subprocess.run(["which", "groff"], capture_output=True).returncode == 0
    if groff:
        rendered = subprocess.run(
            ["groff", "-man", "-Tutf8", "-ww", str(page_file)], capture_output=True, text=True
        )
        assert rendered.returncode == 0 and "clearance verify" in rendered.stdout

"""``clearance completion (bash|zsh)``: a shell completion script generated from the parser.

Every command, action and option, with file completion for path arguments,
comes from the same parser the command line runs (``shtab``).
"""

from __future__ import annotations

import argparse

from clearance.cli._common import EXIT_OK, SubParsers, set_handler

SHELLS = ("bash", "zsh")


def register(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "completion",
        help="print a bash or zsh completion script",
        description="Print a completion script for SHELL on stdout. Load it in the running "
        "shell with `source <(clearance completion bash)`, or install it: see the examples.",
    )
    parser.add_argument("shell", metavar="SHELL", choices=SHELLS, help="bash or zsh")
    set_handler(parser, _completion)


def _completion(args: argparse.Namespace) -> int:
    print(completion_script(args.shell), end="")
    return EXIT_OK


def completion_script(shell: str) -> str:
    import shtab

    from clearance.cli import build_parser

    parser = build_parser()
    _mark_paths(parser, shtab)
    script: str = shtab.complete(parser, shell=shell)
    return script


def _mark_paths(parser: argparse.ArgumentParser, shtab: object) -> None:
    """Complete file names for every argument whose type is a path."""
    from pathlib import Path

    from clearance.cli._parser import iter_parsers

    for _, each in iter_parsers(parser):
        for action in each._actions:
            if action.type is Path:
                metavar = str(action.metavar or "")
                kind = "DIRECTORY" if "DIR" in metavar else "FILE"
                action.complete = getattr(shtab, kind)  # type: ignore[attr-defined]

"""Shared plumbing for the command-line groups: exit codes, output, file reading."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from clearance._untrusted import load_json
from clearance.errors import BadInput

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2

Handler = Callable[[argparse.Namespace], int]


class SubParsers(Protocol):
    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


def set_handler(parser: argparse.ArgumentParser, handler: Handler) -> None:
    """Attach the function that runs when this (sub)command is chosen."""
    parser.set_defaults(handler=handler)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print a machine-readable result on stdout"
    )


def emit(args: argparse.Namespace, result: dict[str, Any], text: str) -> None:
    """Print ``result`` as JSON when ``--json`` was given, ``text`` otherwise."""
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2, sort_keys=True))
    elif text:
        print(text)


def read_bytes(path: str | Path, what: str) -> bytes:
    """Read a file, turning any OS error into a one-line :class:`BadInput`."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: {what} is a directory, expected a file") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read {what}: {exc.strerror}") from None


def read_text(path: str | Path, what: str) -> str:
    data = read_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path}: {what} is not UTF-8 text") from None


def read_json(path: str | Path, what: str) -> Any:
    return load_json(read_bytes(path, what), f"{path}: {what}")


def stderr(message: str) -> None:
    print(message, file=sys.stderr)

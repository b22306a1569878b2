"""Shared plumbing for the command-line groups: exit codes, output, file reading.

Every command gets the same conventions from here and from :mod:`._parser`:

====  ==============================================================
code  meaning
====  ==============================================================
0     success
1     a verification or policy check refused, or discrepancies found
2     bad input or bad usage (the message names the input)
3     a server could not be reached, failed, or refused the credentials
====  ==============================================================

With ``--json`` a failure is printed on stdout too, as
``{"ok": false, "check": ..., "message": ..., "exit_code": N}`` (see
:func:`failure_result`), so a script always gets one JSON document.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from clearance.errors import BadInput

if TYPE_CHECKING:
    from clearance.gateway.client import GatewayClient

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3

#: The environment variable holding the caller's API token for ``--server``.
TOKEN_ENV = "CLEARANCE_TOKEN"  # noqa: S105 - the name of a variable, not a secret

Handler = Callable[[argparse.Namespace], int]


class SubParsers(Protocol):
    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


def add_actions(
    sub: SubParsers, name: str, *, metavar: str = "ACTION", **parser_options: Any
) -> SubParsers:
    """Add the command ``clearance NAME`` whose actions are its own subcommands (one
    must be given); returns where to add the actions."""
    group = sub.add_parser(name, **parser_options)
    actions = group.add_subparsers(dest=f"{name}_command", metavar=metavar)
    actions.required = True
    return actions


def set_handler(parser: argparse.ArgumentParser, handler: Handler) -> None:
    """Attach the function that runs when this (sub)command is chosen."""
    parser.set_defaults(handler=handler)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help='print a machine-readable result on stdout, failures too ({"ok": false, ...})',
    )


def mark_public_server(parser: argparse.ArgumentParser) -> None:
    """This command's ``--server`` reads only public files (log tiles, TUF): no ``--token``."""
    parser.set_defaults(_public_server=True)


def add_token_flag(parser: argparse.ArgumentParser) -> None:
    """``--token``: the API token for ``--server`` (the command line builder adds it to every
    command that has ``--server``; commands read it with :func:`gateway_client`)."""
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        help=f"API token of your role for --server (default: ${TOKEN_ENV}; prefer the "
        "variable, a token on the command line shows in the process list)",
    )


def gateway_client(args: argparse.Namespace, url: str | None = None) -> GatewayClient:
    """A client of ``--server`` carrying ``--token`` (or ``$CLEARANCE_TOKEN``)."""
    from clearance.gateway.client import GatewayClient

    server = url or getattr(args, "server", None)
    if not server:
        raise BadInput("no --server URL given")
    return GatewayClient(server, getattr(args, "token", None) or None)


def emit(args: argparse.Namespace, result: dict[str, Any], text: str, *, ok: bool = True) -> None:
    """Print ``result`` as JSON when ``--json`` was given, ``text`` otherwise.

    The JSON result always carries ``"ok"``: ``ok`` unless ``result`` sets it (a command
    that then exits 1, e.g. an audit with discrepancies, passes ``ok=False``)."""
    if getattr(args, "json", False):
        print(json.dumps({"ok": ok, **result}, indent=2, sort_keys=True))
    elif text:
        print(text)


def failure_result(check: str, message: str, exit_code: int) -> dict[str, Any]:
    """The JSON document ``--json`` prints on stdout when a command fails."""
    return {"ok": False, "check": check, "message": message, "exit_code": exit_code}


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
    from clearance._untrusted import load_json  # not at import time: `clearance --help` stays quick

    return load_json(read_bytes(path, what), f"{path}: {what}")


def existing_dir(path: Path, what: str) -> Path:
    """``path`` if it is an existing folder; a one-line :class:`BadInput` otherwise."""
    if not path.is_dir():
        reason = "is not a directory" if path.exists() else "not found"
        raise BadInput(f"{path}: {what} {reason}")
    return path


def stderr(message: str) -> None:
    print(message, file=sys.stderr)


WITNESS_METAVAR = "NAME=URL=KEYFILE"
WITNESS_HELP = (
    "a witness: its name, the URL its add-checkpoint is under, and its public key file "
    "(NAME.pub); repeatable"
)


class WitnessSpec(NamedTuple):
    """``--witness NAME=URL=KEYFILE``, the same in every command that takes it."""

    name: str
    url: str
    keyfile: Path
    vkey: str  # the verifier key line read from ``keyfile``


def parse_witness_spec(spec: str) -> WitnessSpec:
    """``NAME=URL=KEYFILE``; the URL may itself contain ``=``, the name and key file may not."""
    from clearance.keys import load_verifier

    name, sep, rest = spec.partition("=")
    url, sep2, keyfile = rest.rpartition("=")
    if not sep or not sep2 or not name or not url or not keyfile:
        raise BadInput(f"--witness {spec!r}: expected {WITNESS_METAVAR}")
    if not url.startswith(("http://", "https://")):
        raise BadInput(f"--witness {spec!r}: URL must start with http:// or https://")
    vkey = load_verifier(keyfile).to_string()
    return WitnessSpec(name, url, Path(keyfile), vkey)


def add_witness_option(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    parser.add_argument(
        "--witness",
        action="append",
        default=[],
        required=required,
        metavar=WITNESS_METAVAR,
        help=WITNESS_HELP,
    )

"""The ``clearance`` command: one sub-command group per module in this package.

Each group module exposes ``register(subparsers)``; this module only wires
them together (:func:`build_parser`) and turns errors into exit codes and
one-line messages (:func:`main`): 0 ok, 1 refused, 2 bad input or usage,
3 a server unreachable or the credentials refused (see docs/cli.md).

Start-up stays quick: for ``clearance COMMAND ...`` only that command's module
is imported, and ``clearance --help`` imports none (their one-line summaries
are in :data:`SUMMARIES`; a module missing there is imported, which is slower
but still correct).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import re
import sys
from collections.abc import Sequence

from clearance import __version__
from clearance.cli._common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    failure_result,
    stderr,
)
from clearance.cli._parser import Parser, UsageError, decorate
from clearance.errors import BadInput, ClearanceError, Refused, Unreachable

#: The summary ``clearance --help`` shows for each command, without importing its module.
SUMMARIES: dict[str, str] = {
    "audit": "replay the public log: signatures, consistency, verdicts, monitor alerts",
    "bundle": "an offline verification bundle for one artifact",
    "channel": "channel recovery by the policy authority",
    "code": "rebuild binaries and list endpoints (code inspection)",
    "completion": "print a bash or zsh completion script",
    "entitlement": "private (committed) customer entitlements",
    "gateway": "set up a gateway data directory, run remote inspection workers",
    "inspect": "inspect a release's content, binaries and source; sign a verdict",
    "keys": "generate and show Ed25519 signed-note keys",
    "log": "the append-only transparency log: init, append, verify, prove, search",
    "man": "print the manual page (roff), generated from the parser",
    "monitor": "follow the log, verify every checkpoint and entry, alert on suspicious events",
    "policy": "write, check, explain and sign a distribution policy (YAML)",
    "release": "vendor releases",
    "report": "the regulator's report for a period: updates, decisions, equal treatment",
    "revoke": "the policy authority revokes a release or a key",
    "serve": "run the gateway on a data directory",
    "submit": "append a release, verdict, policy or entitlement to the log",
    "trust": "the trust root endpoints pin",
    "verdict": "inspector verdicts",
    "verify": "verify an artifact offline from a bundle",
    "witness": "run a witness, or collect cosignatures for a log",
}

DESCRIPTION = (
    "Witnessed transparency log, independent inspection and policy-bound "
    "distribution for privileged endpoint software."
)
EPILOG = """exit codes:
  0  success
  1  a verification or policy check refused, or discrepancies found
  2  bad input or bad usage
  3  a server could not be reached or refused the credentials

examples:
  clearance verify rules.yar --bundle bundle.json --trust-root trust-root.json --state state
  clearance COMMAND --help"""


def command_modules() -> list[str]:
    """Every public module of this package is a command group (``register(sub)``)."""
    import clearance.cli as package

    return sorted(
        info.name
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    )


def _chosen(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``clearance`` parser.  Without ``argv``, every command is loaded (for the man
    page, completion and tests); with it, only the command ``argv`` names."""
    parser = Parser(prog="clearance", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"clearance {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    chosen = None if argv is None else _chosen(argv)
    for name in command_modules():
        if argv is not None and name != chosen and name in SUMMARIES:
            # Listed in `clearance --help`, never run: add_help=False marks it not loaded.
            sub.add_parser(name, help=SUMMARIES[name], add_help=False)
            continue
        module = importlib.import_module(f"clearance.cli.{name}")
        module.register(sub)
    decorate(parser)
    return parser


_CHECK_PREFIX = re.compile(r"^\[(?P<check>[a-z0-9-]+)\] ")


def _check_name(exc: BaseException) -> str:
    check = getattr(exc, "check", None)
    if isinstance(check, str) and check:
        return check
    name = type(exc).__name__.removesuffix("Error") or "error"
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def _fail(exc: BaseException, message: str, code: int, as_json: bool, prefix: str) -> int:
    match = _CHECK_PREFIX.match(message)
    if match:
        check, bare = match["check"], message[match.end() :]
    else:
        check, bare = _check_name(exc), message
    if as_json:
        print(json.dumps(failure_result(check, bare, code), indent=2, sort_keys=True))
    stderr(f"{prefix}: {message}")
    return code


def _os_error_message(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else ""
    reason = exc.strerror or str(exc)
    return f"{where}: {reason}" if where else reason


def _is_network_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("httpx", "httpcore", "h11")


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args_list
    try:
        parser = build_parser(args_list)
        args = parser.parse_args(args_list)
    except UsageError as exc:
        if as_json:
            print(json.dumps(failure_result("usage", str(exc), EXIT_BAD_INPUT), indent=2))
        exc.parser.print_usage(sys.stderr)
        stderr(f"{exc.parser.prog}: error: {exc}")
        return EXIT_BAD_INPUT
    as_json = bool(getattr(args, "json", False))
    try:
        code: int = args.handler(args)
    except Unreachable as exc:
        return _fail(exc, str(exc), EXIT_UNREACHABLE, as_json, "error")
    except Refused as exc:
        return _fail(exc, str(exc), EXIT_REFUSED, as_json, "refused")
    except (BadInput, ClearanceError) as exc:
        return _fail(exc, str(exc), EXIT_BAD_INPUT, as_json, "error")
    except KeyboardInterrupt:
        stderr("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (``clearance ... | head``): not an error of ours.
        # Point stdout at /dev/null so the interpreter's final flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except ConnectionError as exc:
        return _fail(exc, _os_error_message(exc), EXIT_UNREACHABLE, as_json, "error")
    except OSError as exc:
        # A file-system error no command anticipated: one line, never a traceback.
        return _fail(exc, _os_error_message(exc), EXIT_BAD_INPUT, as_json, "error")
    except Exception as exc:
        if _is_network_error(exc):
            return _fail(exc, f"network error: {exc}", EXIT_UNREACHABLE, as_json, "error")
        raise
    return code


__all__ = ["EXIT_REFUSED", "SUMMARIES", "build_parser", "command_modules", "main"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

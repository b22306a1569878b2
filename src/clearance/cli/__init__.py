"""The ``clearance`` command: one sub-command group per module in this package.

Each group module exposes ``register(subparsers)``; this module only wires
them together and turns errors into exit codes (0 ok, 1 refused, 2 bad input).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from clearance import __version__
from clearance.cli._common import EXIT_BAD_INPUT, EXIT_OK, EXIT_REFUSED, stderr
from clearance.errors import BadInput, ClearanceError, Refused


def _group_modules() -> list[str]:
    """Every public module of this package is a command group (``register(sub)``)."""
    import clearance.cli as package

    return sorted(
        info.name
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    )


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on usage errors already; keep its one-line message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        stderr(f"clearance: error: {message}")
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="clearance",
        description="Witnessed transparency log, independent inspection and "
        "policy-bound distribution for privileged endpoint software.",
    )
    parser.add_argument("--version", action="version", version=f"clearance {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _group_modules():
        module = importlib.import_module(f"clearance.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except Refused as exc:
        stderr(f"refused: {exc}")
        return EXIT_REFUSED
    except BadInput as exc:
        stderr(f"error: {exc}")
        return EXIT_BAD_INPUT
    except ClearanceError as exc:
        stderr(f"error: {exc}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        stderr("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (``clearance ... | head``): not an error of ours.
        # Point stdout at /dev/null so the interpreter's final flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

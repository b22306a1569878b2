"""The argument parser every command shares: help with defaults and examples, "did you mean".

:class:`Parser` is the ``parser_class`` of every sub-command, so conventions
reach commands added later without their authors doing anything:

- a usage error raises :class:`UsageError` (exit 2, and a JSON failure with
  ``--json``) instead of exiting from inside argparse;
- a mistyped command or action gets "did you mean 'verify'?";
- the help of every option shows its default (:class:`HelpFormatter`);
- :func:`decorate` gives every command with ``--server`` a ``--token`` and every
  command its examples (from :mod:`._examples`) at the end of its help.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterator
from typing import Any, NoReturn

from clearance.errors import BadInput

_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<word>[^']*)' \(choose from (?P<choices>.*)\)")


class UsageError(BadInput):
    """The command line itself is wrong (unknown option, missing argument...): exit 2."""

    check = "usage"

    def __init__(self, message: str, parser: argparse.ArgumentParser) -> None:
        super().__init__(message)
        self.parser = parser


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks and appends ``(default: X)`` to every option that has
    a default its help does not already mention."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or action.required
            or default is None
            or default is False
            or default == []
            or default is argparse.SUPPRESS
            or isinstance(action, argparse._HelpAction | argparse._VersionAction)
            or "default" in text.lower()
        ):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


def did_you_mean(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return close[0]
    prefixed = [c for c in choices if c.startswith(word) or word.startswith(c)]
    return prefixed[0] if len(prefixed) == 1 else None


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        match = _INVALID_CHOICE.search(message)
        if match:
            word = match["word"]
            choices = re.findall(r"'([^']*)'", match["choices"])
            what = "command" if self.prog == "clearance" else f"action of {self.prog}"
            message = f"unknown {what} {word!r}"
            suggestion = did_you_mean(word, choices)
            if suggestion:
                message += f"; did you mean {suggestion!r}?"
            else:
                message += f" (choose from {', '.join(choices)})"
        elif message.startswith("unrecognized arguments: "):
            message += self._option_hint(message.removeprefix("unrecognized arguments: "))
        raise UsageError(message, self)

    def _option_hint(self, unknown: str) -> str:
        """``; did you mean --trust-root?`` for a mistyped option of the chosen command."""
        known = sorted({o for _, p in iter_parsers(self) if p.add_help for o in option_strings(p)})
        for word in unknown.split():
            if word.startswith("--"):
                suggestion = did_you_mean(word.split("=", 1)[0], known)
                if suggestion:
                    return f"; did you mean {suggestion}?"
        return ""


def sub_actions(parser: argparse.ArgumentParser) -> list[argparse._SubParsersAction[Any]]:
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def iter_parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser under ``parser`` (itself first) with its command path, aliases once."""
    yield path, parser
    seen: set[int] = set()
    for action in sub_actions(parser):
        for name, child in action.choices.items():
            if id(child) in seen:
                continue
            seen.add(id(child))
            yield from iter_parsers(child, (*path, name))


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def decorate(root: argparse.ArgumentParser) -> None:
    """Apply the shared conventions to every parser registered under ``root``."""
    from clearance.cli._common import add_token_flag
    from clearance.cli._examples import examples_for

    for path, parser in iter_parsers(root):
        if not parser.add_help:  # a not-loaded command (see clearance.cli.build_parser)
            continue
        options = option_strings(parser)
        public = parser.get_default("_public_server")
        if "--server" in options and "--token" not in options and not public:
            add_token_flag(parser)
        examples = examples_for(path)
        if examples and not parser.epilog:
            parser.epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples)

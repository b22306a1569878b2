"""A roff manual page (``man 1 clearance``) generated from the parser itself.

One page: NAME, SYNOPSIS, DESCRIPTION, one subsection per command with its
usage, description, options (help text with defaults) and examples, then
EXIT STATUS and ENVIRONMENT.  Nothing is written by hand, so the page cannot
drift from the command line.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime

from clearance.cli._parser import iter_parsers, sub_actions


def _esc(text: str) -> str:
    """Escape roff: backslashes, and a leading dot or quote that would start a request."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    lines = [("\\&" + line if line.startswith((".", "'")) else line) for line in out.split("\n")]
    return "\n".join(lines)


def _usage(parser: argparse.ArgumentParser) -> str:
    usage = parser.format_usage().strip()
    return usage.removeprefix("usage: ")


def _help_of(formatter: argparse.HelpFormatter, action: argparse.Action) -> str:
    return formatter._expand_help(action) if action.help else ""


def _options(parser: argparse.ArgumentParser) -> list[str]:
    formatter = parser._get_formatter()
    lines: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        invocation = formatter._format_action_invocation(action)
        lines += [".TP", f"\\fB{_esc(invocation)}\\fR", _esc(_help_of(formatter, action))]
    return lines


def render(root: argparse.ArgumentParser, version: str) -> str:
    # Reproducible: the date of SOURCE_DATE_EPOCH when a build sets it.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    date = moment.strftime("%Y-%m-%d")
    out = [
        f'.TH CLEARANCE 1 "{date}" "clearance {version}" "User Commands"',
        ".SH NAME",
        f"clearance \\- {_esc(root.description or '')}",
        ".SH SYNOPSIS",
        f"\\fBclearance\\fR {_esc('COMMAND [ACTION] [OPTIONS]')}",
        ".SH DESCRIPTION",
        _esc(root.description or ""),
        ".SH COMMANDS",
    ]
    for path, parser in iter_parsers(root):
        if not path or sub_actions(parser):
            continue  # groups: their actions have the details
        out += [f".SS {_esc('clearance ' + ' '.join(path))}", ".nf", _esc(_usage(parser)), ".fi"]
        if parser.description:
            out += [".PP", _esc(parser.description)]
        out += _options(parser)
        if parser.epilog:
            out += [".PP", ".nf", _esc(parser.epilog), ".fi"]
    out += [
        ".SH EXIT STATUS",
        ".TP",
        "0",
        "success",
        ".TP",
        "1",
        "a verification or policy check refused, or discrepancies found",
        ".TP",
        "2",
        "bad input or bad usage",
        ".TP",
        "3",
        "a server could not be reached or refused the credentials",
        ".SH ENVIRONMENT",
        ".TP",
        "CLEARANCE_TOKEN",
        "API token of the caller's role for commands given \\-\\-server (or \\-\\-token).",
        ".SH SEE ALSO",
        "docs/cli.md in the Clearance sources.",
    ]
    return "\n".join(out) + "\n"

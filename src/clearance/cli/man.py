"""``clearance man [--out FILE]``: the manual page, generated from the parser."""

from __future__ import annotations

import argparse
from pathlib import Path

from clearance.cli._common import EXIT_OK, SubParsers, set_handler
from clearance.cli._files import write_output


def register(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "man",
        help="print the manual page (roff), generated from the parser",
        description="Print the clearance(1) manual page in roff on stdout, or write it to "
        "--out. It is generated from the same parser the commands run, with every option.",
    )
    parser.add_argument(
        "--out", type=Path, metavar="FILE", help="write the page here instead of stdout"
    )
    set_handler(parser, _man)


def _man(args: argparse.Namespace) -> int:
    from clearance import __version__
    from clearance.cli import build_parser
    from clearance.cli._manpage import render

    page = render(build_parser(), __version__)
    if args.out:
        write_output(args.out, page.encode(), "manual page")
    else:
        print(page, end="")
    return EXIT_OK

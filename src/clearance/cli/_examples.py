"""One or two examples per command, shown at the end of its ``--help`` and in the man page.

Keyed by the command path (``("log", "search")``).  Kept in one place so that
every command's help ends the same way; the help walker test fails for a
command that has none.
"""

from __future__ import annotations

EXAMPLES: dict[tuple[str, ...], tuple[str, ...]] = {}


def examples_for(path: tuple[str, ...]) -> tuple[str, ...]:
    return EXAMPLES.get(path, ())

"""Find which content files break a set that builds file by file.

Two IOC files that each compile alone can together exceed an engine's limits
(yara-x's automaton size, the sandbox's memory).  Reporting "the rule set"
names no one and skips the corpus scan; instead the files are added in order
and, at each failure, a binary search finds the first file whose addition
breaks the set.  That file is set aside (reported), the rest go on.  Cost:
about ``log2(n)`` builds per culprit, paid only when the whole set fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def split_buildable(
    items: Sequence[T], builds: Callable[[list[T]], bool]
) -> tuple[list[T], list[T]]:
    """(kept, culprits): ``kept`` builds together; each culprit broke the set it joined.

    ``builds(items)`` must be monotone in practice (a subset of a set that builds
    also builds); the order of ``items`` decides which of two clashing files is kept.
    """
    kept: list[T] = []
    culprits: list[T] = []
    remaining = list(items)
    while remaining:
        if builds(kept + remaining):
            return kept + remaining, culprits
        # The smallest prefix of ``remaining`` that breaks the set (at least one item).
        low, high = 1, len(remaining)
        while low < high:
            middle = (low + high) // 2
            if builds(kept + remaining[:middle]):
                low = middle + 1
            else:
                high = middle
        kept += remaining[: low - 1]
        culprits.append(remaining[low - 1])
        remaining = remaining[low:]
    return kept, culprits


__all__ = ["split_buildable"]

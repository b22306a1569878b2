"""Release versions: dotted numbers with an optional pre-release tag, compared numerically.

Rule (semver-like, documented in docs/attestations.md):

* ``N(.N)*`` with at least one number, no leading zeros (``0`` itself is fine),
  optionally followed by ``-TAG`` where TAG is dot-separated ``[0-9A-Za-z]+``
  identifiers; at most 64 characters.  Build metadata (``+...``) is refused.
* Numbers compare numerically, missing trailing components count as zero
  (``1.2`` == ``1.2.0``).  With equal numbers a version WITHOUT a tag is
  higher than one with a tag (``1.0-rc.1`` < ``1.0``).  Tags compare
  identifier by identifier as in SemVer 2.0.0 section 11: numeric
  identifiers numerically and below alphanumeric ones, alphanumerics in ASCII
  order, a shorter tag lower when it is a prefix of the longer one.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from clearance.attest.errors import VersionFormatError

MAX_VERSION_LENGTH = 64
_VERSION = re.compile(
    r"(?P<numbers>(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*)"
    r"(?:-(?P<tag>[0-9A-Za-z]+(?:\.[0-9A-Za-z]+)*))?"
)


@functools.total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    """A parsed release version; ``<``, ``==`` follow the module's comparison rule."""

    text: str
    numbers: tuple[int, ...]
    tag: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Version:
        if not isinstance(text, str):
            raise VersionFormatError("version is missing or not a string")
        if not text:
            raise VersionFormatError("version is empty")
        if len(text) > MAX_VERSION_LENGTH:
            raise VersionFormatError(f"version is longer than {MAX_VERSION_LENGTH} characters")
        match = _VERSION.fullmatch(text)
        if match is None:
            raise VersionFormatError(
                f"version {text!r} is not dotted numbers with an optional -tag "
                "(e.g. 4.2.0 or 4.2.0-rc.1; no leading zeros, no '+build')"
            )
        numbers = tuple(int(n) for n in match["numbers"].split("."))
        tag = tuple(match["tag"].split(".")) if match["tag"] else ()
        return cls(text, numbers, tag)

    @functools.cached_property
    def _key(self) -> tuple[tuple[int, ...], int, tuple[tuple[int, int, str], ...]]:
        """What versions compare by (made once: a channel's bar is compared with every
        new release of the channel)."""
        numbers = list(self.numbers)
        while len(numbers) > 1 and numbers[-1] == 0:
            numbers.pop()
        tag_key = tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in self.tag)
        return tuple(numbers), 0 if self.tag else 1, tag_key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key == other._key

    def __lt__(self, other: Version) -> bool:
        return self._key < other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __str__(self) -> str:
        return self.text


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as version ``a`` is lower than, equal to or higher than ``b``."""
    va, vb = Version.parse(a), Version.parse(b)
    return (va > vb) - (va < vb)

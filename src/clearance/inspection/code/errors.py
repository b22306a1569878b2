"""Errors of the code inspection (binaries and source).

A malformed build recipe or source archive is the vendor's bad input
(exit code 2); an inspector that cannot isolate a rebuild refuses to vouch
for it (exit code 1) rather than run vendor code with network access.
"""

from __future__ import annotations

from clearance.errors import BadInput, Refused


class CodeInspectionError(BadInput):
    """A binary, source archive or build recipe of the release is unusable."""


class RecipeError(CodeInspectionError):
    """A build recipe is malformed (missing source, bad command, unsafe output path)."""


class UnsafeArchiveError(CodeInspectionError):
    """A source archive is malformed or tries to escape its directory (links, ``..``, devices)."""


class AnalysisUnavailable(Refused):
    """A required analysis cannot run here (no capa rules, no isolation): refuse, never pass."""


class IsolationUnavailable(AnalysisUnavailable):
    """The rebuild sandbox cannot be isolated from the network on this machine."""

"""Independent inspection of code: capabilities, endpoints, reproducibility, source review.

Public API (everything else in this package is internal)::

    from clearance.inspection.code import code_inspectors
    for inspector in code_inspectors():
        result = inspector.inspect(inspection_input, progress)

* :class:`CapabilityInspector` -- ``binary.capability-added`` (flare-capa + lief)
* :class:`EndpointInspector` -- ``binary.undeclared-endpoint`` (binaries and source)
* :class:`ReproducibilityInspector` -- ``binary.not-reproducible`` (hermetic rebuilds)
* :class:`SourceReviewInspector` -- report aids for human review (diff, call-outs, bandit)
* :class:`BuildRecipe` -- the build recipe format (``build_recipes`` of the release)
"""

from __future__ import annotations

from pathlib import Path

from clearance.inspection.base import Inspector
from clearance.inspection.code.capabilities import (
    CapabilityInspector,
    default_cache_dir,
    default_rules_dir,
)
from clearance.inspection.code.endpoints import EndpointInspector
from clearance.inspection.code.errors import (
    AnalysisUnavailable,
    CodeInspectionError,
    IsolationUnavailable,
    RecipeError,
    UnsafeArchiveError,
)
from clearance.inspection.code.recipe import BuildRecipe, parse_recipes
from clearance.inspection.code.reproducibility import ReproducibilityInspector
from clearance.inspection.code.source_review import SourceReviewInspector


def code_inspectors(capa_rules: Path | None = None) -> tuple[Inspector, ...]:
    """The code inspectors in the order they should run (cheap first, capa last)."""
    return (
        SourceReviewInspector(),
        EndpointInspector(),
        ReproducibilityInspector(),
        CapabilityInspector(capa_rules),
    )


__all__ = [
    "AnalysisUnavailable",
    "BuildRecipe",
    "CapabilityInspector",
    "CodeInspectionError",
    "EndpointInspector",
    "IsolationUnavailable",
    "RecipeError",
    "ReproducibilityInspector",
    "SourceReviewInspector",
    "UnsafeArchiveError",
    "code_inspectors",
    "default_cache_dir",
    "default_rules_dir",
    "parse_recipes",
]

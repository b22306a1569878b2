"""Independent inspection of releases: detection content, binaries and source.

Public API::

    inspect_release(release, artifacts_dir, previous=..., corpus=..., policy=...)
        -> InspectionOutcome  (findings, decision, SARIF)
    render_html(outcome) -> str           (clearance.inspection.report)
    default_inspectors()                  (clearance.inspection.registry)
    run_sandboxed(target, args, limits)   (clearance.inspection.sandbox)
    unpack_archive(path, dest, limits)    (clearance.inspection.archive)
"""

from clearance.inspection._orchestrate import (
    InspectionOutcome,
    inspect_release,
    resolve_artifacts,
)
from clearance.inspection.base import NullProgress
from clearance.inspection.policy import (
    VerdictDecision,
    VerdictPolicy,
    default_policy,
    load_policy,
)

__all__ = [
    "InspectionOutcome",
    "NullProgress",
    "VerdictDecision",
    "VerdictPolicy",
    "default_policy",
    "inspect_release",
    "load_policy",
    "resolve_artifacts",
]

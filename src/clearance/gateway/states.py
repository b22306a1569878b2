"""The states a release goes through in the gateway's metadata index."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class ReleaseState(StrEnum):
    """Where a logged release stands.  The values are what the index and the API show."""

    #: Logged; some of its artifacts have not been uploaded yet.
    AWAITING_ARTIFACTS = "awaiting-artifacts"
    #: Queued for (or under) inspection by a worker.
    INSPECTING = "inspecting"
    #: The inspection job failed for good; the error is the release's detail.
    INSPECTION_FAILED = "inspection-failed"
    #: Fewer inspector approvals than the trust root's threshold so far.
    AWAITING_VERDICT = "awaiting-verdict"
    #: An inspector asked for human review.
    NEEDS_REVIEW = "needs-review"
    #: Approved by the trust root's threshold of inspectors.
    APPROVED = "approved"
    #: Rejected by an inspector (a rejection wins over approvals).
    REJECTED = "rejected"
    #: Revoked by the policy authority (a logged revocation or channel reset): final.
    REVOKED = "revoked"


def awaiting_artifacts_detail(missing: Sequence[str]) -> str:
    """The detail of a release awaiting the artifacts named ``missing`` (the API shows it)."""
    return f"waiting for artifacts: {', '.join(missing)}"

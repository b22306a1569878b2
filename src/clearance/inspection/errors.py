"""Errors of the inspection package (bad input -> exit 2)."""

from __future__ import annotations

from clearance.errors import BadInput


class InspectionError(BadInput):
    """Base of the inspection errors: the input cannot be inspected as given."""


class ArtifactError(InspectionError):
    """An artifact is missing, or its size or digest differs from the release."""


class VerdictPolicyError(InspectionError):
    """The verdict policy file is malformed."""

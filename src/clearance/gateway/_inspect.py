"""Bridge from an inspection job to :mod:`clearance.inspection` (the real engines)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearance.attest import Envelope
from clearance.errors import ClearanceError

if TYPE_CHECKING:
    from clearance.gateway.worker import InspectionRequest


class InspectionUnavailableError(ClearanceError):
    """The inspection orchestrator is not installed in this build."""


def run_inspection(request: InspectionRequest) -> Envelope:
    raise InspectionUnavailableError("the inspection orchestrator is not available yet")

"""Exceptions of the witness package.

Each refusal of an ``add-checkpoint`` request is its own class carrying the
HTTP status code C2SP tlog-witness names for it, so the server maps errors
to responses in one place and library callers can tell them apart.
"""

from __future__ import annotations

from typing import ClassVar

from clearance.errors import BadInput, Refused


class MalformedRequest(BadInput):
    """The add-checkpoint body (old size line, proof lines, checkpoint) is malformed: 400."""

    status: ClassVar[int] = 400


class UnknownLog(BadInput):
    """The checkpoint's origin is not a log this witness is configured for: 404."""

    status: ClassVar[int] = 404


class UntrustedCheckpoint(Refused):
    """No signature on the checkpoint verifies under a trusted key of its log: 403."""

    status: ClassVar[int] = 403


class SizeConflict(Refused):
    """The old size is not the size of the latest cosigned checkpoint: 409.

    Also raised when the sizes are equal but the root hashes differ (a split
    view), with ``split_view`` set.
    """

    status: ClassVar[int] = 409

    def __init__(self, message: str, latest_size: int, *, split_view: bool = False) -> None:
        super().__init__(message)
        self.latest_size = latest_size
        self.split_view = split_view


class InconsistentCheckpoint(Refused):
    """The consistency proof from the cosigned checkpoint does not verify: 422."""

    status: ClassVar[int] = 422


class WitnessConfigError(BadInput):
    """A witness or collector configuration (keys, origins, witness list) is unusable."""


class WitnessStateError(BadInput):
    """The witness state directory is unreadable or corrupt."""


class ThresholdNotMet(Refused):
    """Fewer witnesses than the threshold returned a valid cosignature."""

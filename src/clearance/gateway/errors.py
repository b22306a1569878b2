"""Errors of the gateway package."""

from __future__ import annotations

from clearance.errors import BadInput, Refused, Unreachable


class GatewayInputError(BadInput):
    """A request, upload or stored document is malformed or too large."""


class GatewayNotFoundError(GatewayInputError):
    """The named release, submission or file does not exist."""


class GatewayRefused(Refused):
    """The gateway refuses: wrong role, bad signature, policy, halted rollout."""


class RolloutError(GatewayRefused):
    """A rollout transition that is not allowed in the current state."""


class JobQueueError(BadInput):
    """The job queue was used wrongly (unknown job, finishing a job twice)."""


class GatewayUnavailableError(Unreachable):
    """The gateway cannot take the request now (shutting down); try again or elsewhere."""

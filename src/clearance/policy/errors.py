"""Errors of the distribution-policy package."""

from __future__ import annotations

from clearance.errors import BadInput, Refused


class PolicyFormatError(BadInput):
    """A policy or entitlement document is malformed."""


class DistributionRefused(Refused):
    """The signed policy (or the lack of an entitlement) forbids a delivery."""

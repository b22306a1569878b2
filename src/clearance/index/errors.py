"""Errors of the verifiable index (refusals: exit 1)."""

from __future__ import annotations

from clearance.errors import Refused


class IndexRefused(Refused):
    """Base class: the index does not prove what was asked."""


class IndexProofError(IndexRefused):
    """An index record or proof is malformed or does not lead to the committed root."""


class IndexMissingError(IndexRefused):
    """The checkpoint carries no index root (or more than one)."""

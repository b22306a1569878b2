"""Exceptions of the audit package (discrepancies are findings, not exceptions)."""

from clearance.errors import BadInput, Refused, Unreachable


class AuditInputError(BadInput):
    """An audit input (log location, trust root, artifacts folder, option) is unusable."""


class AuditStateError(BadInput):
    """The auditor's state directory is unreadable, corrupt, or belongs to another log."""


class LogUnavailable(Refused):
    """The log's checkpoint or tiles cannot be fetched or do not verify at all."""


class LogServerUnreachable(LogUnavailable, Unreachable):
    """The log server could not be reached at all (exit 3, not a discrepancy)."""

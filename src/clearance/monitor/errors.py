"""Exceptions of the monitor package (what the monitor sees in the log is an alert, not an
exception)."""

from clearance.errors import BadInput, Refused


class MonitorInputError(BadInput):
    """A monitor input (config file, state directory, option) is unusable."""


class DeliveryFailed(Refused):
    """An alert could not be delivered to a webhook or mail server (it stays queued)."""

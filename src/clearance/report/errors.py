"""Exceptions of the report package."""

from clearance.errors import BadInput, Refused


class ReportInputError(BadInput):
    """A report input (period, jurisdiction, output folder, key) is unusable."""


class PdfFailed(Refused):
    """The PDF could not be printed (the HTML report is still written)."""

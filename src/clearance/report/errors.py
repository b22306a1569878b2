"""Exceptions of the report package."""

from clearance.errors import BadInput, Refused


class ReportInputError(BadInput):
    """A report input (period, jurisdiction, output folder, key) is unusable."""


class PdfFailed(Refused):
    """The PDF could not be printed (the HTML report is still written)."""


class ReportVerificationFailed(Refused):
    """A report folder does not match its logged, signed envelope, or the tree it cites."""


class ReportSignatureError(ReportVerificationFailed):
    """The report's envelope is not signed by a key the admission rule lets sign reports."""


class ReportFileTampered(ReportVerificationFailed):
    """A file of the report is missing or its bytes differ from the signed digest."""


class ReportTreeMismatch(ReportVerificationFailed):
    """The tree size and root the report cites are not the log's root at that size."""


class ReportNotLogged(ReportVerificationFailed):
    """The report's envelope is not in the log (or not where it was said to be)."""

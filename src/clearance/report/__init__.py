"""The regulator's report: every update of a period, its verdicts and findings, every
policy decision and withheld update with its logged reason, equal treatment per
jurisdiction, witness coverage and the audit result, as signed HTML and PDF."""

from clearance.attest.statement import REPORT_V1
from clearance.report.collect import ReportData, collect, summary
from clearance.report.errors import PdfFailed, ReportInputError
from clearance.report.render import (
    print_pdf,
    render_html,
    report_statement,
    sign_report,
)
from clearance.report.rows import Period

__all__ = [
    "REPORT_V1",
    "PdfFailed",
    "Period",
    "ReportData",
    "ReportInputError",
    "collect",
    "print_pdf",
    "render_html",
    "report_statement",
    "sign_report",
    "summary",
]

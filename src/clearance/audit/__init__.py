"""The independent auditor and monitor: replays the public log, re-checks every signature,
recomputes verdicts, and reports discrepancies and alerts (``audit.*`` rule ids)."""

from clearance.audit.auditor import AuditOptions, Auditor, AuditReport, audit_log
from clearance.audit.errors import AuditInputError, AuditStateError, LogUnavailable
from clearance.audit.reinspect import Reinspection, Reinspector, ReleaseFiles
from clearance.audit.report import sarif_bytes, to_html, to_sarif, to_text
from clearance.audit.rules import AUDIT_RULES, AuditFinding, AuditRule
from clearance.audit.sources import (
    ArtifactSource,
    DirectoryArtifacts,
    TufTargetArtifacts,
    log_source,
)

__all__ = [
    "AUDIT_RULES",
    "ArtifactSource",
    "AuditFinding",
    "AuditInputError",
    "AuditOptions",
    "AuditReport",
    "AuditRule",
    "AuditStateError",
    "Auditor",
    "DirectoryArtifacts",
    "LogUnavailable",
    "Reinspection",
    "Reinspector",
    "ReleaseFiles",
    "TufTargetArtifacts",
    "audit_log",
    "log_source",
    "sarif_bytes",
    "to_html",
    "to_sarif",
    "to_text",
]

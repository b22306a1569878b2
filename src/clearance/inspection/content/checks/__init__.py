"""Content checks: one module per finding id (see :func:`default_checks`).

A check is any object with ``rule_id``, ``default_severity``, ``description``
and ``run(ctx) -> list[Finding]``; it reads the parsed rules and the engine's
results in :class:`CheckContext` and never touches the engine itself.
"""

from __future__ import annotations

from clearance.inspection.content.checks._base import Check, CheckContext, rule_finding


def default_checks() -> list[Check]:
    """Every content check, in a fixed order."""
    from clearance.inspection.content.checks import (
        compile_error,
        detection_removed,
        document_hunting,
        engine_crash,
        evidence_removed,
        exfiltration_action,
        overbroad,
        slow,
        targeting,
    )

    return [
        compile_error.CompileErrorCheck(),
        engine_crash.EngineCrashCheck(),
        document_hunting.DocumentHuntingCheck(),
        targeting.TargetingCheck(),
        overbroad.OverbroadCheck(),
        slow.SlowCheck(),
        exfiltration_action.ExfiltrationActionCheck(),
        detection_removed.DetectionRemovedCheck(),
        evidence_removed.EvidenceRemovedCheck(),
    ]


__all__ = ["Check", "CheckContext", "default_checks", "rule_finding"]

"""Which inspectors ``clearance inspect`` runs.  Add a new inspector here (one line)."""

from __future__ import annotations

from clearance.inspection.base import Inspector


def default_inspectors() -> list[Inspector]:
    """Every inspector, in a fixed order (the order does not change the merged output)."""
    from clearance.inspection.code import code_inspectors
    from clearance.inspection.content.inspector import ContentInspector

    inspectors: list[Inspector] = [ContentInspector(), *code_inspectors()]
    return inspectors

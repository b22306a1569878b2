"""The typed view of a signed regulator's report (``REPORT_V1``): what it claims to cover.

A report (:mod:`clearance.report`) is a DSSE envelope over an in-toto statement whose
subjects are the report's files (name and SHA-256) and whose predicate says which log it
read (origin), up to which tree (size and root hash), over which period and jurisdiction,
and who produced it.  The admission rule reads it here to refuse a malformed report before
it is logged; ``clearance report verify`` reads it to check a report folder against it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clearance.attest import _fields
from clearance.attest.errors import StatementFormatError
from clearance.attest.statement import REPORT_V1, Statement, Subject

_ROOT_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ReportClaim:
    """What a signed report says it is: its files and the tree it covers."""

    files: tuple[Subject, ...]
    origin: str
    tree_size: int
    root_hash: str
    period_from: str
    period_to: str
    jurisdiction: str | None
    producer: str

    @classmethod
    def from_statement(cls, statement: Statement) -> ReportClaim:
        if statement.predicate_type != REPORT_V1:
            raise StatementFormatError(
                f"statement predicateType is {statement.predicate_type!r}, expected {REPORT_V1!r}"
            )
        p = statement.predicate
        size = p.get("treeSize")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise StatementFormatError("report treeSize is missing or not a non-negative integer")
        root = p.get("rootHash")
        if not isinstance(root, str) or _ROOT_HASH.fullmatch(root) is None:
            raise StatementFormatError("report rootHash is missing or not 64 lowercase hex digits")
        jurisdiction = p.get("jurisdiction")
        if jurisdiction is not None:
            jurisdiction = _fields.text(jurisdiction, "report jurisdiction")
        names = [s.name for s in statement.subjects]
        if len(set(names)) != len(names):
            raise StatementFormatError("report names one file twice among its subjects")
        for name in names:
            _fields.relative_path(name, "report file name")
        return cls(
            statement.subjects,
            _fields.text(p.get("origin"), "report origin"),
            size,
            root,
            _fields.text(p.get("from"), "report from"),
            _fields.text(p.get("to"), "report to"),
            jurisdiction,
            _fields.text(p.get("producer"), "report producer"),
        )

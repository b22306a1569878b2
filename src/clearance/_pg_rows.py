"""Writing many rows to PostgreSQL in one statement: one array parameter per column.

psycopg's ``executemany`` sends one ``Bind``/``Execute`` per row in a pipeline and
spends, per row, more of the gateway's interpreter than PostgreSQL spends on the
INSERT (a sixth of a replica's time per signed submission, profiled).  A statement
``INSERT ... SELECT * FROM unnest($1::bigint[], $2::text[], ...)`` carries a whole
batch in a handful of parameters, and its text does not depend on the batch size,
so psycopg prepares it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

Row = TypeVar("Row", bound=Sequence[Any])


def unnest_insert(into: str, types: Sequence[str], tail: str = "") -> str:
    """``INSERT INTO {into} SELECT * FROM unnest(...) {tail}``: one array parameter of each
    of ``types`` (SQL type names), in the order of the columns ``into`` names.  Every
    part is a constant of the calling module, never input."""
    # %b: psycopg sends arrays in the binary format; its text format quotes and escapes
    # every element in Python (twice the interpreter time of the whole statement).
    arrays = ", ".join(f"%b::{kind}[]" for kind in types)
    return f"INSERT INTO {into} SELECT * FROM unnest({arrays}) {tail}".rstrip()  # noqa: S608


def as_columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """The parameters of :func:`unnest_insert`: ``rows`` turned into ``width`` columns."""
    if not rows:
        return [[] for _ in range(width)]
    columns = [list(column) for column in zip(*rows, strict=True)]
    if len(columns) != width:
        raise ValueError(f"rows have {len(columns)} columns, the statement takes {width}")
    return columns


def last_per_key(rows: Sequence[Row], key_columns: int) -> list[Row]:
    """``rows`` with only the last row of each key (its first ``key_columns`` columns), in
    the order of those last rows.

    One ``INSERT ... ON CONFLICT DO UPDATE`` may not touch a row twice (PostgreSQL
    refuses the whole statement); as one statement per row, the last one won, and it
    still does."""
    last: dict[tuple[Any, ...], int] = {}
    for n, row in enumerate(rows):
        last[tuple(row[:key_columns])] = n
    return [rows[n] for n in sorted(last.values())]

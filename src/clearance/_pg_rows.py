"""Writing many rows to PostgreSQL in one statement: one array parameter per column.

psycopg's ``executemany`` sends one ``Bind``/``Execute`` per row in a pipeline and
spends, per row, more of the gateway's interpreter than PostgreSQL spends on the
INSERT (a sixth of a replica's time per signed submission, profiled).  A statement
``INSERT ... SELECT * FROM unnest($1::bigint[], $2::text[], ...)`` carries a whole
batch in a handful of parameters, and its text does not depend on the batch size,
so psycopg prepares it once.

Each column is sent as a :class:`Column` of its SQL type.  psycopg, given a plain
``list``, looks at every element at every execution to guess the array's type (for
integers, their minimum and maximum too): a few percent of a replica's interpreter
time per signed submission, profiled.  A connection configured with
:func:`register_columns` dumps a ``Column`` straight as the array type it names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.postgres import types as builtin_types
from psycopg.types.array import BaseListDumper, ListBinaryDumper

Row = TypeVar("Row", bound=Sequence[Any])


class Column(list[Any]):
    """The values of one column, of SQL type :attr:`sql_type` (``None`` is NULL)."""

    __slots__ = ("sql_type",)

    def __init__(self, values: Iterable[Any], sql_type: str) -> None:
        if builtin_types.get(sql_type) is None:
            raise ValueError(f"unknown SQL type {sql_type!r} for a column of rows")
        super().__init__(values)
        self.sql_type = sql_type


class _ColumnDumper(ListBinaryDumper):
    """Dumps a :class:`Column` as the array of its type, without guessing the type."""

    def get_key(self, obj: list[Any], format: Any) -> Any:
        return (self.cls, obj.sql_type) if isinstance(obj, Column) else self.cls

    def upgrade(self, obj: list[Any], format: Any) -> BaseListDumper:
        if not isinstance(obj, Column):
            return super().upgrade(obj, format)
        info = builtin_types[obj.sql_type]  # a Column's type is a known one
        dumper = _ColumnDumper(self.cls, self._tx)
        dumper.oid = info.array_oid
        element = self._tx.adapters.get_dumper_by_oid(info.oid, self.format)
        dumper.sub_dumper = element(type(None), self._tx)
        return dumper


def register_columns(conn: psycopg.Connection[Any]) -> None:
    """Let ``conn`` dump :class:`Column` parameters by their declared type (a pool's
    ``configure``); on a connection without it they are dumped as plain lists."""
    conn.adapters.register_dumper(Column, _ColumnDumper)


def unnest_insert(into: str, types: Sequence[str], tail: str = "") -> str:
    """``INSERT INTO {into} SELECT * FROM unnest(...) {tail}``: one array parameter of each
    of ``types`` (SQL type names), in the order of the columns ``into`` names.  Every
    part is a constant of the calling module, never input."""
    # %b: psycopg sends arrays in the binary format; its text format quotes and escapes
    # every element in Python (twice the interpreter time of the whole statement).
    arrays = ", ".join(f"%b::{kind}[]" for kind in types)
    return f"INSERT INTO {into} SELECT * FROM unnest({arrays}) {tail}".rstrip()  # noqa: S608


def as_columns(rows: Sequence[Sequence[Any]], types: Sequence[str]) -> list[Column]:
    """The parameters of :func:`unnest_insert`: ``rows`` turned into one column of each of
    ``types`` (SQL type names)."""
    if not rows:
        return [Column((), kind) for kind in types]
    columns = list(zip(*rows, strict=True))
    if len(columns) != len(types):
        raise ValueError(f"rows have {len(columns)} columns, the statement takes {len(types)}")
    return [Column(values, kind) for values, kind in zip(columns, types, strict=True)]


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

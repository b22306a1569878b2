"""Columns of many rows as typed array parameters (``clearance._pg_rows``), on a real server."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg.types.array import BaseListDumper

from _postgres import scratch_database
from clearance._pg_rows import Column, as_columns, register_columns, unnest_insert


@pytest.fixture()
def conn() -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with scratch_database() as dsn, psycopg.connect(dsn, autocommit=True) as connection:
        register_columns(connection)
        yield connection


def test_a_column_is_sent_as_the_array_of_its_declared_type(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    # Small integers a plain list would send as smallint[]; NULLs among the text.
    level, note, weight, data = as_columns(
        [(1, "a", 0.5, b"\x00"), (2, None, 2.0, b"")], ("bigint", "text", "double precision", "bytea")
    )
    row = conn.execute(
        "SELECT pg_typeof(%b), pg_typeof(%b), pg_typeof(%b), pg_typeof(%b), %b, %b, %b, %b",
        (level, note, weight, data, level, note, weight, data),
    ).fetchone()
    assert row == ("bigint[]", "text[]", "double precision[]", "bytea[]",
                   [1, 2], ["a", None], [0.5, 2.0], [b"\x00", b""])  # fmt: skip


def test_a_column_is_dumped_without_looking_at_its_elements(
    conn: psycopg.Connection[tuple[object, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The point of a Column: psycopg's guess of a list's type reads every element."""

    def guessed(*_: object) -> object:
        raise AssertionError("the array's type was guessed from its elements")

    monkeypatch.setattr(BaseListDumper, "_find_list_element", guessed)
    conn.execute("CREATE TABLE t (n bigint, s text)")
    rows = [(n, f"row {n}") for n in range(1000)]
    conn.execute(unnest_insert("t", ("bigint", "text")), as_columns(rows, ("bigint", "text")))
    assert conn.execute("SELECT count(*), sum(n) FROM t").fetchone() == (1000, sum(range(1000)))
    with pytest.raises(AssertionError, match="guessed"):  # a plain list still is
        conn.execute("SELECT %b::bigint[]", ([1, 2],))


def test_an_empty_column_keeps_its_type(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    (empty,) = as_columns([], ("bigint",))
    assert conn.execute("SELECT pg_typeof(%b), cardinality(%b)", (empty, empty)).fetchone() == (
        "bigint[]",
        0,
    )


def test_rows_of_the_wrong_width_and_unknown_types_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="rows have 2 columns, the statement takes 3"):
        as_columns([(1, "a")], ("bigint", "text", "text"))
    with pytest.raises(ValueError, match="unknown SQL type 'no such type'"):
        Column([1], "no such type")

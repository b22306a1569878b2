"""Scratch PostgreSQL databases for tests (CLEARANCE_PG_DSN, default ``dbname=postgres``).

Each test gets its own database named ``clr_i13_<random>``, dropped afterwards
(with FORCE, so connections a killed process left behind do not keep it).
Under ``CI=true`` an unreachable server fails the test instead of skipping it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

PG_DSN = os.environ.get("CLEARANCE_PG_DSN", "dbname=postgres")


@contextlib.contextmanager
def scratch_database(prefix: str = "clr_i13_") -> Iterator[str]:
    """Create an empty database, yield its DSN, drop it."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL unreachable at {PG_DSN!r}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(PG_DSN, dbname=name)
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

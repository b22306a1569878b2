"""Connection pools for the gateway's PostgreSQL backends, and their one-time schemas.

Each backend class (metadata, health reports, artifact blobs, TUF files)
owns its SQL and its tables (prefix ``clr_gw_``); this module only opens a
``psycopg_pool`` pool and creates a schema once.  Replicas starting together
would race on ``CREATE TABLE IF NOT EXISTS`` (PostgreSQL checks the catalog
before it locks it), so the schema is created under a transaction-scoped
advisory lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from clearance._pg_rows import register_columns
from clearance.gateway.errors import GatewayInputError
from clearance.log._postgres import redact

Pool = ConnectionPool[psycopg.Connection[tuple[Any, ...]]]

#: pg_advisory_xact_lock key serialising the gateway's schema creation ("clr-gws1").
SCHEMA_LOCK = int.from_bytes(b"clr-gws1", "big") & 0x7FFF_FFFF_FFFF_FFFF


class GatewayDatabaseError(GatewayInputError):
    """The gateway's PostgreSQL database cannot be reached or used."""


def database_error(dsn: str, exc: BaseException) -> GatewayDatabaseError:
    """A one-line error naming the database (password hidden) and PostgreSQL's reason."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return GatewayDatabaseError(f"{redact(dsn)}: gateway database unavailable: {first}")


def open_pool(dsn: str, name: str, schema: Sequence[str], *, max_size: int = 4) -> Pool:
    """A pool of ``dsn`` (connections named ``name``), with ``schema`` created if missing.

    Connections are not in autocommit: ``with pool.connection() as conn`` is one
    transaction, committed when the block ends and rolled back if it raises.
    """
    pool: Pool = ConnectionPool(
        dsn,
        min_size=1,
        max_size=max_size,
        kwargs={"application_name": name},
        configure=register_columns,
        open=False,
    )
    try:
        pool.open(wait=True, timeout=10.0)
        with pool.connection() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for statement in schema:
                conn.execute(statement)
    except (psycopg.Error, Exception) as exc:  # pool timeouts are not psycopg errors
        pool.close()
        raise database_error(dsn, exc) from None
    return pool

"""Replicas of one gateway over one PostgreSQL database: who runs the background work.

Every replica accepts submissions and serves reads; the log's own advisory
lock serialises integration (see :mod:`clearance.log._postgres`).  What must
happen once, not once per replica - the rollout ticker, witness rounds, and
the idempotent reconciliation after a crash - runs on the *leader*: the
replica holding a second session advisory lock.  PostgreSQL releases it the
moment the leader's connection dies, and another replica's next poll (every
``poll_seconds``) takes over.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

import psycopg

log = logging.getLogger("clearance.gateway")

#: pg_advisory_lock key of the background leader ("clr-bg01" as an int64).
LEADER_KEY = int.from_bytes(b"clr-bg01", "big") & 0x7FFF_FFFF_FFFF_FFFF


class LeaderLease:
    """Try to hold the background-leader advisory lock; :meth:`poll` keeps trying."""

    def __init__(self, dsn: str, name: str) -> None:
        self._dsn = dsn
        self._name = name
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._leader = False
        self._lock = threading.Lock()

    @property
    def is_leader(self) -> bool:
        return self._leader

    def poll(self) -> bool:
        """Take the lease if free; check it is still held if taken. True on becoming leader."""
        with self._lock:
            try:
                if self._conn is None or self._conn.closed or self._conn.broken:
                    self._leader = False
                    self._conn = psycopg.connect(
                        self._dsn,
                        autocommit=True,
                        application_name=self._name + "/leader",
                        connect_timeout=5,
                    )
                if self._leader:
                    self._conn.execute("SELECT 1")  # a dead connection means a lost lease
                    return False
                row = self._conn.execute(
                    "SELECT pg_try_advisory_lock(%s)", (LEADER_KEY,)
                ).fetchone()
            except psycopg.Error as exc:
                if self._leader:
                    log.warning("replica %s lost the leader lease: %s", self._name, exc)
                self._leader = False
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                return False
            self._leader = bool(row and row[0])
            return self._leader

    def close(self) -> None:
        with self._lock:
            self._leader = False
            if self._conn is not None:
                with contextlib.suppress(psycopg.Error):
                    self._conn.close()
                self._conn = None

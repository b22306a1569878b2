"""The metadata store in PostgreSQL: one index shared by replicas on any number of machines.

:class:`PostgresMetadataStore` is the only holder of this backend's SQL (the
interface and rows are in :mod:`clearance.gateway.store`).  Tables carry the
prefix ``clr_gw_`` beside the log's ``clr_log_`` ones in the same database.

Replicas index the same entry concurrently (the one that appended it, and a
survivor that finds it missing after a crash): :meth:`add_entries` inserts the
``entries`` rows first, so the second writer blocks on the primary key until
the first commits, then finds it there and writes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import psycopg

from clearance._pg_rows import Column, as_columns, last_per_key, unnest_insert
from clearance.gateway._pg import Pool, database_error, open_pool
from clearance.gateway.states import ReleaseState
from clearance.gateway.store import (
    LAST_LOG_INDEX,
    RECORD_TABLES,
    IndexRecord,
    ReleaseRow,
    entry_row,
    record_rows,
    release_artifact_rows,
    release_from_row,
    verdict_dict,
)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS clr_gw_entries (
        log_index bigint PRIMARY KEY, sha256 text NOT NULL, kind text NOT NULL,
        summary text NOT NULL, indexed_at double precision NOT NULL)""",
    # By digest, then log index: "the first copy of this digest" is one index lookup.
    "CREATE INDEX IF NOT EXISTS clr_gw_entries_sha_index ON clr_gw_entries(sha256, log_index)",
    "DROP INDEX IF EXISTS clr_gw_entries_sha",  # its narrower predecessor
    "CREATE INDEX IF NOT EXISTS clr_gw_entries_kind ON clr_gw_entries(kind, log_index)",
    """CREATE TABLE IF NOT EXISTS clr_gw_releases (
        sha256 text PRIMARY KEY, log_index bigint NOT NULL, product text NOT NULL,
        version text NOT NULL, channel text NOT NULL, vendor text NOT NULL,
        artifacts text NOT NULL, state text NOT NULL, job_id bigint,
        detail text NOT NULL DEFAULT '')""",
    """CREATE INDEX IF NOT EXISTS clr_gw_releases_channel
        ON clr_gw_releases(product, channel, state, log_index)""",
    """CREATE TABLE IF NOT EXISTS clr_gw_verdicts (
        sha256 text PRIMARY KEY, log_index bigint NOT NULL, release_sha256 text NOT NULL,
        inspector text NOT NULL, decision text NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS clr_gw_verdicts_release ON clr_gw_verdicts(release_sha256)",
    """CREATE TABLE IF NOT EXISTS clr_gw_policies (
        log_index bigint PRIMARY KEY, sha256 text NOT NULL, name text NOT NULL,
        body text NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS clr_gw_entitlements (
        log_index bigint PRIMARY KEY, sha256 text NOT NULL, customer text NOT NULL,
        product text NOT NULL, body text NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS clr_gw_entitlements_customer
        ON clr_gw_entitlements(customer)""",
    """CREATE TABLE IF NOT EXISTS clr_gw_rollouts (
        release_sha256 text PRIMARY KEY, state text NOT NULL,
        updated double precision NOT NULL)""",
    # The rollouts of one status (the active ones, judged every second) without reading
    # every rollout ever started.
    """CREATE INDEX IF NOT EXISTS clr_gw_rollouts_status
        ON clr_gw_rollouts (((state::json) ->> 'status'))""",
    """CREATE TABLE IF NOT EXISTS clr_gw_transitions (
        log_index bigint PRIMARY KEY, release_sha256 text NOT NULL, event text NOT NULL,
        body text NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS clr_gw_transitions_release
        ON clr_gw_transitions(release_sha256, log_index)""",
    """CREATE TABLE IF NOT EXISTS clr_gw_health (
        sha256 text PRIMARY KEY, release_sha256 text NOT NULL, customer text NOT NULL,
        status text NOT NULL, received double precision NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS clr_gw_health_votes (
        log_index bigint PRIMARY KEY, release_sha256 text NOT NULL, ring text NOT NULL,
        device text NOT NULL, status text NOT NULL, received double precision NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS clr_gw_health_votes_release
        ON clr_gw_health_votes(release_sha256, ring)""",
    """CREATE TABLE IF NOT EXISTS clr_gw_artifacts (
        sha256 text PRIMARY KEY, size bigint NOT NULL, received double precision NOT NULL)""",
    # Which releases name which artifact digest: an upload looks up the releases it may
    # complete by key (it scanned the artifacts text of every release before).
    """CREATE TABLE IF NOT EXISTS clr_gw_release_artifacts (
        artifact_sha256 text NOT NULL, release_sha256 text NOT NULL,
        PRIMARY KEY (artifact_sha256, release_sha256))""",
    # Releases indexed before the table existed (or by an older replica beside this one).
    """INSERT INTO clr_gw_release_artifacts
        SELECT a ->> 'sha256', r.sha256
        FROM clr_gw_releases r CROSS JOIN LATERAL json_array_elements(r.artifacts::json) a
        WHERE NOT EXISTS (
            SELECT 1 FROM clr_gw_release_artifacts x
            WHERE x.artifact_sha256 = a ->> 'sha256' AND x.release_sha256 = r.sha256)
        ON CONFLICT DO NOTHING""",
)

_SELECT_RELEASES = (
    "SELECT sha256, log_index, product, version, channel, vendor, artifacts, state, job_id, "
    "detail FROM clr_gw_releases"
)

_KEEP_FIRST = "ON CONFLICT DO NOTHING"

_ROLLOUT_UPSERT = (
    "ON CONFLICT (release_sha256) DO UPDATE SET state = excluded.state, updated = excluded.updated"
)
_PUT_ROLLOUT = (
    "INSERT INTO clr_gw_rollouts (release_sha256, state, updated) VALUES (%s, %s, %s) "  # noqa: S608
    + _ROLLOUT_UPSERT
)


class _RowTable(NamedTuple):
    """A table an index record writes (parameters: ``store.record_rows``): its columns,
    their SQL types, its conflict clause and, for an upsert, how many leading columns
    are the key (one statement may not update a row twice: a batch keeps each key's
    last row, as one statement per row did)."""

    into: str
    types: tuple[str, ...]
    tail: str = _KEEP_FIRST
    upsert_key: int = 0


_ROW_TABLES = {
    "releases": _RowTable(
        "clr_gw_releases (sha256, log_index, product, version, channel, vendor, artifacts, "
        "state, detail)",
        ("text", "bigint", "text", "text", "text", "text", "text", "text", "text"),
    ),
    "verdicts": _RowTable("clr_gw_verdicts", ("text", "bigint", "text", "text", "text")),
    "policies": _RowTable("clr_gw_policies", ("bigint", "text", "text", "text")),
    "entitlements": _RowTable("clr_gw_entitlements", ("bigint", "text", "text", "text", "text")),
    "transitions": _RowTable("clr_gw_transitions", ("bigint", "text", "text", "text")),
    "rollouts": _RowTable(
        "clr_gw_rollouts (release_sha256, state, updated)",
        ("text", "text", "double precision"),
        _ROLLOUT_UPSERT,
        upsert_key=1,
    ),
    "health_votes": _RowTable(
        "clr_gw_health_votes (log_index, release_sha256, ring, device, status, received)",
        ("bigint", "text", "text", "text", "text", "double precision"),
    ),
}
#: All of a batch's rows of one table in one statement (see clearance._pg_rows).
_INSERT_ROWS = {
    table: unnest_insert(spec.into, spec.types, spec.tail) for table, spec in _ROW_TABLES.items()
}
_RELEASE_ARTIFACT_TYPES = ("text", "text")
_INSERT_RELEASE_ARTIFACTS = unnest_insert(
    "clr_gw_release_artifacts", _RELEASE_ARTIFACT_TYPES, _KEEP_FIRST
)
_ENTRY_TYPES = ("bigint", "text", "text", "text", "double precision")
_INSERT_ENTRIES = unnest_insert(
    "clr_gw_entries",
    _ENTRY_TYPES,
    "ON CONFLICT (log_index) DO NOTHING RETURNING log_index",
)


class PostgresMetadataStore:
    """The metadata index in PostgreSQL (``psycopg_pool``); safe to share between threads
    and between processes on any machines.  Every method is one transaction."""

    def __init__(self, dsn: str, *, name: str = "clearance-gateway", pool_size: int = 4) -> None:
        self._dsn = dsn
        self._pool: Pool = open_pool(dsn, name, _SCHEMA, max_size=pool_size)

    def close(self) -> None:
        self._pool.close()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._pool.connection() as conn:
                return conn.execute(sql, params).fetchall()
        except psycopg.OperationalError as exc:
            raise database_error(self._dsn, exc) from None

    def _change(self, sql: str, params: Sequence[Any]) -> int:
        """Run one writing statement in its own transaction; the rows it touched."""
        try:
            with self._pool.connection() as conn:
                return conn.execute(sql, params).rowcount
        except psycopg.OperationalError as exc:
            raise database_error(self._dsn, exc) from None

    # -- entries ---------------------------------------------------------------

    def indexed(self, start: int = 0, stop: int | None = None) -> set[int]:
        # Both bounds, always: psycopg prepares a statement run often, and PostgreSQL's
        # generic plan for "log_index >= $1" alone (a third of the table, by its guess) was
        # a sequential scan of the whole index at every batch of submissions.
        rows = self._query(
            "SELECT log_index FROM clr_gw_entries WHERE log_index >= %s AND log_index < %s",
            (start, LAST_LOG_INDEX + 1 if stop is None else stop),
        )
        return {int(r[0]) for r in rows}

    def add_entries(self, records: Sequence[IndexRecord]) -> list[bool]:
        if not records:
            return []
        now = time.time()
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                # The entries rows first: a concurrent writer of the same entry blocks on the
                # primary key until this transaction ends, then writes nothing.  In log order,
                # so two replicas indexing overlapping batches cannot deadlock.
                ordered = [entry_row(r, now) for r in sorted(records, key=lambda r: r.log_index)]
                cur.execute(_INSERT_ENTRIES, as_columns(ordered, _ENTRY_TYPES))
                first = {int(row[0]) for row in cur.fetchall()}
                written = [r.log_index in first for r in records]
                new_rows = [
                    record_rows(r, now) for r, new in zip(records, written, strict=True) if new
                ]
                for table in RECORD_TABLES:
                    spec = _ROW_TABLES[table]
                    rows = [by_table[table] for by_table in new_rows if table in by_table]
                    if spec.upsert_key:
                        rows = last_per_key(rows, spec.upsert_key)
                    if rows:
                        cur.execute(_INSERT_ROWS[table], as_columns(rows, spec.types))
                named = [
                    row
                    for r, new in zip(records, written, strict=True)
                    if new
                    for row in release_artifact_rows(r)
                ]
                if named:
                    cur.execute(_INSERT_RELEASE_ARTIFACTS, as_columns(named, _RELEASE_ARTIFACT_TYPES))
        except psycopg.OperationalError as exc:
            raise database_error(self._dsn, exc) from None
        return written

    def entry_by_sha(self, sha256: str) -> tuple[int, str, dict[str, Any]] | None:
        rows = self._query(
            "SELECT log_index, kind, summary FROM clr_gw_entries WHERE sha256 = %s "
            "ORDER BY log_index LIMIT 1",
            (sha256,),
        )
        if not rows:
            return None
        return int(rows[0][0]), str(rows[0][1]), json.loads(rows[0][2])

    def entries_by_sha(self, sha256s: Sequence[str]) -> dict[str, int]:
        # One index lookup per digest whatever the plan: the generic plan of "sha256 =
        # ANY($1)" that psycopg's prepared statement ends up with was a sequential scan.
        rows = self._query(
            "SELECT q.sha, e.log_index FROM unnest(%b::text[]) AS q(sha) CROSS JOIN LATERAL "
            "(SELECT log_index FROM clr_gw_entries WHERE sha256 = q.sha "
            "ORDER BY log_index LIMIT 1) AS e",
            (Column(sha256s, "text"),),
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def entries_of_kind(self, kind: str) -> list[tuple[int, str, dict[str, Any], str]]:
        rows = self._query(
            "SELECT log_index, kind, summary, sha256 FROM clr_gw_entries WHERE kind = %s "
            "ORDER BY log_index",
            (kind,),
        )
        return [(int(r[0]), str(r[1]), json.loads(r[2]), str(r[3])) for r in rows]

    def kinds(self) -> dict[str, int]:
        rows = self._query("SELECT kind, count(*) FROM clr_gw_entries GROUP BY kind")
        return {str(k): int(n) for k, n in rows}

    def recent_entries(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT log_index, sha256, kind, summary FROM clr_gw_entries "
            "ORDER BY log_index DESC LIMIT %s",
            (limit,),
        )
        return [
            {"log_index": int(r[0]), "sha256": r[1], "kind": r[2], "summary": json.loads(r[3])}
            for r in rows
        ]

    # -- releases ----------------------------------------------------------------

    def release(self, sha256: str) -> ReleaseRow | None:
        rows = self._query(_SELECT_RELEASES + " WHERE sha256 = %s", (sha256,))
        return release_from_row(rows[0]) if rows else None

    def releases(self, state: str | None = None) -> list[ReleaseRow]:
        if state is None:
            rows = self._query(_SELECT_RELEASES + " ORDER BY log_index")
        else:
            rows = self._query(
                _SELECT_RELEASES + " WHERE state = %s ORDER BY log_index", (str(state),)
            )
        return [release_from_row(r) for r in rows]

    def approved_releases(self, product: str, channel: str, limit: int = 50) -> list[ReleaseRow]:
        """The newest approved releases of a channel, newest first."""
        rows = self._query(
            _SELECT_RELEASES + " WHERE product = %s AND channel = %s AND state = %s "
            "ORDER BY log_index DESC LIMIT %s",
            (product, channel, ReleaseState.APPROVED.value, limit),
        )
        return [release_from_row(r) for r in rows]

    def channel_releases(self, product: str, channel: str) -> list[ReleaseRow]:
        rows = self._query(
            _SELECT_RELEASES + " WHERE product = %s AND channel = %s ORDER BY log_index",
            (product, channel),
        )
        return [release_from_row(r) for r in rows]

    def set_release_state(
        self, sha256: str, state: str, detail: str = "", job_id: int | None = None
    ) -> None:
        if job_id is None:
            self._change(
                "UPDATE clr_gw_releases SET state = %s, detail = %s WHERE sha256 = %s",
                (str(state), detail, sha256),
            )
        else:
            self._change(
                "UPDATE clr_gw_releases SET state = %s, detail = %s, job_id = %s WHERE sha256 = %s",
                (str(state), detail, job_id, sha256),
            )

    def set_awaiting_details(self, details: Sequence[tuple[str, str]]) -> None:
        if not details:
            return
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                latest = dict(details)  # as one UPDATE per release did: the last one stays
                # Never prepared: a generic plan of this join, made while the releases were
                # few, scanned them all at every batch; planned each time it is a lookup
                # of each release by its key.
                cur.execute(
                    "UPDATE clr_gw_releases r SET detail = d.detail "
                    "FROM unnest(%b::text[], %b::text[]) AS d(sha256, detail) "
                    "WHERE r.sha256 = d.sha256 AND r.state = %s",
                    (Column(latest, "text"), Column(latest.values(), "text"), ReleaseState.AWAITING_ARTIFACTS.value),
                    prepare=False,
                )
        except psycopg.OperationalError as exc:
            raise database_error(self._dsn, exc) from None

    def move_release_state(self, sha256: str, old: str, new: str, detail: str) -> bool:
        # One UPDATE with the old state in its WHERE: PostgreSQL re-checks the condition
        # after waiting for a concurrent writer, so of two replicas racing only one moves it.
        return (
            self._change(
                "UPDATE clr_gw_releases SET state = %s, detail = %s "
                "WHERE sha256 = %s AND state = %s",
                (str(new), detail, sha256, str(old)),
            )
            == 1
        )

    def verdicts(self, release_sha256: str) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT sha256, log_index, inspector, decision FROM clr_gw_verdicts "
            "WHERE release_sha256 = %s ORDER BY log_index",
            (release_sha256,),
        )
        return [verdict_dict(str(r[0]), int(r[1]), str(r[2]), str(r[3])) for r in rows]

    # -- policies, entitlements, rollouts, health, uploads --------------------------------

    def latest_policy(self) -> tuple[int, dict[str, Any]] | None:
        rows = self._query(
            "SELECT log_index, body FROM clr_gw_policies ORDER BY log_index DESC LIMIT 1"
        )
        return (int(rows[0][0]), json.loads(rows[0][1])) if rows else None

    def entitlements(self, customer: str | None = None) -> list[tuple[int, dict[str, Any]]]:
        if customer is None:
            rows = self._query("SELECT log_index, body FROM clr_gw_entitlements ORDER BY log_index")
        else:
            rows = self._query(
                "SELECT log_index, body FROM clr_gw_entitlements WHERE customer = %s "
                "ORDER BY log_index",
                (customer,),
            )
        return [(int(r[0]), json.loads(r[1])) for r in rows]

    def entitlements_version(self, customer: str) -> tuple[int, int]:
        rows = self._query(
            "SELECT count(*), coalesce(max(log_index), -1) FROM clr_gw_entitlements "
            "WHERE customer = %s",
            (customer,),
        )
        return int(rows[0][0]), int(rows[0][1])

    def rollout(self, release_sha256: str) -> dict[str, Any] | None:
        rows = self._query(
            "SELECT state FROM clr_gw_rollouts WHERE release_sha256 = %s", (release_sha256,)
        )
        return json.loads(rows[0][0]) if rows else None

    def rollouts(self, status: str | None = None) -> list[dict[str, Any]]:
        if status is None:
            rows = self._query("SELECT state FROM clr_gw_rollouts ORDER BY release_sha256")
        else:
            rows = self._query(
                "SELECT state FROM clr_gw_rollouts WHERE ((state::json) ->> 'status') = %s "
                "ORDER BY release_sha256",
                (status,),
            )
        return [json.loads(r[0]) for r in rows]

    def put_rollout(self, release_sha256: str, state: dict[str, Any]) -> None:
        self._change(_PUT_ROLLOUT, (release_sha256, json.dumps(state, sort_keys=True), time.time()))

    def transitions(self, release_sha256: str) -> list[tuple[int, dict[str, Any]]]:
        rows = self._query(
            "SELECT log_index, body FROM clr_gw_transitions WHERE release_sha256 = %s "
            "ORDER BY log_index",
            (release_sha256,),
        )
        return [(int(r[0]), json.loads(r[1])) for r in rows]

    def add_health(self, sha256: str, release: str, customer: str, status: str) -> bool:
        """Record one health report; False when the same report was already counted."""
        return (
            self._change(
                "INSERT INTO clr_gw_health (sha256, release_sha256, customer, status, received) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (sha256, release, customer, status, time.time()),
            )
            == 1
        )

    def health_votes(
        self, release_sha256: str, ring: str, after: int, through: int
    ) -> list[tuple[str, str, int]]:
        """(device, status, log index) of the logged reports for a ring in (after, through]."""
        rows = self._query(
            "SELECT device, status, log_index FROM clr_gw_health_votes "
            "WHERE release_sha256 = %s AND ring = %s AND log_index > %s AND log_index <= %s "
            "ORDER BY log_index",
            (release_sha256, ring, after, through),
        )
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    def health_reports(self, release_sha256: str) -> list[tuple[float, str]]:
        """(received, status) of every health report on a release, oldest first."""
        rows = self._query(
            "SELECT received, status FROM clr_gw_health_votes WHERE release_sha256 = %s "
            "UNION ALL SELECT received, status FROM clr_gw_health WHERE release_sha256 = %s "
            "ORDER BY 1",
            (release_sha256, release_sha256),
        )
        return [(float(r[0]), str(r[1])) for r in rows]

    def add_artifact(self, sha256: str, size: int) -> None:
        self._change(
            "INSERT INTO clr_gw_artifacts (sha256, size, received) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (sha256, size, time.time()),
        )

    def artifact_referenced(self, sha256: str) -> bool:
        return bool(
            self._query(
                "SELECT 1 FROM clr_gw_release_artifacts WHERE artifact_sha256 = %s LIMIT 1",
                (sha256,),
            )
        )

    def releases_awaiting_artifact(self, sha256: str) -> list[ReleaseRow]:
        # Driven by the digest's rows, each release one key lookup, whatever the plan: a
        # generic plan of "sha256 IN (subquery)", or of this join once flattened (LIMIT
        # keeps the subquery a subquery), scanned every release.
        rows = self._query(
            "SELECT r.* FROM clr_gw_release_artifacts x CROSS JOIN LATERAL ("  # noqa: S608
            + _SELECT_RELEASES
            + " WHERE sha256 = x.release_sha256 AND state = %s LIMIT 1) r "
            "WHERE x.artifact_sha256 = %s ORDER BY r.log_index",
            (ReleaseState.AWAITING_ARTIFACTS.value, sha256),
        )
        return [release_from_row(r) for r in rows]

    def artifacts_present(self, sha256s: Sequence[str]) -> set[str]:
        rows = self._query(
            # A key lookup per digest, whatever the plan (see entries_by_sha).
            "SELECT q.sha FROM unnest(%b::text[]) AS q(sha) CROSS JOIN LATERAL "
            "(SELECT 1 FROM clr_gw_artifacts WHERE sha256 = q.sha) AS found",
            (Column(sha256s, "text"),),
        )
        return {str(r[0]) for r in rows}

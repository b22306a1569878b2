"""The gateway's metadata: an index of the log, plus health reports and uploads.

This module holds the interfaces and the rows they exchange; the backends are
:class:`~clearance.gateway.store_sqlite.SQLiteMetadataStore` (embedded, the
default), :class:`~clearance.gateway.store_postgres.PostgresMetadataStore`
(replicas on several machines over one database), and the two health-report
stores of :mod:`clearance.gateway.health_store`.  Each backend class is the
only holder of its SQL.

Everything in the metadata store except health reports and uploaded-artifact
bookkeeping is derived from log entries (:class:`~clearance.gateway.indexer.Indexer`
computes it, :meth:`MetadataStore.add_entries` writes it), so after a crash the
index is rebuilt by indexing again the entries it misses: the log, not the
store, is the record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from clearance.gateway.health_batch import AcceptedReport


@dataclass(frozen=True)
class ReleaseRow:
    sha256: str
    log_index: int
    product: str
    version: str
    channel: str
    vendor: str
    artifacts: list[dict[str, Any]]
    state: str
    job_id: int | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "log_index": self.log_index,
            "product": self.product,
            "version": self.version,
            "channel": self.channel,
            "vendor": self.vendor,
            "artifacts": self.artifacts,
            "state": self.state,
            "job_id": self.job_id,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class VerdictRow:
    sha256: str
    log_index: int
    release_sha256: str
    inspector: str
    decision: str


@dataclass(frozen=True)
class IndexRecord:
    """Everything one log entry adds to the index, written in one transaction.

    ``kind`` and ``summary`` always; at most one of the typed rows, by kind;
    ``rollout`` is the rollout state a transition leaves (keyed by release).
    """

    log_index: int
    sha256: str
    kind: str
    summary: dict[str, Any]
    release: ReleaseRow | None = None
    verdict: VerdictRow | None = None
    #: (name, body) of a distribution policy.
    policy: tuple[str, dict[str, Any]] | None = None
    #: (customer, product, body) of an entitlement.
    entitlement: tuple[str, str, dict[str, Any]] | None = None
    #: (release, event, body) of a rollout transition.
    transition: tuple[str, str, dict[str, Any]] | None = None
    #: (release, state) of the rollout after a transition.
    rollout: tuple[str, dict[str, Any]] | None = None
    #: (release, ring, device key id, status) of a logged health report.
    health: tuple[str, str, str, str] | None = None


class MetadataStore(Protocol):
    """What the gateway keeps beside the log: an index of it, health reports, uploads.

    Implementations must be safe to share between threads; every method is one
    transaction.
    """

    def close(self) -> None: ...

    # entries
    def indexed(self, start: int = 0, stop: int | None = None) -> set[int]:
        """The indexed log indices from ``start`` up to ``stop`` (excluded; no bound if
        ``None``)."""
        ...

    def add_entries(self, records: Sequence[IndexRecord]) -> list[bool]:
        """Write the index rows of several entries in one transaction; for each, whether it
        was written (False, and nothing written for it, if it was indexed already)."""
        ...

    def entry_by_sha(self, sha256: str) -> tuple[int, str, dict[str, Any]] | None: ...
    def entries_by_sha(self, sha256s: Sequence[str]) -> dict[str, int]:
        """The first log index of each of these digests that is indexed (one query)."""
        ...

    def entries_of_kind(self, kind: str) -> list[tuple[int, str, dict[str, Any], str]]: ...
    def kinds(self) -> dict[str, int]: ...
    def recent_entries(self, limit: int = 20) -> list[dict[str, Any]]: ...

    # releases and verdicts
    def release(self, sha256: str) -> ReleaseRow | None: ...
    def releases(self, state: str | None = None) -> list[ReleaseRow]: ...
    def approved_releases(
        self, product: str, channel: str, limit: int = 50
    ) -> list[ReleaseRow]: ...
    def channel_releases(self, product: str, channel: str) -> list[ReleaseRow]: ...
    def set_release_state(
        self, sha256: str, state: str, detail: str = "", job_id: int | None = None
    ) -> None: ...
    def set_awaiting_details(self, details: Sequence[tuple[str, str]]) -> None:
        """``(release, detail)``: the detail of releases still awaiting artifacts (others are
        left alone), in one transaction."""
        ...

    def move_release_state(self, sha256: str, old: str, new: str, detail: str) -> bool:
        """Set ``new`` only if the release is in state ``old``; whether it was."""
        ...

    def verdicts(self, release_sha256: str) -> list[dict[str, Any]]: ...

    # policies, entitlements, rollouts, health, uploads
    def latest_policy(self) -> tuple[int, dict[str, Any]] | None: ...
    def entitlements(self, customer: str | None = None) -> list[tuple[int, dict[str, Any]]]: ...
    def entitlements_version(self, customer: str) -> tuple[int, int]:
        """How many entitlements of ``customer`` are indexed, and the greatest log index
        among them (-1 if none): changes whenever one is indexed, in any order (entries
        are indexed once and never removed), so a reader can keep what it derived."""
        ...

    def rollout(self, release_sha256: str) -> dict[str, Any] | None: ...
    def rollouts(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every rollout's state (of ``status`` only, if given: an index lookup)."""
        ...

    def put_rollout(self, release_sha256: str, state: dict[str, Any]) -> None: ...
    def transitions(self, release_sha256: str) -> list[tuple[int, dict[str, Any]]]: ...
    def add_health(self, sha256: str, release: str, customer: str, status: str) -> bool: ...
    def health_votes(
        self, release_sha256: str, ring: str, after: int, through: int
    ) -> list[tuple[str, str, int]]: ...
    def health_reports(self, release_sha256: str) -> list[tuple[float, str]]: ...
    def add_artifact(self, sha256: str, size: int) -> None: ...
    def artifact_referenced(self, sha256: str) -> bool:
        """Whether an indexed release names this artifact digest (a key lookup)."""
        ...

    def releases_awaiting_artifact(self, sha256: str) -> list[ReleaseRow]:
        """The releases awaiting artifacts that name this digest, in log order (what an
        upload of it may complete: a key lookup, not every release awaiting artifacts)."""
        ...

    def artifacts_present(self, sha256s: Sequence[str]) -> set[str]:
        """Which of these artifact digests were uploaded (one query)."""
        ...


@dataclass(frozen=True)
class WindowTally:
    """A window's bulk reports as the rollout rule counts them: each device once."""

    #: Devices by the status of their latest report (the one with the greatest digest: an
    #: order anyone holding the window's reports can reproduce).
    devices_by_status: dict[str, int]
    #: Which of the devices asked about have a report in the window.
    reporting: frozenset[str]

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[Any, ...]]) -> WindowTally:
        """From the rows both backends' tally query returns: ``(0, status, devices)`` for
        the counts, ``(1, device, 0)`` for each device asked about that reported."""
        return cls(
            {str(status): int(n) for part, status, n in rows if part == 0},
            frozenset(str(device) for part, device, _ in rows if part == 1),
        )


class HealthReportStore(Protocol):
    """Individual bulk health reports and which logged aggregate (log index) holds them.

    A bulk request is one transaction; a resent report counts once.
    """

    def close(self) -> None: ...

    def add_many(
        self, reports: Sequence[AcceptedReport], window_start: int
    ) -> list[AcceptedReport]:
        """Store the reports; returns those that were new."""
        ...

    def closed_windows(self, before: int) -> list[tuple[str, str, int]]:
        """(release, ring, window_start) with reports not yet aggregated, windows before ``before``."""
        ...

    def window(self, release: str, ring: str, window_start: int) -> list[tuple[str, str, bytes]]:
        """(sha256, status, envelope) of a window's reports not yet in any aggregate."""
        ...

    def window_tally(
        self, release: str, ring: str, window_start: int, among: Sequence[str]
    ) -> WindowTally:
        """A window's reports as counted beside them when they were stored (a few rows
        read, however many reports): each device's latest status, and which of
        ``among`` reported.  Empty once the window is aggregated."""
        ...

    def aggregate_window(
        self,
        release: str,
        ring: str,
        window_start: int,
        log: Callable[[Iterator[tuple[str, str, bytes]]], int | None],
    ) -> int | None:
        """Aggregate a closed window: its (sha256, status, envelope) reports not yet in
        any aggregate, ordered by digest and read from one snapshot as ``log`` consumes
        them (never all in memory), go to ``log``, which logs their aggregate and returns
        its log index (``None``: nothing logged); then exactly those reports are recorded
        as in it (a late report stored meanwhile is not) and the window's tally dropped.
        Returns what ``log`` returned."""
        ...

    def in_aggregate(
        self, log_index: int, after: str = "", limit: int | None = None
    ) -> list[tuple[str, str, bytes]]:
        """The (sha256, status, envelope) reports of the aggregate logged at
        ``log_index``, in digest order (the order of its Merkle tree's leaves): those
        whose digest sorts after ``after``, at most ``limit`` of them (all if ``None``)."""
        ...

    def counts(self) -> tuple[int, int]:
        """(reports stored, reports already in a logged aggregate)."""
        ...


# -- what both backends do with the rows they read and write (no SQL here) -------------

#: Greater than every log index (a bigint bound both backends store).
LAST_LOG_INDEX = 2**63 - 2

#: The tables an :class:`IndexRecord` writes beside ``entries``, in the order written.
RECORD_TABLES = (
    "releases",
    "verdicts",
    "policies",
    "entitlements",
    "transitions",
    "rollouts",
    "health_votes",
)


def record_rows(record: IndexRecord, now: float) -> dict[str, tuple[Any, ...]]:
    """The row each table of :data:`RECORD_TABLES` gets from ``record`` (tables it does
    not touch are absent), as parameters in the order of the backends' INSERTs.  The
    ``entries`` row is ``entry_row``."""
    rows: dict[str, tuple[Any, ...]] = {}
    if record.release is not None:
        r = record.release
        rows["releases"] = (
            r.sha256,
            r.log_index,
            r.product,
            r.version,
            r.channel,
            r.vendor,
            json.dumps(r.artifacts),
            r.state,
            r.detail,
        )
    if record.verdict is not None:
        v = record.verdict
        rows["verdicts"] = (v.sha256, v.log_index, v.release_sha256, v.inspector, v.decision)
    if record.policy is not None:
        name, body = record.policy
        rows["policies"] = (record.log_index, record.sha256, name, json.dumps(body))
    if record.entitlement is not None:
        customer, product, body = record.entitlement
        rows["entitlements"] = (
            record.log_index,
            record.sha256,
            customer,
            product,
            json.dumps(body),
        )
    if record.transition is not None:
        release, event, body = record.transition
        rows["transitions"] = (record.log_index, release, event, json.dumps(body))
    if record.rollout is not None:
        release, state = record.rollout
        rows["rollouts"] = (release, json.dumps(state, sort_keys=True), now)
    if record.health is not None:
        rows["health_votes"] = (record.log_index, *record.health, now)
    return rows


def release_artifact_rows(record: IndexRecord) -> list[tuple[str, str]]:
    """The (artifact digest, release digest) rows of ``record``'s release, if it is one:
    uploads look releases up by the digests they name."""
    if record.release is None:
        return []
    release = record.release.sha256
    return [(str(a["sha256"]), release) for a in record.release.artifacts]


def entry_row(record: IndexRecord, now: float) -> tuple[Any, ...]:
    """The ``entries`` row of ``record``: index, digest, kind, summary (JSON), time."""
    return (record.log_index, record.sha256, record.kind, json.dumps(record.summary), now)


def release_from_row(row: Sequence[Any]) -> ReleaseRow:
    """A :class:`ReleaseRow` from a row of its columns in field order (artifacts as JSON)."""
    return ReleaseRow(
        str(row[0]),
        int(row[1]),
        str(row[2]),
        str(row[3]),
        str(row[4]),
        str(row[5]),
        json.loads(row[6]),
        str(row[7]),
        None if row[8] is None else int(row[8]),
        str(row[9]),
    )


def verdict_dict(sha256: str, log_index: int, key_ids: str, decision: str) -> dict[str, Any]:
    """A verdict as the API shows it.  The stored column holds the distinct trusted key ids
    that signed it (``name+keyhash``, space-separated); ``inspector`` shows their names."""
    return {
        "sha256": sha256,
        "log_index": int(log_index),
        "inspector": ",".join(k.split("+", 1)[0] for k in key_ids.split()),
        "key_ids": key_ids.split(),
        "decision": decision,
    }

"""The metadata and health-report stores, the same tests over SQLite and a real PostgreSQL.

The PostgreSQL cases use a scratch database ``clearance_i13pg_*`` per test
(dropped afterwards); under ``CI=true`` an unreachable server fails them.
Also here: the shared artifact blobs and TUF files that replicas on
separate machines rely on.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, nullcontext
from pathlib import Path

import psycopg
import pytest

from _postgres import scratch_database
from clearance.gateway.errors import GatewayInputError
from clearance.gateway.health_batch import AcceptedReport
from clearance.gateway.health_store import SQLiteHealthReportStore
from clearance.gateway.health_store_postgres import PostgresHealthReportStore
from clearance.gateway.shared_files import CHUNK_BYTES, PostgresArtifactBlobs, PostgresTufFiles
from clearance.gateway.states import ReleaseState
from clearance.gateway.store import (
    HealthReportStore,
    IndexRecord,
    MetadataStore,
    ReleaseRow,
    VerdictRow,
)
from clearance.gateway.store_postgres import PostgresMetadataStore
from clearance.gateway.store_sqlite import SQLiteMetadataStore
from clearance.gateway.tuf_repo import TufRepository

PREFIX = "clearance_i13pg_"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture
def dsn() -> Iterator[str]:
    with scratch_database(PREFIX) as database:
        yield database


@pytest.fixture(params=BACKENDS)
def open_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], MetadataStore]]:
    """Opens the backend's store (again and again: reopening must see what was written)."""
    opened: list[MetadataStore] = []
    with _database_for(request.param) as database:

        def open_one() -> MetadataStore:
            store: MetadataStore = (
                SQLiteMetadataStore(tmp_path / "gateway.sqlite")
                if database is None
                else PostgresMetadataStore(database)
            )
            opened.append(store)
            return store

        yield open_one
        for store in opened:
            store.close()


@pytest.fixture(params=BACKENDS)
def health_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HealthReportStore]:
    with _database_for(request.param) as database:
        store: HealthReportStore = (
            SQLiteHealthReportStore(tmp_path / "health.sqlite")
            if database is None
            else PostgresHealthReportStore(database)
        )
        yield store
        store.close()


def _database_for(backend: str) -> AbstractContextManager[str | None]:
    """``None`` for SQLite; a scratch PostgreSQL database's DSN otherwise."""
    return nullcontext(None) if backend == "sqlite" else scratch_database(PREFIX)


def _release(
    sha: str,
    index: int,
    version: str,
    state: str = "awaiting-artifacts",
    artifact_sha256: str = "ab" * 32,
) -> IndexRecord:
    artifact = {"name": "rules.yar", "sha256": artifact_sha256, "size": 10}
    row = ReleaseRow(sha, index, "av", version, "stable", "vendor", [artifact], state, None, "")
    return IndexRecord(index, sha, "release", {"version": version}, release=row)


def test_entries_releases_and_verdicts_round_trip(open_store: Callable[[], MetadataStore]) -> None:
    store = open_store()
    assert store.add_entries([_release("r1", 0, "1.0.0")]) == [True]
    assert store.add_entries([_release("r1", 0, "1.0.0")]) == [False]  # indexed once
    verdict = VerdictRow("v1", 2, "r2", "insp+aa insp2+bb", "approve")
    batch = [
        IndexRecord(2, "v1", "verdict", {"release": "r2"}, verdict=verdict),
        _release("r1", 0, "1.0.0"),
        _release("r2", 1, "1.0.1", ReleaseState.APPROVED),
    ]
    assert store.add_entries(batch) == [True, False, True]  # in the order given
    assert store.add_entries([]) == []
    again = open_store()  # what one connection wrote, another (another replica) reads
    assert again.indexed() == {0, 1, 2} and again.indexed(1) == {1, 2}
    assert again.indexed(1, 2) == {1} and again.indexed(0, 0) == set()
    assert again.entry_by_sha("v1") == (2, "verdict", {"release": "r2"})
    assert again.entry_by_sha("nothing") is None
    assert again.entries_by_sha(["v1", "nothing", "r1", "v1"]) == {"v1": 2, "r1": 0}
    assert [i for i, *_ in again.entries_of_kind("release")] == [0, 1]
    assert again.kinds() == {"release": 2, "verdict": 1}
    assert [e["log_index"] for e in again.recent_entries(2)] == [2, 1]
    row = again.release("r1")
    assert row is not None and row.artifacts[0]["sha256"] == "ab" * 32 and row.job_id is None
    assert [r.sha256 for r in again.releases()] == ["r1", "r2"]
    assert [r.sha256 for r in again.releases(ReleaseState.APPROVED)] == ["r2"]
    assert [r.sha256 for r in again.approved_releases("av", "stable")] == ["r2"]
    assert [r.sha256 for r in again.channel_releases("av", "stable")] == ["r1", "r2"]
    assert again.channel_releases("av", "beta") == []
    (shown,) = again.verdicts("r2")
    assert shown["inspector"] == "insp,insp2" and shown["key_ids"] == ["insp+aa", "insp2+bb"]


def test_release_states_move_once(open_store: Callable[[], MetadataStore]) -> None:
    store = open_store()
    store.add_entries([_release("r1", 0, "1.0.0")])
    store.set_release_state("r1", ReleaseState.INSPECTING, "queued", job_id=7)
    row = store.release("r1")
    assert row is not None and (row.state, row.detail, row.job_id) == ("inspecting", "queued", 7)
    moved = [
        store.move_release_state("r1", ReleaseState.INSPECTING, ReleaseState.APPROVED, "ok"),
        store.move_release_state("r1", ReleaseState.INSPECTING, ReleaseState.APPROVED, "ok"),
    ]
    assert moved == [True, False]
    row = store.release("r1")
    assert row is not None and row.state == "approved" and row.job_id == 7


def test_awaiting_details_leave_releases_that_moved_on(
    open_store: Callable[[], MetadataStore],
) -> None:
    """A replica noting missing artifacts must not overwrite the state another replica set
    meanwhile (the release was queued for inspection in between)."""
    store = open_store()
    store.add_entries([_release("r1", 0, "1.0.0"), _release("r2", 1, "1.0.1")])
    store.set_release_state("r2", ReleaseState.INSPECTING, "queued", job_id=3)
    store.set_awaiting_details([("r1", "waiting for artifacts: a"), ("r2", "waiting: b")])
    one, two = store.release("r1"), store.release("r2")
    assert one is not None and (one.state, one.detail) == (
        "awaiting-artifacts",
        "waiting for artifacts: a",
    )
    assert two is not None and (two.state, two.detail) == ("inspecting", "queued")
    store.set_awaiting_details([])


def test_one_batch_moving_a_rollout_twice_keeps_its_last_state(
    open_store: Callable[[], MetadataStore],
) -> None:
    """A batch's rows of one table go in one statement; PostgreSQL refuses an upsert that
    touches a row twice, so the batch keeps what one statement per row kept: the last."""
    store = open_store()
    moves = [
        IndexRecord(
            n,
            f"t{n}",
            "transition",
            {},
            transition=("r1", event, {"ring": "canary"}),
            rollout=("r1", {"release": "r1", "status": status}),
        )
        for n, (event, status) in enumerate([("start", "rolling"), ("halt", "halted")])
    ]
    assert store.add_entries([_release("r1", 2, "1.0.0"), *moves]) == [True, True, True]
    assert store.rollout("r1") == {"release": "r1", "status": "halted"}
    assert [i for i, _ in store.transitions("r1")] == [0, 1]
    store.set_awaiting_details([("r1", "waiting: a"), ("r1", "waiting: b")])
    row = store.release("r1")
    assert row is not None and row.detail == "waiting: b"


def test_an_upload_finds_the_releases_naming_its_artifact_by_their_key(
    open_store: Callable[[], MetadataStore],
) -> None:
    """Which releases an uploaded artifact may complete: those awaiting artifacts that name
    its digest, in log order; a digest no release names is refused by the caller."""
    store = open_store()
    shared, own = "cd" * 32, "ef" * 32
    store.add_entries(
        [
            _release("r1", 0, "1.0.0", artifact_sha256=shared),
            _release("r2", 1, "1.0.1", artifact_sha256=own),
            _release("r3", 2, "1.0.2", artifact_sha256=shared),
            _release("r4", 3, "1.0.3", ReleaseState.APPROVED, artifact_sha256=shared),
        ]
    )
    assert store.artifact_referenced(shared) and store.artifact_referenced(own)
    assert not store.artifact_referenced("00" * 32)
    assert [r.sha256 for r in store.releases_awaiting_artifact(shared)] == ["r1", "r3"]
    store.set_release_state("r1", ReleaseState.INSPECTING, "queued", job_id=1)
    assert [r.sha256 for r in store.releases_awaiting_artifact(shared)] == ["r3"]
    assert [r.sha256 for r in store.releases_awaiting_artifact(own)] == ["r2"]
    assert store.releases_awaiting_artifact("00" * 32) == []


def test_the_active_rollouts_are_read_by_their_status_not_among_every_rollout(
    tmp_path: Path,
) -> None:
    """The rollout tick asks for the active rollouts every second; the finished ones grow
    with every release ever shipped, so the lookup goes through an index of the status."""
    import sqlite3

    store = SQLiteMetadataStore(tmp_path / "gateway.sqlite")
    store.close()
    with sqlite3.connect(tmp_path / "gateway.sqlite") as db:
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT state FROM rollouts "
            "WHERE json_extract(state, '$.status') = ? ORDER BY release_sha256",
            ("active",),
        ).fetchall()
    assert any("rollouts_status" in str(step[-1]) for step in plan), plan


def test_releases_indexed_before_the_artifact_lookup_existed_are_found_after_reopening(
    tmp_path: Path,
) -> None:
    """A store written by an older gateway has releases but no rows naming their
    artifacts: opening it fills them in, so their uploads are still accepted."""
    import sqlite3

    path = tmp_path / "gateway.sqlite"
    store = SQLiteMetadataStore(path)
    store.add_entries([_release("r1", 0, "1.0.0", artifact_sha256="cd" * 32)])
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE release_artifacts")
    store = SQLiteMetadataStore(path)
    assert store.artifact_referenced("cd" * 32)
    assert [r.sha256 for r in store.releases_awaiting_artifact("cd" * 32)] == ["r1"]
    store.close()


@pytest.mark.postgres
def test_postgres_releases_indexed_before_the_artifact_lookup_existed_are_found(
    dsn: str,
) -> None:
    store = PostgresMetadataStore(dsn)
    store.add_entries([_release("r1", 0, "1.0.0", artifact_sha256="cd" * 32)])
    store.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE clr_gw_release_artifacts")
    store = PostgresMetadataStore(dsn)
    assert store.artifact_referenced("cd" * 32)
    assert [r.sha256 for r in store.releases_awaiting_artifact("cd" * 32)] == ["r1"]
    store.close()


def test_replicas_indexing_overlapping_batches_in_any_order_write_each_entry_once(
    open_store: Callable[[], MetadataStore],
) -> None:
    """Two replicas index the same entries in batches given in opposite orders (the one that
    appended them, and a survivor catching up): no deadlock, every entry written once."""
    first, second = open_store(), open_store()
    records = [_release(f"o{n}", n, f"2.0.{n}") for n in range(60)]
    results: list[list[bool]] = []
    lock = threading.Lock()

    def index(store: MetadataStore, order: list[IndexRecord]) -> None:
        for n in range(0, len(order), 12):
            written = store.add_entries(order[n : n + 12])
            with lock:
                results.append(written)

    threads = [
        threading.Thread(target=index, args=(first, records)),
        threading.Thread(target=index, args=(second, records[::-1])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert sum(w.count(True) for w in results) == 60
    assert first.indexed() == set(range(60)) and len(first.releases()) == 60


def test_concurrent_moves_and_indexing_have_one_winner(
    open_store: Callable[[], MetadataStore],
) -> None:
    """Two stores (two replicas) racing on one entry and one state move: exactly one wins."""
    first, second = open_store(), open_store()
    for n in range(20):
        first.add_entries([_release(f"r{n}", n, f"1.0.{n}", ReleaseState.INSPECTING)])
    wins: list[bool] = []
    indexed: list[bool] = []
    lock = threading.Lock()

    def race(store: MetadataStore) -> None:
        for n in range(20):
            won = store.move_release_state(
                f"r{n}", ReleaseState.INSPECTING, ReleaseState.APPROVED, "x"
            )
            added = store.add_entries([_release(f"x{n}", 100 + n, "9")])[0]
            with lock:
                wins.append(won)
                indexed.append(added)

    threads = [threading.Thread(target=race, args=(s,)) for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 20 and indexed.count(True) == 20


def test_policies_entitlements_rollouts_health_and_artifacts(
    open_store: Callable[[], MetadataStore],
) -> None:
    store = open_store()
    assert store.latest_policy() is None
    store.add_entries([IndexRecord(0, "p0", "policy", {}, policy=("p", {"v": 1}))])
    store.add_entries([IndexRecord(1, "p1", "policy", {}, policy=("p", {"v": 2}))])
    assert store.latest_policy() == (1, {"v": 2})
    store.add_entries(
        [IndexRecord(2, "e", "entitlement", {}, entitlement=("acme", "av", {"c": 1}))]
    )
    store.add_entries(
        [IndexRecord(3, "f", "entitlement", {}, entitlement=("beta", "av", {"c": 2}))]
    )
    assert store.entitlements("acme") == [(2, {"c": 1})]
    assert [i for i, _ in store.entitlements()] == [2, 3]
    # What a reader keeps derived from a customer's entitlements is checked against this:
    # it changes with every entitlement indexed, one of a lower index indexed late too.
    assert store.entitlements_version("acme") == (1, 2)
    assert store.entitlements_version("nobody") == (0, -1)
    store.add_entries(
        [IndexRecord(20, "e2", "entitlement", {}, entitlement=("acme", "av", {"c": 3}))]
    )
    assert store.entitlements_version("acme") == (2, 20)
    store.add_entries(  # a replica died before indexing entry 8; a survivor indexes it now
        [IndexRecord(19, "e3", "entitlement", {}, entitlement=("acme", "av", {"c": 4}))]
    )
    assert store.entitlements_version("acme") == (3, 20)
    store.add_entries([_release("r1", 4, "1.0.0")])
    start = IndexRecord(
        5,
        "t",
        "transition",
        {},
        transition=("r1", "start", {"ring": "canary"}),
        rollout=("r1", {"release": "r1", "status": "rolling"}),
    )
    store.add_entries([start])
    assert store.rollout("r1") == {"release": "r1", "status": "rolling"}
    assert store.transitions("r1") == [(5, {"ring": "canary"})]
    store.put_rollout("r1", {"release": "r1", "status": "halted"})
    assert store.rollouts() == [{"release": "r1", "status": "halted"}]
    store.put_rollout("r0", {"release": "r0", "status": "active"})
    assert store.rollouts("active") == [{"release": "r0", "status": "active"}]
    assert store.rollouts("halted") == [{"release": "r1", "status": "halted"}]
    assert store.rollouts("complete") == []
    store.put_rollout("r0", {"release": "r0", "status": "complete"})
    assert store.rollouts("active") == []
    assert store.rollout("nothing") is None
    vote = IndexRecord(6, "h", "health", {}, health=("r1", "canary", "dev+1", "ok"))
    store.add_entries([vote])
    assert store.health_votes("r1", "canary", 5, 6) == [("dev+1", "ok", 6)]
    assert store.health_votes("r1", "canary", 6, 9) == []
    assert store.add_health("legacy", "r1", "acme", "failed")
    assert not store.add_health("legacy", "r1", "acme", "failed")
    assert sorted(s for _, s in store.health_reports("r1")) == ["failed", "ok"]
    assert store.artifact_referenced("ab" * 32) and not store.artifact_referenced("cd" * 32)
    assert store.artifacts_present(["ab" * 32]) == set()
    store.add_artifact("ab" * 32, 10)
    store.add_artifact("ab" * 32, 10)
    assert store.artifacts_present(["ab" * 32, "cd" * 32, "ab" * 32]) == {"ab" * 32}
    assert store.artifacts_present([]) == set()


def _report(
    n: int, release: str = "r1", ring: str = "canary", device: str | None = None
) -> AcceptedReport:
    sha = hashlib.sha256(f"report {n}".encode()).hexdigest()
    status = "ok" if n % 3 else "failed"
    return AcceptedReport(
        sha, release, f"site-{n}", ring, status, b"{%d}" % n, device or f"device-{n}"
    )


def test_health_reports_stored_once_aggregated_and_retrievable(
    health_store: HealthReportStore,
) -> None:
    reports = [_report(n) for n in range(50)]
    new = health_store.add_many([*reports, reports[0]], window_start=600)
    assert [r.sha256 for r in new] == [r.sha256 for r in reports]  # the resent one once
    assert health_store.add_many(reports[:10], window_start=600) == []
    health_store.add_many([_report(99, ring="broad")], window_start=1200)
    assert health_store.add_many([], window_start=0) == []
    assert health_store.closed_windows(before=1200) == [("r1", "canary", 600)]
    assert len(health_store.closed_windows(before=1800)) == 2
    window = health_store.window("r1", "canary", 600)
    assert [s for s, _, _ in window] == sorted(r.sha256 for r in reports)
    assert {(s, t, e) for s, t, e in window} == {(r.sha256, r.status, r.envelope) for r in reports}
    # Nothing logged (the callback says so): nothing recorded.
    assert health_store.aggregate_window("r1", "canary", 600, lambda rows: None) is None
    assert health_store.counts() == (51, 0)
    read: list[tuple[str, str, bytes]] = []

    def log(rows: Iterator[tuple[str, str, bytes]]) -> int:
        read.extend(rows)
        return 17

    assert health_store.aggregate_window("r1", "canary", 600, log) == 17
    assert read == window  # every open report of the window, in digest order
    assert health_store.counts() == (51, 50)
    assert health_store.in_aggregate(17) == window
    # A page at a time, in the same (leaf) order: after a digest, at most so many.
    assert health_store.in_aggregate(17, after=window[9][0], limit=5) == window[10:15]
    assert health_store.in_aggregate(17, after=window[45][0], limit=10) == window[46:]
    assert health_store.in_aggregate(17, after=window[-1][0], limit=10) == []
    assert health_store.in_aggregate(17, limit=3) == window[:3]
    assert health_store.window("r1", "canary", 600) == []
    assert health_store.closed_windows(before=1800) == [("r1", "broad", 1200)]
    assert health_store.in_aggregate(18) == []


def test_a_report_stored_while_its_window_is_aggregated_is_not_claimed_by_the_aggregate(
    health_store: HealthReportStore,
) -> None:
    """A bulk request that read the clock before its window closed can commit while the
    leader is logging that window's aggregate.  Its report is not in the logged Merkle
    root, so it must not be recorded as in that aggregate (a verifier fetching the
    aggregate's reports would find one the root does not cover): it stays open and goes
    into the next aggregate of the window."""
    health_store.add_many([_report(n) for n in range(40)], window_start=600)
    late = _report(1000)

    def log_while_a_late_bulk_commits(rows: Iterator[tuple[str, str, bytes]]) -> int:
        read = [next(rows)]
        health_store.add_many([late], window_start=600)  # commits mid-read
        read.extend(rows)
        assert len(read) == 40
        return 21

    assert health_store.aggregate_window("r1", "canary", 600, log_while_a_late_bulk_commits) == 21
    covered = health_store.in_aggregate(21)
    assert len(covered) == 40 and late.sha256 not in {s for s, _, _ in covered}
    assert health_store.closed_windows(before=1200) == [("r1", "canary", 600)]
    assert health_store.window("r1", "canary", 600) == [(late.sha256, late.status, late.envelope)]
    # A log that fails records nothing.
    with pytest.raises(RuntimeError):
        health_store.aggregate_window("r1", "canary", 600, _fail)
    assert health_store.counts() == (41, 40)


def _fail(rows: Iterator[tuple[str, str, bytes]]) -> int:
    raise RuntimeError("the log is down")


def _tally_from_scratch(reports: list[AcceptedReport]) -> dict[str, int]:
    """Devices per status, each by its report with the greatest digest."""
    latest: dict[str, AcceptedReport] = {}
    for report in reports:
        if report.device not in latest or report.sha256 > latest[report.device].sha256:
            latest[report.device] = report
    counted: dict[str, int] = {}
    for report in latest.values():
        counted[report.status] = counted.get(report.status, 0) + 1
    return counted


def test_one_device_flooding_a_window_counts_once_by_its_greatest_digest(
    health_store: HealthReportStore,
) -> None:
    """A stolen device key can send any number of reports: the window's tally (done by
    the store, not by reading every report back) still counts that device once, by the
    report anyone holding the window's reports would pick (the greatest digest)."""
    flood = [_report(n, device="stolen") for n in range(300)]
    others = [_report(n) for n in range(300, 320)]
    health_store.add_many([*flood, *others], window_start=600)
    health_store.add_many([_report(400, device="stolen", ring="broad")], window_start=600)
    health_store.add_many([_report(401, device="late")], window_start=1200)
    expected = _tally_from_scratch([*flood, *others])
    among = ["stolen", "late", "device-301", "nobody"]
    counted = health_store.window_tally("r1", "canary", 600, among)
    assert counted.devices_by_status == expected
    assert sum(expected.values()) == 21  # twenty devices and the flooding one
    assert counted.reporting == {"stolen", "device-301"}
    assert health_store.window_tally("r1", "canary", 600, []).reporting == frozenset()
    assert health_store.window_tally("r9", "canary", 600, among).devices_by_status == {}
    # The same reports again, in another order and in smaller bulks, change nothing.
    for start in range(0, 320, 7):
        health_store.add_many([*flood, *others][::-1][start : start + 7], window_start=600)
    assert health_store.window_tally("r1", "canary", 600, among) == counted
    # Once the window's aggregate is logged, its tally is dropped; the reports stay.
    health_store.aggregate_window("r1", "canary", 600, lambda rows: len(list(rows)) + 100)
    assert health_store.window_tally("r1", "canary", 600, among).devices_by_status == {}
    assert health_store.window_tally("r1", "canary", 1200, among).reporting == {"late"}
    assert health_store.counts() == (322, 320)


def test_a_window_tally_is_the_same_whatever_order_the_reports_came_in(
    health_store: HealthReportStore,
) -> None:
    """Kept as bulks arrive, the tally must equal the one counted from scratch over the
    window's reports, whichever order and grouping the bulks had (a device's newest
    report replaces its older one, and its status moves from one count to the other)."""
    reports = [_report(n, device=f"device-{n % 17}") for n in range(200)]
    order = sorted(reports, key=lambda r: hashlib.sha256(r.sha256.encode()).digest())
    for start in range(0, len(order), 23):
        health_store.add_many(order[start : start + 23], window_start=600)
    assert health_store.window_tally("r1", "canary", 600, []).devices_by_status == (
        _tally_from_scratch(reports)
    )


@pytest.mark.postgres
def test_replicas_storing_reports_of_the_same_devices_at_once_keep_one_tally(dsn: str) -> None:
    """Two replicas store bulks naming the same devices at the same moment.  Were both to
    read the devices' old reports before either wrote, both would move the counts: a
    device counted twice.  A third session holds the tally row both must update, so
    that both are in flight together, then lets them go."""
    reports = [_report(n, device=f"device-{n % 40}") for n in range(200)]
    replicas = [PostgresHealthReportStore(dsn), PostgresHealthReportStore(dsn)]
    try:
        with psycopg.connect(dsn) as holder:
            holder.execute("INSERT INTO clr_gw_health_tallies VALUES ('r1', 'canary', 600, 'ok', 0)")
            holder.commit()
            holder.execute("SELECT 1 FROM clr_gw_health_tallies WHERE status = 'ok' FOR UPDATE")
            threads = [
                threading.Thread(target=store.add_many, args=(part, 600))
                for store, part in zip(replicas, [reports[:100], reports[100:]], strict=True)
            ]
            for thread in threads:
                thread.start()
            time.sleep(1.0)  # both replicas reach the held row (or the tally's lock)
            holder.commit()
        for thread in threads:
            thread.join()
        counted = replicas[0].window_tally("r1", "canary", 600, [])
        assert counted.devices_by_status == _tally_from_scratch(reports)
        assert sum(counted.devices_by_status.values()) == 40
    finally:
        for store in replicas:
            store.close()


#: The table as gateways kept it before reports kept their device.
_HEALTH_TABLE_BEFORE_DEVICE = (
    "CREATE TABLE {name} (sha256 text PRIMARY KEY, release text NOT NULL, customer text "
    "NOT NULL, ring text NOT NULL, status text NOT NULL, window_start bigint NOT NULL, "
    "envelope {blob} NOT NULL, aggregate_index bigint)"
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reports_stored_before_devices_were_kept_are_counted_by_their_signer(
    backend: str, tmp_path: Path
) -> None:
    """Opening a store made by an older gateway adds the device column, filled from each
    stored envelope's first signature (the digest for an unsigned one), so that a device
    that reported before the upgrade and after it still counts once."""
    signed = b'{"payload":"e30=","payloadType":"x","signatures":[{"keyid":"k1","sig":"AA=="}]}'
    unsigned = b'{"payload":"e30=","payloadType":"x","signatures":[]}'
    rows = [
        (hashlib.sha256(envelope).hexdigest(), status, envelope)
        for envelope, status in ((signed, "failed"), (unsigned, "ok"))
    ]
    insert = "INSERT INTO {name} VALUES ({marks}, 600, {marks2}, NULL)"
    with _database_for(backend) as database:
        if database is None:
            path = tmp_path / "health.sqlite"
            with closing(sqlite3.connect(path)) as db, db:
                db.execute(_HEALTH_TABLE_BEFORE_DEVICE.format(name="health_reports", blob="BLOB"))
                for sha, status, envelope in rows:
                    db.execute(
                        insert.format(name="health_reports", marks="?, 'r1', 'site', 'canary', ?",
                                      marks2="?"),
                        (sha, status, envelope),
                    )
            store: HealthReportStore = SQLiteHealthReportStore(path)
        else:
            with psycopg.connect(database) as conn:
                conn.execute(
                    _HEALTH_TABLE_BEFORE_DEVICE.format(name="clr_gw_health_reports", blob="bytea")
                )
                for sha, status, envelope in rows:
                    conn.execute(
                        insert.format(
                            name="clr_gw_health_reports",
                            marks="%s, 'r1', 'site', 'canary', %s",
                            marks2="%s",
                        ),
                        (sha, status, envelope),
                    )
            store = PostgresHealthReportStore(database)
        try:
            counted = store.window_tally("r1", "canary", 600, ["k1", rows[1][0], "k2"])
            assert counted.devices_by_status == {"failed": 1, "ok": 1}
            assert counted.reporting == {"k1", rows[1][0]}
            # The same device reporting after the upgrade is still one device.
            later = AcceptedReport("ff" * 32, "r1", "site", "canary", "ok", b"{}", "k1")
            store.add_many([later], window_start=600)
            assert store.window_tally("r1", "canary", 600, []).devices_by_status == {"ok": 2}
        finally:
            store.close()
        reopened: HealthReportStore = (
            SQLiteHealthReportStore(tmp_path / "health.sqlite")
            if database is None
            else PostgresHealthReportStore(database)
        )
        try:  # opening again migrates nothing and loses nothing
            assert reopened.counts() == (3, 0)
        finally:
            reopened.close()


@pytest.mark.postgres
def test_artifact_blobs_in_chunks_round_trip_and_refuse_corruption(
    dsn: str, tmp_path: Path
) -> None:
    data = bytes(range(256)) * ((2 * CHUNK_BYTES) // 256 + 7)  # three chunks
    sha = hashlib.sha256(data).hexdigest()
    blobs = PostgresArtifactBlobs(dsn)
    other = PostgresArtifactBlobs(dsn)  # another replica
    try:
        blobs.put(sha, data)
        blobs.put(sha, data)  # idempotent
        assert other.copy_to(sha, tmp_path / sha)
        assert (tmp_path / sha).read_bytes() == data
        assert not other.copy_to("00" * 32, tmp_path / "missing")
        assert not (tmp_path / "missing").exists()
        empty = hashlib.sha256(b"").hexdigest()
        blobs.put(empty, b"")
        assert other.copy_to(empty, tmp_path / "empty") and (tmp_path / "empty").read_bytes() == b""
        with psycopg.connect(dsn) as conn:
            parts = conn.execute("SELECT count(*) FROM clr_gw_blobs WHERE sha256 = %s", (sha,))
            assert parts.fetchone() == (3,)
            conn.execute(
                "UPDATE clr_gw_blobs SET data = 'x' WHERE sha256 = %s AND part = 1", (sha,)
            )
        assert not other.copy_to(sha, tmp_path / "bad")  # bytes not matching their name
        assert not (tmp_path / "bad").exists()
    finally:
        blobs.close()
        other.close()


@pytest.mark.postgres
def test_tuf_repository_shared_by_replicas_with_separate_directories(
    dsn: str, tmp_path: Path
) -> None:
    first = TufRepository(tmp_path / "a", shared=PostgresTufFiles(dsn))
    # The second replica's directory is a copy of the first's keys (what `gateway init` made).
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keys").mkdir(mode=0o700)
    for key in (tmp_path / "a" / "keys").iterdir():
        (tmp_path / "b" / "keys" / key.name).write_bytes(key.read_bytes())
    second = TufRepository(tmp_path / "b", shared=PostgresTufFiles(dsn))
    try:
        assert second.root_bytes() == first.root_bytes()
        first.publish({"av/1/a.bin": b"one"}, {"av/1/a.bin": {"n": 1}})
        second.publish({"av/2/a.bin": b"two"}, {})  # signs on top of the first's version
        first.sync()
        assert sorted(first.targets()) == sorted(second.targets()) == ["av/1/a.bin", "av/2/a.bin"]
        names = sorted(p.name for p in (tmp_path / "a" / "metadata").iterdir())
        assert names == sorted(p.name for p in (tmp_path / "b" / "metadata").iterdir())
        assert "3.targets.json" in names and "4.targets.json" not in names
        assert (tmp_path / "a/metadata/timestamp.json").read_bytes() == (
            tmp_path / "b/metadata/timestamp.json"
        ).read_bytes()
        digest = hashlib.sha256(b"two").hexdigest()
        assert (tmp_path / "a" / "targets" / "av" / "2" / f"{digest}.a.bin").read_bytes() == b"two"
        # A replica with other keys is refused with a clear error, not a split repository.
        with pytest.raises(GatewayInputError, match="the root key is not the one"):
            TufRepository(tmp_path / "c", shared=PostgresTufFiles(dsn))
    finally:
        first.close()
        second.close()


@pytest.mark.postgres
def test_rows_of_a_failed_bulk_are_not_inserted_with_the_next(dsn: str) -> None:
    """Bulk rows are staged in a session's table before the insert: a bulk that fails
    after staging (PostgreSQL refuses a NUL in text) must leave nothing there for the next
    bulk on the same connection to insert as its own."""
    store = PostgresHealthReportStore(dsn, pool_size=1)
    try:
        bad = AcceptedReport("ee" * 32, "r1", "site\x00", "canary", "ok", b"{}", "device")
        with pytest.raises(psycopg.Error):
            store.add_many([_report(1), bad], window_start=600)
        assert store.counts() == (0, 0)
        new = store.add_many([_report(2)], window_start=600)
        assert [r.sha256 for r in new] == [_report(2).sha256]
        assert store.counts() == (1, 0)
        assert [s for s, _, _ in store.window("r1", "canary", 600)] == [_report(2).sha256]
    finally:
        store.close()


@pytest.mark.postgres
def test_lookups_prepared_while_the_index_was_small_stay_index_lookups_as_it_grows(
    dsn: str,
) -> None:
    """psycopg prepares a statement run often and PostgreSQL may keep a generic plan made
    while the table was tiny: a sequential scan then reads the whole index at every batch
    of submissions.  With generic plans forced, a growing index is still read by its keys."""
    from psycopg.conninfo import conninfo_to_dict

    name = str(conninfo_to_dict(dsn)["dbname"])
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" SET plan_cache_mode = force_generic_plan')
    store = PostgresMetadataStore(dsn, name="planner", pool_size=1)
    batch, rounds = 20, 200
    for n in range(rounds):
        first = n * batch
        records = [_release(f"g{i}", i, f"3.0.{i}") for i in range(first, first + batch)]
        assert store.entries_by_sha([r.sha256 for r in records]) == {}
        store.add_entries(records)
        store.set_awaiting_details([(r.sha256, "waiting for artifacts") for r in records])
        assert store.artifact_referenced("ab" * 32)  # what an upload asks
        assert store.releases_awaiting_artifact("cd" * 32) == []
        assert store.indexed(first, first + batch) == set(range(first, first + batch))
        assert store.entries_by_sha([records[0].sha256, "nothing"]) == {records[0].sha256: first}
    store.close()  # a backend's statistics are flushed when it exits
    with psycopg.connect(dsn, autocommit=True) as conn:
        deadline = time.monotonic() + 10
        while True:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            rows = conn.execute(
                "SELECT relname, seq_tup_read, idx_tup_fetch, n_tup_ins, n_tup_upd "
                "FROM pg_stat_user_tables WHERE relname IN ('clr_gw_entries', 'clr_gw_releases')"
            ).fetchall()
            read = {str(r[0]): tuple(int(v or 0) for v in r[1:]) for r in rows}
            done = len(read) == 2 and read["clr_gw_releases"][3] >= batch * rounds
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    seq_read, fetched, inserted, _ = read["clr_gw_entries"]
    assert inserted == batch * rounds
    # Each lookup reads its own rows: a few per entry, not the index again per batch
    # (the old statements read about 800,000 rows here).
    assert seq_read + fetched < 10 * batch * rounds, (seq_read, fetched)
    # The releases awaiting artifacts are updated and looked up by their keys too (a
    # prepared join read all of them at every batch: about 400,000 rows here).
    seq_read, fetched, _, updated = read["clr_gw_releases"]
    assert updated == batch * rounds
    assert seq_read + fetched < 10 * batch * rounds, (seq_read, fetched)

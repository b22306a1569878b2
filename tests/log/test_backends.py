"""The log on both storage backends (SQLite, PostgreSQL): same behaviour, same proofs.

The PostgreSQL-only attacks at the end are the replicated case: several
processes integrate into one database; the fencing token and the unique
checkpoint size are what keep a stale or forked integrator out.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _postgres import scratch_database
from clearance.keys import Signer, cosign
from clearance.log import (
    Checkpoint,
    CheckpointSupersededError,
    DirectoryTileSource,
    LogCorruptedError,
    LogInputError,
    TiledLogClient,
    TransparencyLog,
    entries_path,
    merkle,
    open_checkpoint,
    tile_path,
)
from clearance.log.tiles import TileNotFoundError, decode_bundle

ORIGIN = "example.com/log"


def _new(path: Path, backend: str | None, signer: Signer | None = None) -> TransparencyLog:
    return TransparencyLog.create(path, ORIGIN, signer or Signer.generate(ORIGIN), database=backend)


def _root_of(entries: list[bytes]) -> bytes:
    return merkle.root_from_leaf_hashes([merkle.leaf_hash(e) for e in entries])


def _sql(
    backend: str | None, directory: Path, statement: str, params: tuple[Any, ...] = ()
) -> None:
    """Run one statement on the log's database, behind the log's back (an attacker's write)."""
    if backend is None:
        import sqlite3

        db = sqlite3.connect(directory / "log.db")
        db.execute(statement.replace("%s", "?").replace("clr_log_", ""), params)
        db.commit()
        db.close()
        return
    import psycopg

    with psycopg.connect(backend, autocommit=True) as conn:
        conn.execute(statement, params)


def test_random_batches_give_the_naive_tree_and_proofs(tmp_path: Path, backend: str | None) -> None:
    rng = random.Random(7)
    entries: list[bytes] = []
    with _new(tmp_path / "log", backend) as log:
        for n in (1, 255, 1, 300, 17, 600):
            batch = [rng.randbytes(rng.randint(0, 40)) for _ in range(n)]
            results = log.append(batch)
            assert [r.index for r in results] == list(range(len(entries), len(entries) + n))
            assert [r.sha256 for r in results] == [hashlib.sha256(e).hexdigest() for e in batch]
            entries += batch
            assert log.root() == _root_of(entries)
        size = len(entries)
        for index, tree in ((0, 1), (300, 557), (size - 1, size)):
            assert log.entry(index) == entries[index]
            merkle.verify_inclusion(
                index,
                tree,
                merkle.leaf_hash(entries[index]),
                log.inclusion_proof(index, tree),
                _root_of(entries[:tree]),
            )
        merkle.verify_consistency(
            257, size, _root_of(entries[:257]), log.root(), log.consistency_proof(257, size)
        )
        log.verify()
    with TransparencyLog.open(tmp_path / "log") as log:  # reopening loads the right edge
        assert log.size == size
        assert log.append([b"after"])[0].index == size
        log.verify()


def test_create_twice_is_refused(tmp_path: Path, backend: str | None) -> None:
    _new(tmp_path / "log", backend).close()
    with pytest.raises(LogInputError, match="already holds a log"):
        _new(tmp_path / "log", backend)
    if backend is not None:  # a second log directory pointing at the same database
        with pytest.raises(LogInputError, match="already holds a log"):
            _new(tmp_path / "other", backend)


def test_served_tiles_equal_the_exported_folder_and_prove_alone(
    tmp_path: Path, backend: str | None
) -> None:
    with _new(tmp_path / "log", backend) as log:
        log.append([f"entry {i}".encode() for i in range(300)])
        old_note = log.checkpoint().to_bytes()
        old_partial = log.read_public(tile_path(0, 1, 300 - 256))
        log.append([f"entry {i}".encode() for i in range(300, 530)])
        export = tmp_path / "export"
        assert log.export(export) == 530
        # Every file of the static copy is what a replica serves from the database.
        files = [p for p in export.rglob("*") if p.is_file() and not p.name.startswith(".")]
        assert len(files) >= 6
        for file in files:
            relative = file.relative_to(export).as_posix()
            assert log.read_public(relative) == file.read_bytes(), relative
        # An older partial tile is still served (cut from the stored one), unchanged.
        assert log.read_public(tile_path(0, 1, 300 - 256)) == old_partial
        assert decode_bundle(log.read_public(entries_path(1, 44))) == [
            f"entry {i}".encode() for i in range(256, 300)
        ]
        for bad in (tile_path(0, 2), tile_path(1, 0), "tile/0/2", "tile/0/002.p/256", "../x"):
            with pytest.raises(TileNotFoundError):
                log.read_public(bad)
        client = TiledLogClient(DirectoryTileSource(export), log.verifier, ORIGIN)
        checkpoint, _ = client.checkpoint()
        assert checkpoint.size == 530
        assert list(client.entries(528, 530, 530)) == [b"entry 528", b"entry 529"]
        # Export again after growth: only the difference is written, the copy stays valid.
        log.append([b"more"])
        assert log.export(export) == 531
        assert client.checkpoint()[0].size == 531
        assert old_note != log.read_public("checkpoint")


def test_export_refuses_a_folder_from_a_newer_log(tmp_path: Path, backend: str | None) -> None:
    signer = Signer.generate(ORIGIN)
    with _new(tmp_path / "big", None, signer) as big:
        big.append([b"1", b"2", b"3"])
        big.export(tmp_path / "export")
    with _new(tmp_path / "log", backend, signer) as log:
        log.append([b"1"])
        with pytest.raises(LogInputError, match="newer checkpoint"):
            log.export(tmp_path / "export")


def test_concurrent_appenders_are_group_committed(tmp_path: Path, backend: str | None) -> None:
    threads, per_thread = 8, 25
    got: dict[bytes, int] = {}
    lock = threading.Lock()
    with _new(tmp_path / "log", backend) as log:

        def worker(t: int) -> None:
            for i in range(per_thread):
                entry = f"thread {t} entry {i}".encode()
                (result,) = log.append([entry])
                with lock:
                    got[entry] = result.index

        pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        assert sorted(got.values()) == list(range(threads * per_thread))
        for entry, index in got.items():
            assert log.entry(index) == entry
        log.verify()


def test_cosignatures_on_both_backends(tmp_path: Path, backend: str | None) -> None:
    witness = Signer.generate("witness.example")
    with _new(tmp_path / "log", backend) as log:
        log.append([b"a", b"b"])
        note = log.checkpoint()
        cosigned = log.add_cosignatures([cosign(note.text, witness, 1_700_000_000)], note.text)
        assert log.read_public("checkpoint") == cosigned.to_bytes()
        log.verify()
        log.append([b"c"])
        with pytest.raises(CheckpointSupersededError):
            log.add_cosignatures([cosign(note.text, witness, 1)], for_text=note.text)


def test_verify_detects_a_changed_entry(tmp_path: Path, backend: str | None) -> None:
    directory = tmp_path / "log"
    with _new(directory, backend) as log:
        log.append([f"entry {i}".encode() for i in range(300)])
        bundle = log.storage.bundle(0)
    assert bundle is not None
    _sql(
        backend,
        directory,
        "UPDATE clr_log_bundles SET data = %s WHERE idx = 0",
        (bundle.replace(b"entry 5", b"entry 6"),),
    )
    with TransparencyLog.open(directory) as log, pytest.raises(LogCorruptedError, match="tile 0/0"):
        log.verify()


def test_edge_tile_tampering_is_caught_at_open(tmp_path: Path, backend: str | None) -> None:
    directory = tmp_path / "log"
    with _new(directory, backend) as log:
        log.append([f"entry {i}".encode() for i in range(300)])
        tile = log.storage.tile(0, 1)
    assert tile is not None
    _sql(
        backend,
        directory,
        "UPDATE clr_log_tiles SET data = %s WHERE level = 0 AND idx = 1",
        (bytes(len(tile)),),
    )
    with pytest.raises(LogCorruptedError, match="do not hash to the signed root"):
        TransparencyLog.open(directory)


_APPENDER = """
import sys
from pathlib import Path
from clearance.log import TransparencyLog
log = TransparencyLog.open(Path(sys.argv[1]), name=sys.argv[2])
for i in range(int(sys.argv[3])):
    log.append([f"{sys.argv[2]}-{i}".encode()])
log.close()
"""


def test_separate_processes_append_to_one_log(tmp_path: Path, backend: str | None) -> None:
    """Replicas: three processes integrate into the same log (file lock or advisory lock)."""
    directory = tmp_path / "log"
    _new(directory, backend).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", _APPENDER, str(directory), f"p{n}", "20"])
        for n in range(3)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    with TransparencyLog.open(directory) as log:
        assert log.size == 60
        assert {log.entry(i) for i in range(60)} == {
            f"p{n}-{i}".encode() for n in range(3) for i in range(20)
        }
        log.verify()


# -- PostgreSQL: the replicated integrator ----------------------------------------------------


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A scratch PostgreSQL database, for the tests of the replicated integrator only."""
    with scratch_database() as dsn:
        yield dsn


def test_integrator_that_lost_its_lease_cannot_commit(tmp_path: Path, pg_dsn: str) -> None:
    """Fencing: another integrator took the token; the old one's batch is refused, not merged."""
    from clearance.log._postgres import PostgresStorage

    with _new(tmp_path / "log", pg_dsn) as log:
        log.append([b"a"])
        storage = log.storage
        assert isinstance(storage, PostgresStorage)
        head = storage.head()
        with storage.sequencing():
            token, holder = storage.lease_holder()
            assert token == storage.token and holder == "clearance"
            # What a replica that took over after our lock was presumed lost would do.
            _sql(pg_dsn, tmp_path, "UPDATE clr_log_lease SET token = token + 1, holder = 'b'")
            with pytest.raises(LogCorruptedError, match="lost its lease"):
                storage.commit_batch([], 1, 2, merkle.EMPTY_ROOT, b"forged")
        assert storage.head() == head
        log.verify()


def test_attack_a_log_whose_head_row_was_deleted_is_refused_and_its_lock_left_free(
    tmp_path: Path, pg_dsn: str
) -> None:
    """The head row deleted behind the log's back: the integrator refuses to write, and
    the advisory lock it took for the attempt does not stay held (which would stall
    every replica)."""
    import psycopg

    from clearance.log._postgres import PostgresStorage

    with _new(tmp_path / "log", pg_dsn) as log:
        log.append([b"a"])
        storage = log.storage
        assert isinstance(storage, PostgresStorage)
        _sql(pg_dsn, tmp_path, "DELETE FROM clr_log_head")
        with pytest.raises(LogCorruptedError, match="no head checkpoint"), storage.sequencing():
            pytest.fail("the lease was given on a log without a head")
        with psycopg.connect(pg_dsn) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchone()
        assert row is not None and row[0] == 0


def test_attack_a_fenced_integrators_commit_writes_no_tile_bundle_or_checkpoint(
    tmp_path: Path, pg_dsn: str
) -> None:
    """The commit is one statement whose every write hangs on the head moving under the
    caller's token: an integrator that lost its lease gets none of its tiles, full or
    partial bundles or checkpoint stored beside the rightful holder's tree."""
    import psycopg

    from clearance.log._edge import BUNDLE_LEVEL, TileWrite
    from clearance.log._postgres import PostgresStorage

    def rows() -> list[int]:
        with psycopg.connect(pg_dsn) as conn:
            return [
                int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
                for table in (
                    "clr_log_tiles", "clr_log_bundles", "clr_log_bundle_parts",
                    "clr_log_checkpoints",
                )
            ]  # fmt: skip

    with _new(tmp_path / "log", pg_dsn) as log:
        log.append([b"a"])
        storage = log.storage
        assert isinstance(storage, PostgresStorage)
        head, before = storage.head(), rows()
        forged = [
            TileWrite(0, 7, 256, b"\x11" * 32 * 256),
            TileWrite(BUNDLE_LEVEL, 3, 256, b"\x00\x01x" * 256),
            TileWrite(BUNDLE_LEVEL, 4, 2, b"\x00\x01y\x00\x01z", start=0),
        ]
        with storage.sequencing():
            _sql(pg_dsn, tmp_path, "UPDATE clr_log_lease SET token = token + 1, holder = 'b'")
            with pytest.raises(LogCorruptedError, match="lost its lease"):
                storage.commit_batch(forged, 1, 2, b"\x22" * 32, b"forged")
        assert storage.head() == head and rows() == before
        log.verify()


def test_forked_checkpoint_for_a_taken_size_is_refused_by_the_database(
    tmp_path: Path, pg_dsn: str
) -> None:
    """A checkpoint for size 2 already exists; an integrator building another tree of size 2 fails."""
    with _new(tmp_path / "log", pg_dsn) as log:
        log.append([b"a"])
        _sql(
            pg_dsn,
            tmp_path,
            "INSERT INTO clr_log_checkpoints (size, root, note, token) VALUES (2, %s, 'x', 0)",
            (b"\x01" * 32,),
        )
        with pytest.raises(LogCorruptedError, match="second checkpoint for one tree size"):
            log.append([b"b"])
        assert log.size == 1
        assert log.append([b"b", b"c"])[0].index == 1  # a different size is fine
        log.verify()


def test_two_replicas_in_one_process_never_fork(tmp_path: Path, pg_dsn: str) -> None:
    """Two log instances over one database, four threads each: one tree, every checkpoint in it."""
    from clearance.log._postgres import PostgresStorage

    signer = Signer.generate(ORIGIN)
    _new(tmp_path / "a", pg_dsn, signer).close()
    (tmp_path / "b").mkdir()
    for name in ("log.key", "log.pub", "log.dsn"):
        (tmp_path / "b" / name).write_bytes((tmp_path / "a" / name).read_bytes())
    replicas = [TransparencyLog.open(tmp_path / r, name=r) for r in ("a", "b")]
    acked: dict[bytes, int] = {}
    lock = threading.Lock()

    def worker(replica: TransparencyLog, tag: str) -> None:
        for i in range(15):
            entry = f"{tag}-{i}".encode()
            (result,) = replica.append([entry])
            with lock:
                acked[entry] = result.index

    pool = [threading.Thread(target=worker, args=(replicas[t % 2], f"t{t}")) for t in range(8)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    log = replicas[0]
    assert sorted(acked.values()) == list(range(120))
    for entry, index in acked.items():
        assert log.entry(index) == entry
    storage = log.storage
    assert isinstance(storage, PostgresStorage)
    final = Checkpoint.from_note(log.checkpoint())
    checkpoints = storage.checkpoints()
    assert [c[0] for c in checkpoints] == sorted({c[0] for c in checkpoints})
    for size, root, note in checkpoints:  # each one is a prefix of the final tree
        cp, _ = open_checkpoint(note, log.verifier, ORIGIN)
        assert (cp.size, cp.root_hash) == (size, root)
        if size == 0:
            assert root == merkle.EMPTY_ROOT
            continue
        merkle.verify_consistency(
            size, final.size, root, final.root_hash, log.consistency_proof(size, final.size)
        )
    log.verify()
    for r in replicas:
        r.close()


_HOLDER = """
import sys, time
from pathlib import Path
from clearance.log import TransparencyLog
log = TransparencyLog.open(Path(sys.argv[1]), name="doomed")
with log.storage.sequencing():
    print("holding", flush=True)
    time.sleep(600)
"""


def test_kill_9_of_the_integrator_hands_over_at_once(tmp_path: Path, pg_dsn: str) -> None:
    directory = tmp_path / "log"
    _new(directory, pg_dsn).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(directory)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        with TransparencyLog.open(directory, name="survivor") as log:
            blocked = threading.Thread(target=log.append, args=([b"waits for the lock"],))
            blocked.start()
            time.sleep(0.3)
            assert log.size == 0  # the holder really excludes us
            os.kill(proc.pid, signal.SIGKILL)
            started = time.monotonic()
            blocked.join(timeout=10)
            assert not blocked.is_alive()
            assert time.monotonic() - started < 5
            assert log.size == 1
            assert log.storage.lease_holder()[1] == "survivor"  # type: ignore[attr-defined]
            log.verify()
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.timeout(180)
def test_large_entries_do_not_stall_the_integrator(tmp_path: Path, pg_dsn: str) -> None:
    """A vendor submits entries of the largest size, one commit each.  When every commit
    rewrote the growing partial entry bundle (megabytes), a psycopg pipeline hung on such
    a parameter for good while the integrator kept its lease, stalling the log for every
    replica; each commit must finish."""
    rng = random.Random(5)
    entries = [rng.randbytes(60_000) for _ in range(100)]  # a partial bundle of 6 MB at the end
    with _new(tmp_path / "log", pg_dsn) as log:
        for entry in entries:
            log.append([entry])
        assert log.size == len(entries)
        assert log.root() == _root_of(entries)
        assert log.entry(99) == entries[99]
        log.verify()


def _parts(dsn: str) -> list[tuple[int, int, int]]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT idx, start, length(data) FROM clr_log_bundle_parts ORDER BY idx, start"
        ).fetchall()
    return [(int(i), int(s), int(n)) for i, s, n in rows]


def test_a_commit_stores_only_its_own_entries_of_the_partial_bundle(
    tmp_path: Path, pg_dsn: str
) -> None:
    """Commits of one large entry each: each stores its 60 KB, not the whole partial bundle
    again (6 MB by the hundredth: quadratic bytes written, WAL and TOAST work per commit);
    the bundle read back, every width served and the full check are unchanged."""
    rng = random.Random(9)
    entries = [rng.randbytes(rng.choice([10, 60_000])) for _ in range(40)]
    with _new(tmp_path / "log", pg_dsn) as log:
        for entry in entries:
            log.append([entry])
        parts = _parts(pg_dsn)
        assert [n for _, _, n in parts] == [len(e) + 2 for e in entries]
        assert sum(n for _, _, n in parts) == len(log.read_public(entries_path(0, 40)))
        for width in (1, 17, 40):
            assert decode_bundle(log.read_public(entries_path(0, width))) == entries[:width]
        log.append([b"x"] * (256 - 40 + 3))  # fills bundle 0: its row replaces the parts
        assert [(i, s) for i, s, _ in _parts(pg_dsn)] == [(1, 0)]
        assert decode_bundle(log.read_public(entries_path(0)))[:40] == entries
        log.verify()


def test_a_partial_bundle_kept_whole_by_an_older_version_is_continued(
    tmp_path: Path, pg_dsn: str
) -> None:
    """A log written before partial bundles were kept in parts (the partial bundle a row
    of clr_log_bundles, no parts table): it opens, grows and verifies."""
    entries = [f"old-{n}".encode() for n in range(30)]
    with _new(tmp_path / "log", pg_dsn) as log:
        log.append(entries[:10])
        log.append(entries[10:])
        bundle = log.read_public(entries_path(0, 30))
    _sql(pg_dsn, tmp_path, "INSERT INTO clr_log_bundles VALUES (0, %s)", (bundle,))
    _sql(pg_dsn, tmp_path, "DROP TABLE clr_log_bundle_parts")
    with TransparencyLog.open(tmp_path / "log") as log:
        assert log.entry(29) == entries[29]
        more = [f"new-{n}".encode() for n in range(300)]
        log.append(more[:5])
        assert decode_bundle(log.read_public(entries_path(0, 35))) == entries + more[:5]
        log.append(more[5:])
        assert log.root() == _root_of(entries + more)
        log.verify()


def test_a_part_out_of_place_is_refused_not_served(tmp_path: Path, pg_dsn: str) -> None:
    """A part slipped into the partial bundle behind the log's back (a gap, or bytes that
    overlap what is stored) is a corrupted log, not entries to serve."""
    with _new(tmp_path / "log", pg_dsn) as log:
        log.append([b"a" * 10])
        log.append([b"b" * 10])
        _sql(pg_dsn, tmp_path, "INSERT INTO clr_log_bundle_parts VALUES (0, 30, %s)", (b"zz",))
        with pytest.raises(LogCorruptedError, match="part at byte 30"):
            log.read_public(entries_path(0, 2))

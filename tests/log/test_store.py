"""The embedded log: appends, proofs, batching, recovery, cosignatures and self-check."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearance.keys import Signer, cosign, verify_cosignature
from clearance.log import (
    Checkpoint,
    CheckpointSupersededError,
    EntryTooLargeError,
    LogCorruptedError,
    LogInputError,
    ProofRequestError,
    TransparencyLog,
    merkle,
    open_checkpoint,
    tile_path,
)
from clearance.log._sqlite import Database

ORIGIN = "example.com/log"


def _new(path: Path) -> TransparencyLog:
    return TransparencyLog.create(path, ORIGIN, Signer.generate(ORIGIN))


def _root_of(entries: list[bytes]) -> bytes:
    return merkle.root_from_leaf_hashes([merkle.leaf_hash(e) for e in entries])


def _public_checkpoint(log: TransparencyLog) -> Checkpoint:
    cp, _ = open_checkpoint((log.public_dir / "checkpoint").read_bytes(), log.verifier, ORIGIN)
    return cp


def test_create_layout_and_empty_checkpoint(tmp_path: Path) -> None:
    with _new(tmp_path / "log") as log:
        assert log.size == 0
        assert log.root() == merkle.EMPTY_ROOT
        assert _public_checkpoint(log).size == 0
        assert (tmp_path / "log/log.key").stat().st_mode & 0o777 == 0o600
        assert not list(log.public_dir.rglob("*.key"))
        log.verify()


def test_create_refuses_an_existing_log_and_bad_origins(tmp_path: Path) -> None:
    _new(tmp_path / "log").close()
    with pytest.raises(LogInputError, match="already holds a log"):
        _new(tmp_path / "log")
    for origin in ("", " padded", "two\nlines"):
        with pytest.raises(LogInputError, match="origin"):
            TransparencyLog.create(tmp_path / "other", origin, Signer.generate(ORIGIN))
    assert not (tmp_path / "other/log.db").exists()
    with pytest.raises(LogInputError, match="not a Clearance log"):
        TransparencyLog.open(tmp_path / "nothing")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.integers(1, 300), min_size=1, max_size=6), data=st.data())
def test_random_batches_match_a_naive_tree(
    tmp_path_factory: pytest.TempPathFactory, batches: list[int], data: st.DataObject
) -> None:
    directory = tmp_path_factory.mktemp("log") / "log"
    entries: list[bytes] = []
    with _new(directory) as log:
        for n in batches:
            batch = [os.urandom(data.draw(st.integers(0, 40))) for _ in range(n)]
            results = log.append(batch)
            assert [r.index for r in results] == list(range(len(entries), len(entries) + n))
            assert [r.sha256 for r in results] == [hashlib.sha256(e).hexdigest() for e in batch]
            entries += batch
            assert log.root() == _root_of(entries)
            assert _public_checkpoint(log).root_hash == _root_of(entries)
        size = len(entries)
        index = data.draw(st.integers(0, size - 1))
        tree = data.draw(st.integers(index + 1, size))
        assert log.entry(index) == entries[index]
        assert log.root(tree) == _root_of(entries[:tree])
        merkle.verify_inclusion(
            index,
            tree,
            merkle.leaf_hash(entries[index]),
            log.inclusion_proof(index, tree),
            log.root(tree),
        )
        old = data.draw(st.integers(1, size))
        merkle.verify_consistency(
            old, size, log.root(old), log.root(), log.consistency_proof(old, size)
        )
        log.verify()


def test_oversized_entry_is_refused_and_nothing_written(tmp_path: Path) -> None:
    with _new(tmp_path / "log") as log:
        log.append([b"first"])
        before = (log.public_dir / "checkpoint").read_bytes()
        with pytest.raises(EntryTooLargeError, match="65535"):
            log.append([b"ok", b"x" * 65536])
        assert log.size == 1
        assert (log.public_dir / "checkpoint").read_bytes() == before
        assert log.append([b"y" * 65535])[0].index == 1
        log.verify()


def test_proof_requests_past_the_size(tmp_path: Path) -> None:
    with _new(tmp_path / "log") as log:
        log.append([b"a", b"b", b"c"])
        with pytest.raises(ProofRequestError):
            log.inclusion_proof(3)
        with pytest.raises(ProofRequestError, match="past the log size"):
            log.inclusion_proof(0, 4)
        with pytest.raises(ProofRequestError, match="backwards"):
            log.consistency_proof(3, 2)
        with pytest.raises(ProofRequestError):
            log.entry(3)
        with pytest.raises(ProofRequestError):
            log.root(4)


def test_concurrent_appenders_share_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits = []
    real_commit = Database.commit_batch

    def counting_commit(self: Database, writes, old_size, size, root, note):  # type: ignore[no-untyped-def]
        commits.append(size - old_size)
        real_commit(self, writes, old_size, size, root, note)

    monkeypatch.setattr(Database, "commit_batch", counting_commit)
    threads, per_thread = 8, 40
    got: dict[bytes, int] = {}
    lock = threading.Lock()
    with _new(tmp_path / "log") as log:

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
        assert log.size == threads * per_thread
        assert sorted(got.values()) == list(range(threads * per_thread))
        for entry, index in got.items():
            assert log.entry(index) == entry
        log.verify()
    assert sum(commits) == threads * per_thread
    # Group commit: far fewer transactions than appends.
    assert len(commits) < threads * per_thread * 0.75, commits


_APPENDER = """
import sys
from pathlib import Path
from clearance.log import TransparencyLog
log = TransparencyLog.open(Path(sys.argv[1]))
for i in range(int(sys.argv[3])):
    log.append([f"{sys.argv[2]}-{i}".encode()])
log.close()
"""


def test_separate_processes_append_safely(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    _new(directory).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", _APPENDER, str(directory), f"p{n}", "25"])
        for n in range(3)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    with TransparencyLog.open(directory) as log:
        assert log.size == 75
        assert {log.entry(i) for i in range(75)} == {
            f"p{n}-{i}".encode() for n in range(3) for i in range(25)
        }
        log.verify()


def test_cosignatures_are_added_published_and_dropped_on_growth(tmp_path: Path) -> None:
    witness = Signer.generate("witness.example")
    with _new(tmp_path / "log") as log:
        log.append([b"a", b"b"])
        note = log.checkpoint()
        sig = cosign(note.text, witness, 1_700_000_000)
        cosigned = log.add_cosignatures([sig], for_text=note.text)
        assert cosigned.signatures[-1] == sig
        published = (log.public_dir / "checkpoint").read_bytes()
        assert published == cosigned.to_bytes() == log.checkpoint().to_bytes()
        _, opened = open_checkpoint(published, log.verifier, ORIGIN)
        verify_cosignature(opened.text, opened.signatures[1], witness.verifier)
        assert log.add_cosignatures([sig]) == cosigned  # idempotent
        log.verify()
        log.append([b"c"])
        assert len(log.checkpoint().signatures) == 1
        with pytest.raises(CheckpointSupersededError):
            log.add_cosignatures([sig], for_text=note.text)
        with pytest.raises(LogInputError, match="own signature"):
            log.add_cosignatures(log.checkpoint().signatures)


def test_reopen_recovers_a_missing_or_stale_public_dir(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    with _new(directory) as log:
        log.append([b"x"] * 10)
        stale = (log.public_dir / "checkpoint").read_bytes()
        log.append([b"y"] * 600)
        root = log.root()
    (directory / "public/checkpoint").write_bytes(stale)
    for path in (directory / "public/tile/0").rglob("*"):
        if path.is_file() and "001" in path.name:
            path.unlink()
    with TransparencyLog.open(directory) as log:
        assert _public_checkpoint(log).root_hash == root
        log.verify()
    import shutil

    shutil.rmtree(directory / "public")
    with TransparencyLog.open(directory) as log:
        assert (log.public_dir / tile_path(0, 1)).is_file()
        log.verify()
        assert log.append([b"z"])[0].index == 610


def test_verify_detects_a_changed_entry(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    with _new(directory) as log:
        log.append([f"entry {i}".encode() for i in range(300)])
    db = sqlite3.connect(directory / "log.db")
    (data,) = db.execute("SELECT data FROM bundles WHERE idx = 0").fetchone()
    db.execute("UPDATE bundles SET data = ? WHERE idx = 0", (data.replace(b"entry 5", b"entry 6"),))
    db.commit()
    db.close()
    with TransparencyLog.open(directory) as log, pytest.raises(LogCorruptedError, match="tile 0/0"):
        log.verify()


def test_verify_detects_a_changed_tile_and_a_stray_row(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    with _new(directory) as log:
        log.append([f"entry {i}".encode() for i in range(300)])
    db = sqlite3.connect(directory / "log.db")
    db.execute("INSERT INTO bundles VALUES (7, x'0000')")
    db.commit()
    with TransparencyLog.open(directory) as log, pytest.raises(LogCorruptedError, match="stray"):
        log.verify()
    db.execute("DELETE FROM bundles WHERE idx = 7")
    db.execute("UPDATE tiles SET data = zeroblob(8192) WHERE level = 0 AND idx = 0")
    db.commit()
    db.close()
    with TransparencyLog.open(directory) as log, pytest.raises(LogCorruptedError):
        log.verify()


def test_verify_detects_a_tampered_public_tile(tmp_path: Path) -> None:
    with _new(tmp_path / "log") as log:
        log.append([f"entry {i}".encode() for i in range(300)])
        path = log.public_dir / tile_path(0, 1, 300 - 256)
        path.write_bytes(b"\x00" * len(path.read_bytes()))
        with pytest.raises(LogCorruptedError, match="public"):
            log.verify()


def test_edge_tile_corruption_is_caught_at_open(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    with _new(directory) as log:
        log.append([f"entry {i}".encode() for i in range(300)])
    db = sqlite3.connect(directory / "log.db")
    db.execute("UPDATE tiles SET data = zeroblob(length(data)) WHERE level = 0 AND idx = 1")
    db.commit()
    db.close()
    with pytest.raises(LogCorruptedError, match="do not hash to the signed root"):
        TransparencyLog.open(directory)


def test_garbage_database_is_a_clear_error(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    with _new(directory) as log:
        log.append([b"a"])
    for name in ("log.db-wal", "log.db-shm"):
        (directory / name).unlink(missing_ok=True)
    raw = bytearray((directory / "log.db").read_bytes())
    raw[0:100] = b"\xff" * 100
    (directory / "log.db").write_bytes(bytes(raw))
    with pytest.raises(LogCorruptedError, match="log database"):
        TransparencyLog.open(directory)


def test_a_different_key_in_the_log_dir_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    _new(directory).close()
    (directory / "log.key").write_text(Signer.generate(ORIGIN).to_string() + "\n")
    with pytest.raises(LogCorruptedError, match="not the key this log was created with"):
        TransparencyLog.open(directory)
    (directory / "log.key").write_text("garbage\n")
    with pytest.raises(LogInputError, match="log key unusable"):
        TransparencyLog.open(directory)


def test_public_checkpoint_ahead_of_the_database_is_refused(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    signer = Signer.generate(ORIGIN)
    with TransparencyLog.create(a, ORIGIN, signer) as log:
        log.append([b"1", b"2"])
    with TransparencyLog.create(b, ORIGIN, signer) as log:
        log.append([b"1"])
    (b / "public/checkpoint").write_bytes((a / "public/checkpoint").read_bytes())
    with pytest.raises(LogCorruptedError, match="ahead of the database"):
        TransparencyLog.open(b)

"""Issue 12, cases 2 and 3: forged conflict evidence, padded notes, and one log's key
speaking for another log's origin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clearance._serving import RateLimiter
from clearance.cli import main
from clearance.cli.witness import build_witness
from clearance.keys import Note, NoteSignature, Signer, generate_key_files
from clearance.witness import (
    AddCheckpointRequest,
    InconsistentCheckpoint,
    LogConfig,
    SizeConflict,
    UntrustedCheckpoint,
    Witness,
    WitnessConfigError,
    WitnessState,
)
from clearance.witness.server import create_app
from clearance.witness.state import MAX_CONFLICTS_PER_ORIGIN
from witness.helpers import MemoryLog, RunningServer, start_server


def _witness(tmp_path: Path, *logs: MemoryLog) -> Witness:
    state = WitnessState.open(tmp_path / "state")
    configs = [LogConfig(log.origin, (log.signer.verifier,)) for log in logs]
    return Witness(Signer.generate("witness.example"), configs, state, lambda: 1_700_000_000)


def _padded(note: Note, lines: int = 99) -> bytes:
    junk = tuple(NoteSignature(f"junk{i}.example/{'x' * 150}", i, b"\0" * 64) for i in range(lines))
    return Note(note.text, note.signatures + junk).to_bytes()


def _log(name: str = "log.example.org", size: int = 10) -> MemoryLog:
    log = MemoryLog(name, Signer.generate(name))
    log.append(*(f"{name} entry {i}".encode() for i in range(size)))
    return log


def test_case2_unsigned_old_root_is_not_conflict_evidence(tmp_path: Path) -> None:
    log = _log()
    w = _witness(tmp_path, log)
    w.add_checkpoint(AddCheckpointRequest(0, (), log.checkpoint().to_bytes()).to_bytes())
    log.append(b"eleven", b"twelve")
    # The attacker replays the honest, public checkpoint with a made-up "proof".
    forged = AddCheckpointRequest(10, (b"\0" * 32,), log.checkpoint().to_bytes())
    with pytest.raises(InconsistentCheckpoint):
        w.add_checkpoint(forged.to_bytes())
    assert w.state.conflicts() == []
    w.state.close()
    assert main(["witness", "conflicts", "--state", str(tmp_path / "state")]) == 0
    # The honest log's next checkpoint is still cosigned.
    honest = Witness(
        Signer.generate("witness.example"),
        [LogConfig(log.origin, (log.signer.verifier,))],
        WitnessState.open(tmp_path / "state"),
    )
    proof = tuple(log.consistency_proof(10, 12))
    honest.add_checkpoint(AddCheckpointRequest(10, proof, log.checkpoint().to_bytes()).to_bytes())


def test_case2_padded_notes_do_not_grow_the_witness(tmp_path: Path) -> None:
    log = _log()
    w = _witness(tmp_path, log)
    w.add_checkpoint(AddCheckpointRequest(0, (), log.checkpoint().to_bytes()).to_bytes())
    fork = MemoryLog(log.origin, log.signer)  # the log equivocates: real evidence
    fork.append(*(b"fork %d" % i for i in range(10)))
    for _ in range(20):
        padded = _padded(log.checkpoint())
        proof = ()
        w.add_checkpoint(AddCheckpointRequest(10, proof, padded).to_bytes())
        with pytest.raises(SizeConflict):
            w.add_checkpoint(AddCheckpointRequest(10, (), _padded(fork.checkpoint())).to_bytes())
    (conflict,) = w.state.conflicts()  # one piece of evidence, kept once
    assert conflict.offered == fork.checkpoint().to_bytes()  # the log's signature only
    latest = w.state.latest(log.origin)
    assert latest is not None and b"junk" not in latest.checkpoint
    w.state.close()
    size = sum(p.stat().st_size for p in (tmp_path / "state").iterdir())
    assert size < 256 * 1024, size


def test_case2_conflict_evidence_is_bounded_per_origin(tmp_path: Path) -> None:
    log = _log()
    w = _witness(tmp_path, log)
    w.add_checkpoint(AddCheckpointRequest(0, (), log.checkpoint().to_bytes()).to_bytes())
    for round_ in range(MAX_CONFLICTS_PER_ORIGIN + 10):
        fork = MemoryLog(log.origin, log.signer)
        fork.append(*(b"fork %d %d" % (round_, i) for i in range(10)))
        with pytest.raises(SizeConflict):
            w.add_checkpoint(AddCheckpointRequest(10, (), fork.checkpoint().to_bytes()).to_bytes())
    assert len(w.state.conflicts(log.origin)) == MAX_CONFLICTS_PER_ORIGIN


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[MemoryLog, Witness, RunningServer]]:
    log = _log()
    w = _witness(tmp_path, log)
    server = start_server(create_app(w, RateLimiter(rate=0.5, burst=5)))
    yield log, w, server
    server.stop()


def test_case2_requests_are_rate_and_size_limited(
    served: tuple[MemoryLog, Witness, RunningServer],
) -> None:
    log, _, server = served
    url = server.url + "/add-checkpoint"
    body = AddCheckpointRequest(0, (), log.checkpoint().to_bytes()).to_bytes()
    with httpx.Client() as client:
        codes = [client.post(url, content=body).status_code for _ in range(8)]
        assert codes[0] == 200 and codes[1:5] == [409] * 4 and codes[5:] == [429] * 3
        assert len(client.get(server.url + "/conflicts").content) < 1024


def test_case2_oversized_request_is_refused(
    served: tuple[MemoryLog, Witness, RunningServer],
) -> None:
    log, _, server = served
    body = AddCheckpointRequest(0, (), _padded(log.checkpoint(), 99)).to_bytes()
    big = body + b"x" * (80 * 1024)
    assert httpx.post(server.url + "/add-checkpoint", content=big).status_code == 400


def test_case3_one_logs_key_cannot_sign_another_logs_origin(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    wkey, _ = generate_key_files("witness.example", keys)
    _, a_pub = generate_key_files("a.example", keys)
    _, b_pub = generate_key_files("b.example", keys)
    a_signer = Signer.parse((keys / "a.example.key").read_text())
    b_signer = Signer.parse((keys / "b.example.key").read_text())
    honest = MemoryLog("a.example", a_signer)
    honest.append(b"a1", b"a2")
    w = build_witness(wkey, tmp_path / "state", [a_pub, b_pub], [])
    # Log B signs a checkpoint claiming A's origin: refused (403), A's state untouched.
    hostile = MemoryLog("a.example", b_signer)
    hostile.append(*(b"b%d" % i for i in range(50)))
    with pytest.raises(UntrustedCheckpoint):
        w.add_checkpoint(AddCheckpointRequest(0, (), hostile.checkpoint().to_bytes()).to_bytes())
    assert w.state.latest("a.example") is None
    w.add_checkpoint(AddCheckpointRequest(0, (), honest.checkpoint().to_bytes()).to_bytes())
    w.state.close()
    # Explicit bindings work; binding several origins to several keys at once does not.
    explicit = build_witness(
        wkey, tmp_path / "s2", [], [], [f"a.example={a_pub}", f"b.example={b_pub}"]
    )
    with pytest.raises(UntrustedCheckpoint):
        explicit.add_checkpoint(
            AddCheckpointRequest(0, (), hostile.checkpoint().to_bytes()).to_bytes()
        )
    explicit.state.close()
    with pytest.raises(WitnessConfigError, match="single --log-key"):
        build_witness(wkey, tmp_path / "s3", [a_pub, b_pub], ["a.example", "b.example"])

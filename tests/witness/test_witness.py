"""The witness core against the C2SP tlog-witness rules, with real keys and a real SQLite state."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest

from clearance.keys import Signer, sign_note, verify_cosignature
from clearance.witness import (
    AddCheckpointRequest,
    InconsistentCheckpoint,
    LogConfig,
    MalformedRequest,
    SizeConflict,
    UnknownLog,
    UntrustedCheckpoint,
    Witness,
    WitnessState,
)
from witness.helpers import MemoryLog


def make_witness(tmp_path: Path, log: MemoryLog, now: float = 1_700_000_000) -> Witness:
    state = WitnessState.open(tmp_path / "state")
    signer = Signer.generate("witness.example/w1")
    return Witness(signer, [LogConfig(log.origin, (log.signer.verifier,))], state, lambda: now)


def body(log: MemoryLog, old: int, size: int | None = None) -> bytes:
    new = len(log.leaves) if size is None else size
    proof = log.consistency_proof(old, new) if old else []
    return AddCheckpointRequest(old, tuple(proof), log.checkpoint(new).to_bytes()).to_bytes()


def test_first_checkpoint_is_cosigned_and_persisted(tmp_path: Path, memlog: MemoryLog) -> None:
    w = make_witness(tmp_path, memlog)
    (sig,) = w.add_checkpoint(body(memlog, 0))
    assert verify_cosignature(memlog.checkpoint().text, sig, w.verifier) == 1_700_000_000
    w.state.close()
    reopened = WitnessState.open(tmp_path / "state")
    latest = reopened.latest(memlog.origin)
    assert latest is not None and latest.size == 5 and latest.root_hash == memlog.root()


def test_extension_with_valid_proof_is_cosigned(tmp_path: Path, memlog: MemoryLog) -> None:
    w = make_witness(tmp_path, memlog)
    w.add_checkpoint(body(memlog, 0))
    memlog.append(b"six", b"seven", b"eight")
    (sig,) = w.add_checkpoint(body(memlog, 5))
    verify_cosignature(memlog.checkpoint().text, sig, w.verifier)
    latest = w.state.latest(memlog.origin)
    assert latest is not None and latest.size == 8


def test_wrong_old_size_is_409_with_cosigned_size(tmp_path: Path, memlog: MemoryLog) -> None:
    w = make_witness(tmp_path, memlog)
    w.add_checkpoint(body(memlog, 0))
    memlog.append(b"x")
    with pytest.raises(SizeConflict) as err:
        w.add_checkpoint(body(memlog, 0))
    assert err.value.latest_size == 5 and err.value.status == 409


def test_same_size_other_root_is_split_view_kept_as_evidence(
    tmp_path: Path, memlog: MemoryLog
) -> None:
    w = make_witness(tmp_path, memlog)
    w.add_checkpoint(body(memlog, 0))
    fork = MemoryLog(memlog.origin, memlog.signer)
    fork.append(*(f"other {i}".encode() for i in range(5)))
    offered = body(fork, 5)
    with pytest.raises(SizeConflict) as err:
        w.add_checkpoint(offered)
    assert err.value.split_view
    (conflict,) = w.state.conflicts()
    # The offered checkpoint as the log signed it (not the request around it).
    assert conflict.kind == "split-view" and conflict.offered == fork.checkpoint().to_bytes()
    # Both checkpoints carry the log's valid signature: third-party verifiable evidence.
    assert memlog.checkpoint().text.encode() in conflict.cosigned
    latest = w.state.latest(memlog.origin)
    assert latest is not None and latest.root_hash == memlog.root()


def test_forked_extension_is_422_but_not_evidence(tmp_path: Path, memlog: MemoryLog) -> None:
    w = make_witness(tmp_path, memlog)
    w.add_checkpoint(body(memlog, 0))
    fork = MemoryLog(memlog.origin, memlog.signer)
    fork.append(*(f"other {i}".encode() for i in range(9)))
    with pytest.raises(InconsistentCheckpoint) as err:
        w.add_checkpoint(body(fork, 5))
    assert err.value.status == 422
    # A proof that does not verify convicts nobody: anyone can send a wrong one.
    assert w.state.conflicts(memlog.origin) == []
    latest = w.state.latest(memlog.origin)
    assert latest is not None and latest.size == 5


def test_tampered_proof_is_422(tmp_path: Path, memlog: MemoryLog) -> None:
    w = make_witness(tmp_path, memlog)
    w.add_checkpoint(body(memlog, 0))
    memlog.append(b"a", b"b")
    proof = memlog.consistency_proof(5, 7)
    proof[0] = bytes(32)
    req = AddCheckpointRequest(5, tuple(proof), memlog.checkpoint().to_bytes()).to_bytes()
    with pytest.raises(InconsistentCheckpoint):
        w.add_checkpoint(req)


def test_going_backwards_is_refused(tmp_path: Path, memlog: MemoryLog) -> None:
    w = make_witness(tmp_path, memlog)
    w.add_checkpoint(body(memlog, 0))
    older = AddCheckpointRequest(5, (), memlog.checkpoint(3).to_bytes()).to_bytes()
    with pytest.raises(MalformedRequest):  # old size above the checkpoint size: 400
        w.add_checkpoint(older)
    with pytest.raises(SizeConflict):  # claims the witness is at 0: 409 says 5
        w.add_checkpoint(AddCheckpointRequest(0, (), memlog.checkpoint(3).to_bytes()).to_bytes())


def test_unknown_origin_is_404(tmp_path: Path, memlog: MemoryLog) -> None:
    w = make_witness(tmp_path, memlog)
    other = MemoryLog("other.example/log", Signer.generate("other.example/log"))
    other.append(b"a")
    with pytest.raises(UnknownLog) as err:
        w.add_checkpoint(body(other, 0))
    assert err.value.status == 404


def test_signature_by_unknown_key_is_403(tmp_path: Path, memlog: MemoryLog) -> None:
    w = make_witness(tmp_path, memlog)
    impostor = MemoryLog(memlog.origin, Signer.generate(memlog.origin))
    impostor.leaves = list(memlog.leaves)
    with pytest.raises(UntrustedCheckpoint) as err:
        w.add_checkpoint(body(impostor, 0))
    assert err.value.status == 403


def test_forged_signature_by_known_key_is_403(tmp_path: Path, memlog: MemoryLog) -> None:
    w = make_witness(tmp_path, memlog)
    good = memlog.checkpoint()
    forged = sign_note(good.text.replace("\n5\n", "\n6\n"), [memlog.signer])
    # Keep the text of one checkpoint with the signature of another.
    mixed = good.to_bytes().split(b"\n\n")[0] + b"\n\n" + forged.to_bytes().split(b"\n\n")[1]
    with pytest.raises(UntrustedCheckpoint):
        w.add_checkpoint(AddCheckpointRequest(0, (), mixed).to_bytes())


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"old 5\n",
        b"old 05\n\nx",
        b"old -1\n\nx",
        b"new 1\n\nx",
        b"old 1\nnot-base64!\n\nx",
        b"old 1\n" + base64.b64encode(b"short") + b"\n\nx",
        b"old 0\n\nno signature block",
        b"old 0\n" + b"A" * 44 + b"\n" * 65,
        b"old 0\n\n\xff\xfe\n\n",
    ],
)
def test_malformed_bodies_are_400(tmp_path: Path, memlog: MemoryLog, raw: bytes) -> None:
    w = make_witness(tmp_path, memlog)
    with pytest.raises(MalformedRequest) as err:
        w.add_checkpoint(raw)
    assert err.value.status == 400


def test_proof_with_old_size_zero_is_400(tmp_path: Path, memlog: MemoryLog) -> None:
    w = make_witness(tmp_path, memlog)
    req = AddCheckpointRequest(0, (bytes(32),), memlog.checkpoint().to_bytes()).to_bytes()
    with pytest.raises(MalformedRequest):
        w.add_checkpoint(req)


def test_concurrent_requests_never_roll_back(tmp_path: Path, memlog: MemoryLog) -> None:
    """The race in the spec: N then N+K checked concurrently must not end at N."""
    w = make_witness(tmp_path, memlog)
    w.add_checkpoint(body(memlog, 0))
    memlog.append(*(f"more {i}".encode() for i in range(20)))
    bodies = [body(memlog, 5, size) for size in range(6, 26)]
    results: list[str] = []

    def submit(b: bytes) -> None:
        try:
            w.add_checkpoint(b)
            results.append("ok")
        except SizeConflict:
            results.append("409")

    threads = [threading.Thread(target=submit, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1
    latest = w.state.latest(memlog.origin)
    assert latest is not None and latest.size > 5

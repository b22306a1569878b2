"""Several real witness servers on 127.0.0.1: honest, down, slow and malicious ones.

The collector must reach the threshold with the honest witnesses, report each
faulty one with its reason, and a forked log must be refused by every honest
witness.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from clearance.keys import (
    ALG_COSIGNATURE_V1,
    NoteSignature,
    Signer,
    Verifier,
    verify_cosignature,
    verify_note,
)
from clearance.witness import (
    AddCheckpointRequest,
    LogConfig,
    Witness,
    WitnessConfig,
    WitnessConfigError,
    WitnessState,
    collect_cosignatures,
)
from clearance.witness.server import create_app
from witness.helpers import MemoryLog, RunningServer, free_port, start_server


def honest(
    tmp_path: Path, log: MemoryLog, name: str, servers: list[RunningServer]
) -> tuple[WitnessConfig, Witness]:
    signer = Signer.generate(name)
    state = WitnessState.open(tmp_path / name.replace("/", "_"))
    w = Witness(signer, [LogConfig(log.origin, (log.signer.verifier,))], state)
    srv = start_server(create_app(w))
    servers.append(srv)
    return WitnessConfig(name, srv.url, signer.verifier), w


def slow_app(delay: float) -> FastAPI:
    app = FastAPI()

    @app.post("/add-checkpoint")
    async def add(request: Request) -> Response:
        await asyncio.sleep(delay)
        return Response(b"", status_code=500)

    return app


def malicious_app(signer: Signer) -> FastAPI:
    """Answers 200 with a well-formed line under the witness's key id but a garbage signature."""
    app = FastAPI()
    key_id = signer.verifier.as_alg(ALG_COSIGNATURE_V1).key_id

    @app.post("/add-checkpoint")
    async def add(request: Request) -> Response:
        garbage = NoteSignature(signer.name, key_id, struct.pack(">Q", 1) + os.urandom(64))
        return Response(garbage.to_line().encode(), media_type="text/plain")

    return app


def test_threshold_met_despite_down_slow_and_malicious(
    tmp_path: Path, memlog: MemoryLog, servers: list[RunningServer]
) -> None:
    good = [honest(tmp_path, memlog, f"w{i}.example", servers)[0] for i in range(3)]
    down = WitnessConfig("down.example", f"http://127.0.0.1:{free_port()}", good[0].verifier)
    slow_srv = start_server(slow_app(5.0))
    servers.append(slow_srv)
    slow = WitnessConfig("slow.example", slow_srv.url, Signer.generate("slow.example").verifier)
    evil_signer = Signer.generate("evil.example")
    evil_srv = start_server(malicious_app(evil_signer))
    servers.append(evil_srv)
    evil = WitnessConfig("evil.example", evil_srv.url, evil_signer.verifier)

    note = memlog.checkpoint()
    result = collect_cosignatures(
        note, [*good, down, slow, evil], memlog.consistency_proof, threshold=3, timeout=1.5
    )
    assert result.threshold_met
    assert sorted(result.cosigners) == ["w0.example", "w1.example", "w2.example"]
    kinds = {f.name: f.kind for f in result.failures}
    assert kinds == {
        "down.example": "unreachable",
        "slow.example": "timeout",
        "evil.example": "bad-cosignature",
    }
    # The cosigned checkpoint as a client sees it: log signature + 3 witness cosignatures.
    published = note.with_signatures(result.signatures)
    verifiers = [memlog.signer.verifier] + [g.cosignature_verifier for g in good]
    assert len(verify_note(published, verifiers)) == 4

    # The next checkpoint: witnesses now hold size 5; the collector learns it from 409s.
    memlog.append(b"six", b"seven")
    again = collect_cosignatures(
        memlog.checkpoint(), good, memlog.consistency_proof, threshold=3, timeout=5
    )
    assert again.threshold_met and not again.failures
    assert dict(again.witness_sizes) == {g.name: 7 for g in good}
    # With correct hints no 409 round trip is needed, and it still works.
    memlog.append(b"eight")
    third = collect_cosignatures(
        memlog.checkpoint(),
        good,
        memlog.consistency_proof,
        threshold=3,
        old_sizes=again.witness_sizes,
    )
    assert third.threshold_met


def test_threshold_not_met_is_reported(
    tmp_path: Path, memlog: MemoryLog, servers: list[RunningServer]
) -> None:
    (good, _) = honest(tmp_path, memlog, "w0.example", servers)
    down = WitnessConfig("down.example", f"http://127.0.0.1:{free_port()}", good.verifier)
    result = collect_cosignatures(
        memlog.checkpoint(), [good, down], memlog.consistency_proof, threshold=2, timeout=2
    )
    assert not result.threshold_met
    assert [f.name for f in result.failures] == ["down.example"]


def test_forked_log_is_refused_by_every_honest_witness(
    tmp_path: Path, memlog: MemoryLog, servers: list[RunningServer]
) -> None:
    pairs = [honest(tmp_path, memlog, f"w{i}.example", servers) for i in range(3)]
    configs = [c for c, _ in pairs]
    first = collect_cosignatures(memlog.checkpoint(), configs, memlog.consistency_proof, 3)
    assert first.threshold_met

    # The operator forks: same key, same origin, history rewritten from leaf 2 on.
    fork = MemoryLog(memlog.origin, memlog.signer)
    fork.leaves = memlog.leaves[:2]
    fork.append(b"backdoored", b"x", b"y", b"z", b"w")
    grown = collect_cosignatures(
        fork.checkpoint(),
        configs,
        fork.consistency_proof,
        1,
        old_sizes={c.name: 5 for c in configs},
    )
    assert not grown.signatures and not grown.threshold_met
    assert {f.kind for f in grown.failures} == {"refused"}
    assert all("HTTP 422" in f.reason for f in grown.failures)
    # Same size, different root: a split view, 409 from each.
    split = MemoryLog(memlog.origin, memlog.signer)
    split.append(*(f"other {i}".encode() for i in range(5)))
    same = collect_cosignatures(split.checkpoint(), configs, split.consistency_proof, 1)
    assert not same.signatures
    assert all("split view" in f.reason for f in same.failures)
    # Every witness kept both conflicting, log-signed checkpoints as evidence.
    for _, w in pairs:
        kinds = [c.kind for c in w.state.conflicts(memlog.origin)]
        assert kinds == ["split-view"]  # the 422's unverifiable proof is not evidence
        latest = w.state.latest(memlog.origin)
        assert latest is not None and latest.root_hash == memlog.root()


def test_http_status_codes_and_evidence_export(
    tmp_path: Path, memlog: MemoryLog, servers: list[RunningServer]
) -> None:
    config, _ = honest(tmp_path, memlog, "w0.example", servers)
    url = config.url + "/add-checkpoint"
    cp = memlog.checkpoint().to_bytes()
    with httpx.Client() as client:
        ok = client.post(url, content=AddCheckpointRequest(0, (), cp).to_bytes())
        assert ok.status_code == 200
        line = NoteSignature.parse_line(ok.text.rstrip("\n"))
        verify_cosignature(memlog.checkpoint().text, line, config.verifier)
        conflict = client.post(url, content=AddCheckpointRequest(0, (), cp).to_bytes())
        assert conflict.status_code == 409
        assert conflict.headers["content-type"] == "text/x.tlog.size"
        assert conflict.text == "5\n"
        assert client.post(url, content=b"garbage").status_code == 400
        other = MemoryLog("nobody.example", Signer.generate("nobody.example"))
        other.append(b"a")
        req = AddCheckpointRequest(0, (), other.checkpoint().to_bytes()).to_bytes()
        assert client.post(url, content=req).status_code == 404
        impostor = MemoryLog(memlog.origin, Signer.generate(memlog.origin))
        impostor.leaves = list(memlog.leaves)
        req = AddCheckpointRequest(0, (), impostor.checkpoint().to_bytes()).to_bytes()
        assert client.post(url, content=req).status_code == 403
        fork = MemoryLog(memlog.origin, memlog.signer)
        fork.append(*(f"f{i}".encode() for i in range(8)))
        req = AddCheckpointRequest(
            5, tuple(fork.consistency_proof(5, 8)), fork.checkpoint().to_bytes()
        )
        assert client.post(url, content=req.to_bytes()).status_code == 422
        assert client.post(url, content=b"old 0\n\n" + b"x" * (2 << 20)).status_code == 400
        assert client.post(url, content=b"old 0\n\n" + b"x" * (65 << 10)).status_code == 400

        def chunked() -> Iterator[bytes]:  # no Content-Length: the limit still holds
            yield b"old 0\n\n"
            for _ in range(40):
                yield b"x" * 65536

        assert client.post(url, content=chunked()).status_code == 400
        exported = client.get(config.url + "/conflicts").json()
        assert exported == []  # a wrong proof (422) is not evidence
        latest = client.get(config.url + "/checkpoint", params={"origin": memlog.origin})
        assert latest.status_code == 200
        assert len(verify_note_from(latest.content, memlog, config.verifier)) == 2
        assert client.get(config.url + "/checkpoint", params={"origin": "x"}).status_code == 404


def verify_note_from(data: bytes, log: MemoryLog, witness_key: Verifier) -> list[Verifier]:
    from clearance.keys import Note

    return verify_note(Note.from_bytes(data), [log.signer.verifier, witness_key.as_alg(4)])


def test_bad_configuration_is_rejected(memlog: MemoryLog) -> None:
    key = Signer.generate("w").verifier
    one = WitnessConfig("w", "http://127.0.0.1:1", key)
    with pytest.raises(WitnessConfigError):
        collect_cosignatures(memlog.checkpoint(), [one], memlog.consistency_proof, threshold=2)
    with pytest.raises(WitnessConfigError):
        collect_cosignatures(memlog.checkpoint(), [one, one], memlog.consistency_proof, 1)


def test_b64_helper_roundtrip() -> None:
    req = AddCheckpointRequest(3, (bytes(range(32)),), b"cp\n\n")
    assert AddCheckpointRequest.from_bytes(req.to_bytes()) == req
    assert base64.b64encode(bytes(range(32))).decode().encode() in req.to_bytes()

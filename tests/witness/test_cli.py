"""``clearance witness serve`` as a real process on 127.0.0.1, and ``witness conflicts``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from clearance.cli import main
from clearance.keys import (
    NoteSignature,
    Signer,
    generate_key_files,
    load_verifier,
    verify_cosignature,
)
from clearance.witness import AddCheckpointRequest
from witness.helpers import MemoryLog, free_port


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60  # generous: a loaded CI machine starts slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"witness exited: {proc.stderr.read() if proc.stderr else ''!r}")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("witness did not start")


def test_serve_cosigns_then_conflicts_are_exported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, log_pub = generate_key_files("log.example.org", tmp_path / "keys")
    witness_key, witness_pub = generate_key_files("witness.example", tmp_path / "keys")
    log_signer = Signer.parse((tmp_path / "keys" / "log.example.org.key").read_text())
    log = MemoryLog("log.example.org", log_signer)
    log.append(b"a", b"b", b"c")
    port = free_port()
    state = tmp_path / "state"
    cmd = [
        str(Path(sys.executable).with_name("clearance")),
        "witness",
        "serve",
        "--key",
        str(witness_key),
        "--state",
        str(state),
        "--log-key",
        str(log_pub),
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/", proc)
        body = AddCheckpointRequest(0, (), log.checkpoint().to_bytes()).to_bytes()
        r = httpx.post(base + "/add-checkpoint", content=body)
        assert r.status_code == 200
        sig = NoteSignature.parse_line(r.text.rstrip("\n"))
        verify_cosignature(log.checkpoint().text, sig, load_verifier(witness_pub))
        fork = MemoryLog(log.origin, log_signer)
        fork.append(b"x", b"y", b"z")
        bad = AddCheckpointRequest(3, (), fork.checkpoint().to_bytes()).to_bytes()
        assert httpx.post(base + "/add-checkpoint", content=bad).status_code == 409
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert main(["witness", "conflicts", "--state", str(state), "--json"]) == 1
    out = capsys.readouterr().out
    assert '"split-view"' in out and '"size": 3' in out


def test_serve_bad_key_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.key").write_text("not a key\n")
    _, log_pub = generate_key_files("log", tmp_path)
    code = main(
        [
            "witness",
            "serve",
            "--key",
            str(tmp_path / "bad.key"),
            "--state",
            str(tmp_path / "s"),
            "--log-key",
            str(log_pub),
        ]
    )
    assert code == 2
    assert "bad.key" in capsys.readouterr().err


def test_conflicts_without_state_is_exit_2(tmp_path: Path) -> None:
    assert main(["witness", "conflicts", "--state", str(tmp_path)]) == 2


def test_collect_bad_witness_spec_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["witness", "collect", str(tmp_path), "--witness", "just-a-name"])
    assert code == 2
    assert "NAME=URL=KEYFILE" in capsys.readouterr().err


def test_collect_publishes_cosigned_checkpoint_of_a_real_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from clearance.keys import Note, verify_note
    from clearance.log.store import TransparencyLog
    from clearance.witness import LogConfig, Witness, WitnessState
    from clearance.witness.server import create_app
    from witness.helpers import start_server

    log_signer = Signer.generate("log.example.org")
    logdir = tmp_path / "log"
    with TransparencyLog.create(logdir, "log.example.org", log_signer) as log:
        log.append([b"one", b"two", b"three"])
    specs, servers, verifiers = [], [], []
    for i in range(2):
        name = f"w{i}.example"
        key, pub = generate_key_files(name, tmp_path / "keys")
        state = WitnessState.open(tmp_path / f"state{i}")
        w = Witness(
            Signer.parse(key.read_text()),
            [LogConfig("log.example.org", (log_signer.verifier,))],
            state,
        )
        srv = start_server(create_app(w))
        servers.append(srv)
        specs += ["--witness", f"{name}={srv.url}={pub}"]
        verifiers.append(load_verifier(pub).as_alg(4))
    _, dead_pub = generate_key_files("dead.example", tmp_path / "keys")
    specs += ["--witness", f"dead.example=http://127.0.0.1:{free_port()}={dead_pub}"]
    try:
        assert main(["witness", "collect", str(logdir), *specs, "--threshold", "2"]) == 0
        err = capsys.readouterr().err
        assert "dead.example" in err and "unreachable" in err
        published = Note.from_bytes((logdir / "public" / "checkpoint").read_bytes())
        assert len(verify_note(published, [log_signer.verifier, *verifiers])) == 3
        # Grow the log: the witnesses answer 409 with size 3, the collector proves from there.
        with TransparencyLog.open(logdir) as log:
            log.append([b"four"])
        assert main(["witness", "collect", str(logdir), *specs[:4], "--json"]) == 0
        published = Note.from_bytes((logdir / "public" / "checkpoint").read_bytes())
        assert "\n4\n" in published.text
        assert len(verify_note(published, [log_signer.verifier, *verifiers])) == 3
        # Threshold not met because the only witness is unreachable: exit 3 (not 1: nothing
        # refused), checkpoint not republished with fewer signatures.
        with TransparencyLog.open(logdir) as log:
            log.append([b"five"])
        assert main(["witness", "collect", str(logdir), *specs[4:], "--threshold", "1"]) == 3
    finally:
        for s in servers:
            s.stop()

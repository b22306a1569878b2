"""Replicas forward submissions to the leader, the one sequencer (``gateway._forwarding``).

What a hostile network or a forged sequencer could do to a follower's callers is
tried here against real HTTP servers on loopback: a receipt that does not check
is never relayed; a forwarded batch gives nobody a role its own token does not
have; a dead sequencer means the submission is admitted where it arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from _postgres import scratch_database
from clearance.attest import (
    Artifact,
    Envelope,
    Statement,
    Subject,
    create_release,
    create_verdict,
)
from clearance.attest.statement import HEALTH_V1
from clearance.demo.cluster import Replica
from clearance.demo.world import World, build_world
from clearance.gateway._forwarding import (
    FORWARD_PATH,
    MAX_FORWARDED_BODY_BYTES,
    Forwarder,
    ForwardingError,
    ReceiptCheck,
)
from clearance.gateway.config import load_config
from clearance.gateway.errors import GatewayInputError
from clearance.gateway.server import BackgroundServer, RunningGateway
from clearance.keys import Signer
from clearance.log import Checkpoint, merkle, open_checkpoint, sign_checkpoint


def _signed_release(
    world: World, artifact: Artifact, channel: str, version: str = "1.0.0"
) -> Envelope:
    return create_release(
        product=world.product,
        version=version,
        channel=channel,
        artifacts=[artifact],
        signers=world.vendor,
    )


def _release(world: World, artifact: Artifact, channel: str, version: str = "1.0.0") -> bytes:
    return _signed_release(world, artifact, channel, version).to_bytes()


@pytest.fixture
def artifact(tmp_path: Path) -> Artifact:
    path = tmp_path / "rules.yar"
    path.write_bytes(b"rule r { condition: false }\n")
    return Artifact.from_file(path, "content", name="rules.yar")


# -- the sequencer's answers are checked before they are relayed ------------------------------


class _ForgingSequencer:
    """An ASGI app answering every forwarded submission with ``receipt_for(envelope)``."""

    def __init__(self, receipt_for: Any, status: int = 201) -> None:
        self.receipt_for = receipt_for
        self.status = status
        self.calls = 0
        self.body_sizes: list[int] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.calls += 1
        self.body_sizes.append(len(body))
        items = json.loads(body)["submissions"]
        answer = {
            "results": [
                {"status": self.status, "answer": self.receipt_for(item["envelope"].encode())}
                for item in items
            ]
        }
        data = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})


def _receipt(
    signer: Signer, entries: list[bytes], index: int, origin: str = "clearance.example/log"
) -> dict[str, Any]:
    """A real receipt for ``entries[index]`` in a log of ``entries`` signed by ``signer``."""
    leaves = [merkle.leaf_hash(e) for e in entries]
    root = merkle.root_from_leaf_hashes(leaves)
    proof = merkle.inclusion_proof(
        index,
        len(entries),
        lambda level, n: merkle.root_from_leaf_hashes(leaves[n << level : (n + 1) << level]),
    )
    note = sign_checkpoint(Checkpoint(origin, len(entries), root), signer).to_bytes()
    return {
        "kind": "release",
        "log_index": index,
        "sha256": hashlib.sha256(entries[index]).hexdigest(),
        "tree_size": len(entries),
        "checkpoint": note.decode(),
        "inclusion_proof": [h.hex() for h in proof],
        "duplicate": False,
    }


def _forward_to(app: Any, check: ReceiptCheck, envelope: bytes) -> tuple[int, dict[str, Any]]:
    server = BackgroundServer(app)
    try:

        async def go() -> tuple[int, dict[str, Any]]:
            forwarder = Forwarder(check, timeout=5.0)
            try:
                return await forwarder.forward(server.url, envelope, "token")
            finally:
                await forwarder.aclose()

        return asyncio.run(go())
    finally:
        server.stop()


def test_a_receipt_that_checks_is_relayed(tmp_path: Path, artifact: Artifact) -> None:
    world = build_world(tmp_path, embedded_inspector=False, workers=0)
    envelope = _release(world, artifact, "stable")
    other = _release(world, artifact, "beta")
    sequencer = _ForgingSequencer(lambda env: _receipt(world.log, [other, env], 1))
    check = ReceiptCheck(world.log.verifier, world.origin)
    status, answer = _forward_to(sequencer, check, envelope)
    assert status == 201 and answer["log_index"] == 1 and sequencer.calls == 1


def test_attack_a_receipt_signed_by_another_key_is_not_relayed(
    tmp_path: Path, artifact: Artifact
) -> None:
    """A hostile network between replicas answers in the sequencer's place."""
    world = build_world(tmp_path, embedded_inspector=False, workers=0)
    envelope = _release(world, artifact, "stable")
    impostor = Signer.generate(world.log.name)  # the log key's name, not its key
    sequencer = _ForgingSequencer(lambda env: _receipt(impostor, [env], 0))
    check = ReceiptCheck(world.log.verifier, world.origin)
    with pytest.raises(ForwardingError, match="receipt does not check"):
        _forward_to(sequencer, check, envelope)


def test_attack_a_receipt_for_another_entry_is_not_relayed(
    tmp_path: Path, artifact: Artifact
) -> None:
    """A sequencer answering with a real receipt of something else (say, an entry it
    logged instead of the caller's)."""
    world = build_world(tmp_path, embedded_inspector=False, workers=0)
    envelope = _release(world, artifact, "stable")
    substitute = _release(world, artifact, "stable", "6.6.6")
    sequencer = _ForgingSequencer(lambda env: _receipt(world.log, [env, substitute], 1))
    check = ReceiptCheck(world.log.verifier, world.origin)
    with pytest.raises(ForwardingError, match="inclusion proof"):
        _forward_to(sequencer, check, envelope)


def test_attack_a_receipt_whose_tree_size_is_not_its_checkpoints_is_not_relayed(
    tmp_path: Path, artifact: Artifact
) -> None:
    world = build_world(tmp_path, embedded_inspector=False, workers=0)
    envelope = _release(world, artifact, "stable")

    def lying(env: bytes) -> dict[str, Any]:
        receipt = _receipt(world.log, [env], 0)
        receipt["tree_size"] = 2
        return receipt

    check = ReceiptCheck(world.log.verifier, world.origin)
    with pytest.raises(ForwardingError, match="tree size 2"):
        _forward_to(_ForgingSequencer(lying), check, envelope)


def test_attack_a_success_without_a_receipt_is_not_relayed(
    tmp_path: Path, artifact: Artifact
) -> None:
    """A release "accepted" with no proof: only a health report's answer has none."""
    world = build_world(tmp_path, embedded_inspector=False, workers=0)
    check = ReceiptCheck(world.log.verifier, world.origin)
    sequencer = _ForgingSequencer(lambda env: {"kind": "release", "log_index": 0})
    with pytest.raises(ForwardingError, match="a success without a receipt"):
        _forward_to(sequencer, check, _release(world, artifact, "stable"))
    health = Statement(
        (Subject("release", "ab" * 32),),
        HEALTH_V1,
        {"release": "ab" * 32, "customer": "site-1", "status": "ok", "nonce": "1"},
    ).sign([world.client])
    rollout = {"kind": "health", "log_index": 3, "rollout": None}
    status, answer = _forward_to(_ForgingSequencer(lambda env: rollout), check, health.to_bytes())
    assert (status, answer) == (201, rollout)


def test_a_sequencer_that_cannot_be_reached_fails_fast(tmp_path: Path, artifact: Artifact) -> None:
    world = build_world(tmp_path, embedded_inspector=False, workers=0)
    server = BackgroundServer(_ForgingSequencer(lambda env: {}))
    url = server.url
    server.stop()  # nothing listens there any more

    async def go() -> None:
        forwarder = Forwarder(ReceiptCheck(world.log.verifier, world.origin), timeout=5.0)
        try:
            await forwarder.forward(url, _release(world, artifact, "stable"), None)
        finally:
            await forwarder.aclose()

    started = time.monotonic()
    with pytest.raises(ForwardingError, match=r"forwarding to .* failed"):
        asyncio.run(go())
    assert time.monotonic() - started < 5


def test_attack_long_tokens_and_escaped_envelopes_do_not_push_a_batch_past_the_leaders_limit(
    tmp_path: Path,
) -> None:
    """A caller controls its token and its envelope: tokens of kilobytes, and envelopes of
    the characters JSON escapes, still make forwarded requests the leader reads whole,
    and every submission is answered once, with its own answer."""
    world = build_world(tmp_path, embedded_inspector=False, workers=0)
    sequencer = _ForgingSequencer(lambda envelope: {"detail": envelope.decode()}, status=409)
    server = BackgroundServer(sequencer)
    escaped = '{"a":"' + "\\\\" * 900 + '\\"' * 300 + "\u20ac\U0001f642" * 50 + '"}' + "\n" * 200
    submissions = [(f"{n}{escaped}".encode(), '"' * 4000 + str(n)) for n in range(2500)]

    async def go() -> list[tuple[int, dict[str, Any]]]:
        forwarder = Forwarder(ReceiptCheck(world.log.verifier, world.origin), timeout=30.0)
        try:
            return await asyncio.gather(
                *(forwarder.forward(server.url, e, t) for e, t in submissions)
            )
        finally:
            await forwarder.aclose()

    try:
        answers = asyncio.run(go())
    finally:
        server.stop()
    assert [a["detail"].encode() for _, a in answers] == [e for e, _ in submissions]
    assert max(sequencer.body_sizes) <= MAX_FORWARDED_BODY_BYTES
    assert sequencer.calls == len(sequencer.body_sizes) >= 4


# -- the sequencer's endpoint judges each forwarded submission by its own token ----------------


def test_attack_a_forwarded_batch_gives_no_submission_a_role_its_token_lacks(
    tmp_path: Path, artifact: Artifact
) -> None:
    world = build_world(tmp_path, embedded_inspector=False, workers=0)
    first = _signed_release(world, artifact, "stable")
    verdict = create_verdict(first, "approved", signers=world.inspector).to_bytes()
    items = [
        (first.to_bytes(), world.token("vendor")),  # logged
        (_release(world, artifact, "beta"), None),  # no token: 401
        (_release(world, artifact, "edge"), world.token("client")),  # a client's: 403
        (verdict, world.token("vendor")),  # a verdict under a vendor's token: 403
        (_release(world, artifact, "nightly"), "not-a-token"),  # 403
    ]
    body = {"submissions": [{"envelope": e.decode(), "token": t} for e, t in items]}
    with RunningGateway(world.data_dir, workers=0) as running:
        size = running.gateway.log.size
        answer = httpx.post(running.url + FORWARD_PATH, json=body, timeout=30)
        assert answer.status_code == 200
        results = answer.json()["results"]
        assert [r["status"] for r in results] == [201, 401, 403, 403, 403]
        assert results[0]["answer"]["log_index"] == size
        assert running.gateway.log.size == size + 1  # the others were logged nowhere


def test_a_malformed_forwarded_batch_is_refused_by_name(tmp_path: Path) -> None:
    world = build_world(tmp_path, embedded_inspector=False, workers=0)
    with RunningGateway(world.data_dir, workers=0) as running:
        for body, problem in (
            (b"not json", "not JSON"),
            (b'{"submissions": []}', "list of 1 to"),
            (b'{"submissions": [{"envelope": 7}]}', "envelope string"),
            (b'{"other": 1}', "not a batch of submissions"),
        ):
            answer = httpx.post(running.url + FORWARD_PATH, content=body, timeout=30)
            assert answer.status_code == 400
            assert "forwarded submissions" in answer.json()["detail"]
            assert problem in answer.json()["detail"]


# -- replicas over PostgreSQL --------------------------------------------------------------------


@pytest.fixture
def cluster_world(tmp_path: Path) -> Iterator[tuple[World, str]]:
    with scratch_database() as dsn:
        world = build_world(tmp_path, database=dsn, embedded_inspector=False, workers=0)
        yield world, dsn


def _sequencer_pid(dsn: str, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT holder FROM clr_gw_sequencer WHERE id = 1").fetchone()
        if row is not None:
            time.sleep(1.0)  # every follower polls the address every 0.5 s
            return int(str(row[0]).rsplit("/", 1)[1])
        time.sleep(0.1)
    raise AssertionError("no leader advertised its address")


def _integrator_pids(dsn: str, since_size: int) -> set[int]:
    """The replicas that signed the checkpoints after ``since_size``, when that is one: the
    lease's token changes whenever the lease changes hands, so checkpoints all under the
    current holder's token were all signed by it."""
    with psycopg.connect(dsn) as conn:
        holder = conn.execute("SELECT holder, token FROM clr_log_lease WHERE id = 1").fetchone()
        tokens = conn.execute(
            "SELECT DISTINCT token FROM clr_log_checkpoints WHERE size > %s", (since_size,)
        ).fetchall()
    assert holder is not None
    assert {int(t[0]) for t in tokens} == {int(holder[1])}, "the lease changed hands"
    return {int(str(holder[0]).rsplit("/", 1)[1])}


def _submit(url: str, world: World, envelope: bytes) -> dict[str, Any]:
    answer = httpx.post(
        url + "/api/v1/submissions",
        content=envelope,
        headers={"Authorization": f"Bearer {world.token('vendor')}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _verify(world: World, envelope: bytes, receipt: dict[str, Any]) -> None:
    cp, _ = open_checkpoint(receipt["checkpoint"].encode(), world.log.verifier, world.origin)
    proof = [bytes.fromhex(h) for h in receipt["inclusion_proof"]]
    merkle.verify_inclusion(
        receipt["log_index"], cp.size, merkle.leaf_hash(envelope), proof, cp.root_hash
    )


@contextlib.contextmanager
def _leader_and_follower(world: World, dsn: str) -> Iterator[tuple[Replica, Replica]]:
    """Two replicas, once the leader advertised itself; both killed afterwards."""
    replicas = Replica.start_many(world.data_dir, 2)
    try:
        leader_pid = _sequencer_pid(dsn)
        leader = next(r for r in replicas if r.pid == leader_pid)
        yield leader, next(r for r in replicas if r is not leader)
    finally:
        for r in replicas:
            r.kill()


@pytest.mark.postgres
def test_a_follower_forwards_to_the_leader_which_alone_integrates(
    cluster_world: tuple[World, str], artifact: Artifact
) -> None:
    world, dsn = cluster_world
    with _leader_and_follower(world, dsn) as (leader, follower):
        before = httpx.get(follower.url + "/log/checkpoint", timeout=10).text
        size_before = int(before.splitlines()[1])
        for n in range(5):
            envelope = _release(world, artifact, f"ch{n}")
            receipt = _submit(follower.url, world, envelope)
            _verify(world, envelope, receipt)
        assert _integrator_pids(dsn, size_before) == {leader.pid}


@pytest.mark.postgres
def test_kill_9_of_the_sequencer_leaves_the_follower_admitting_at_once(
    cluster_world: tuple[World, str], artifact: Artifact
) -> None:
    world, dsn = cluster_world
    with _leader_and_follower(world, dsn) as (leader, follower):
        leader.kill()
        started = time.monotonic()
        envelope = _release(world, artifact, "after-the-kill")
        receipt = _submit(follower.url, world, envelope)  # the address is stale for a while
        assert time.monotonic() - started < 5
        _verify(world, envelope, receipt)
        assert _integrator_pids(dsn, receipt["log_index"]) == {follower.pid}


@pytest.mark.postgres
def test_sigterm_of_the_leader_closes_it_and_withdraws_its_address(
    cluster_world: tuple[World, str],
) -> None:
    """A service manager stops a replica with SIGTERM: the gateway is closed as on Ctrl-C,
    so the leader gives up its address at once and the followers stop forwarding to it."""
    world, dsn = cluster_world
    (replica,) = Replica.start_many(world.data_dir, 1)
    try:
        assert _sequencer_pid(dsn) == replica.pid
        replica.process.send_signal(signal.SIGTERM)
        assert replica.process.wait(timeout=30) == -signal.SIGTERM  # still ends as terminated
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT holder FROM clr_gw_sequencer WHERE id = 1").fetchone()
        assert row is None, f"the stopped leader's address is still advertised: {row}"
    finally:
        replica.kill()


@pytest.mark.postgres
def test_without_forwarding_each_replica_integrates_its_own(
    cluster_world: tuple[World, str], artifact: Artifact
) -> None:
    world, dsn = cluster_world
    config = world.data_dir / "gateway.json"
    data = json.loads(config.read_text())
    data["forward_to_leader"] = False
    config.write_text(json.dumps(data))
    with _leader_and_follower(world, dsn) as (_, follower):
        envelope = _release(world, artifact, "own")
        receipt = _submit(follower.url, world, envelope)
        _verify(world, envelope, receipt)
        assert _integrator_pids(dsn, receipt["log_index"]) == {follower.pid}


def test_forward_to_leader_that_is_not_a_boolean_is_refused_by_name(tmp_path: Path) -> None:
    world = build_world(tmp_path, embedded_inspector=False, workers=0)
    path = world.data_dir / "gateway.json"
    data = json.loads(path.read_text())
    assert data["forward_to_leader"] is True  # written by gateway init, on by default
    data["forward_to_leader"] = "no"
    path.write_text(json.dumps(data))
    with pytest.raises(GatewayInputError, match="'forward_to_leader' must be true or false"):
        load_config(world.data_dir)

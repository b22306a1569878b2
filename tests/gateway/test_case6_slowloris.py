"""Issue 12, case 6: partial requests and trickling connections are closed, and one client
cannot hold more than its share of connections (a bounded slowloris on loopback)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from clearance._serving import ServerLimits
from clearance.demo.world import build_world
from clearance.gateway import server as gateway_server
from clearance.gateway.server import RunningGateway
from gateway.support import FAST_RINGS

LIMITS = ServerLimits(
    header_timeout=1.0, tick=0.25, min_body_rate=2048, keep_alive=1, per_client_connections=12
)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setblocking(False)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 503")


@pytest.fixture
def gateway(tmp_path: Path) -> Any:
    world = build_world(tmp_path / "world", rings=FAST_RINGS, embedded_inspector=False)
    running = RunningGateway(world.data_dir, workers=0, limits=LIMITS)
    yield running
    running.stop()


def test_case6_slowloris_partial_and_trickling_requests_are_closed(gateway: Any) -> None:
    port = gateway.port
    heads = [_connect(port) for _ in range(5)]
    for sock in heads:
        sock.send(b"GET /trust-root.json HTTP/1.1\r\nHost: x\r\n")  # never finished
    bodies = [_connect(port) for _ in range(5)]
    for sock in bodies:
        sock.send(b"POST /api/v1/submissions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
    silent = _connect(port)  # connects and says nothing
    sockets = [*heads, *bodies, silent]
    deadline = time.monotonic() + 6.0  # bound: header_timeout + a few ticks
    open_ = set(range(len(sockets)))
    while open_ and time.monotonic() < deadline:
        for i in list(open_):
            sock = sockets[i]
            if _closed_by_server(sock):
                open_.discard(i)
                continue
            try:  # keep trickling: one header byte / a few body bytes a tick
                sock.send(b"X" if sock in heads else b"0123")
            except OSError:
                open_.discard(i)
        time.sleep(0.1)
    assert not open_, f"{len(open_)} of {len(sockets)} slow connections still open"
    for sock in sockets:
        sock.close()
    # The server still serves well-behaved clients.
    assert httpx.get(f"{gateway.url}/trust-root.json", timeout=5).status_code == 200


def test_case6_one_client_cannot_hold_every_connection(gateway: Any) -> None:
    held = [_connect(gateway.port) for _ in range(LIMITS.per_client_connections)]
    time.sleep(0.2)
    extra = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
    extra.settimeout(5)
    assert extra.recv(1024).startswith(b"HTTP/1.1 503")
    extra.close()
    for sock in held:
        sock.close()
    time.sleep(0.3)  # the server sees them go, and frees the client's share
    assert httpx.get(f"{gateway.url}/trust-root.json", timeout=5).status_code == 200


def test_case6_clearance_serve_runs_under_the_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``clearance serve`` builds its uvicorn server with the guarded protocol and timeouts."""
    world = build_world(tmp_path / "world", rings=FAST_RINGS, embedded_inspector=False)
    seen: list[uvicorn.Config] = []

    def run(self: uvicorn.Server, *args: object, **kwargs: object) -> None:
        seen.append(self.config)

    monkeypatch.setattr(uvicorn.Server, "run", run)
    # The freeze of the replica's heap is tests/test_heap.py's: the test process keeps its own.
    monkeypatch.setattr(gateway_server, "freeze_long_lived", lambda: 0)
    gateway_server.serve(world.data_dir, "127.0.0.1", 0)
    (config,) = seen
    assert isinstance(config.http, type)
    assert config.http.__name__ in ("GuardedHttpToolsProtocol", "GuardedH11Protocol")
    assert config.timeout_keep_alive <= 5 and config.limit_concurrency is not None
    assert config.h11_max_incomplete_event_size is not None


def test_case6_an_oversized_request_head_is_refused(gateway: Any) -> None:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
    head = b"GET /trust-root.json HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 8192 + b"\r\n"
    try:
        for _ in range(LIMITS.max_header_bytes // 8192 + 2):  # never ends the head
            sock.sendall(head[-8200:])
    except OSError:
        pass  # closed while sending: refused
    answer = b""
    try:
        while chunk := sock.recv(4096):
            answer += chunk
    except OSError:
        pass
    sock.close()
    # Refused with an answer (h11 says 400), not merely timed out.
    assert answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")), answer[:40]
    assert httpx.get(f"{gateway.url}/trust-root.json", timeout=5).status_code == 200

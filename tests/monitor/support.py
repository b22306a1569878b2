"""Helpers for monitor tests: a monitor over a World's log, a clock the test moves, a
loopback webhook receiver and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from audit.helpers import World
from clearance.log.tiles import DirectoryTileSource
from clearance.monitor import Monitor, MonitorConfig, MonitorOptions, Sink


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, hours: float) -> None:
        self.now += hours * 3600


def monitor_for(
    world: World,
    state: Path,
    config: MonitorConfig | None = None,
    sinks: list[Sink] | None = None,
    clock: Clock | None = None,
) -> Monitor:
    return Monitor(
        MonitorOptions(
            trust_root=world.trust_root(),
            source=DirectoryTileSource(world.logdir / "public"),
            state_dir=state,
            config=config or MonitorConfig(),
            sinks=sinks or [],
            clock=clock or Clock(),
        )
    )


def ids(alerts: Any) -> list[str]:
    return sorted(a.rule_id for a in alerts)


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 (OS-chosen port) that records every POST; the first
    ``fail`` requests get HTTP 503."""

    fail: int = 0
    received: list[Received] = field(default_factory=list)
    url: str = ""

    @contextmanager
    def running(self) -> Iterator[WebhookReceiver]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail > 0:
                    receiver.fail -= 1
                    self.send_response(503)
                else:
                    receiver.received.append(Received(body, dict(self.headers.items())))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()

    def alerts(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.received]


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[tuple[int, list[Message]]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1; yields its port and the messages."""
    box = _Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield controller.port, box.messages
    finally:
        controller.stop()


def policy_body(jurisdictions: dict[str, str]) -> dict[str, Any]:
    return {
        "name": "ban-2026",
        "issued": "2026-11-01T00:00:00Z",
        "products": {"agent": "security-software"},
        "jurisdictions": [
            {"jurisdiction": j, "no_updates_after": cutoff} for j, cutoff in jurisdictions.items()
        ],
    }


def rollout(event: str, release: str, ring: str = "canary") -> bytes:
    return json.dumps(
        {
            "_type": "https://clearance.dev/rollout-transition/v1",
            "release": release,
            "event": event,
            "ring": ring,
            "at": "2026-11-22T00:00:00Z",
            "reason": "test",
            "evidence": {},
        },
        sort_keys=True,
    ).encode()

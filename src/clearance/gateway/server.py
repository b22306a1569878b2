"""Running the gateway: one uvicorn process with in-process inspection workers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from clearance._heap import freeze_long_lived
from clearance._serving import DEFAULT_LIMITS, ServerLimits, uvicorn_config
from clearance._signals import sigterm_unwinds
from clearance.gateway.app import create_asgi
from clearance.gateway.errors import GatewayInputError
from clearance.gateway.service import Gateway


class BackgroundServer:
    """Any ASGI app served by uvicorn in a thread of this process, on 127.0.0.1 by default."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: ServerLimits = DEFAULT_LIMITS,
    ) -> None:
        self._server = uvicorn.Server(uvicorn_config(app, host, port, limits))
        self._thread = threading.Thread(target=self._server.run, name="uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"could not listen on {host}:{port}")
            time.sleep(0.02)
        self.host = host
        self.port = int(self._server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class RunningGateway:
    """A gateway with its workers, served in a background thread (the demo and tests)."""

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        workers: int | None = None,
        limits: ServerLimits = DEFAULT_LIMITS,
    ) -> None:
        self.gateway = Gateway.open(data_dir)
        try:
            self.gateway.start_background(workers=workers)
            self._server = BackgroundServer(create_asgi(self.gateway), host, port, limits)
        except BaseException:
            self.gateway.close()
            raise
        self.host = host
        self.port = self._server.port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self._server.stop()
        self.gateway.close()

    def __enter__(self) -> RunningGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    on_listening: Callable[[str], None] | None = None,
    advertise: str | None = None,
) -> None:
    """Serve until interrupted (``clearance serve``); ``on_listening`` gets the bound URL.

    ``advertise``: where the other replicas reach this one (by default
    ``http://HOST:PORT``, unless HOST is a wildcard address, which names no host).

    The socket is bound before the app starts, so ``port=0`` lets the OS choose
    and the caller learns the real port (replicas started by scripts and tests).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise GatewayInputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)  # connections wait in the backlog until the app is up, never refused
    bound = sock.getsockname()[1]
    # SIGTERM (a service manager's stop) closes the gateway too, as Ctrl-C does.
    with sigterm_unwinds():
        gateway = Gateway.open(data_dir)
        try:
            if advertise is None and host not in ("0.0.0.0", "::", ""):  # noqa: S104
                advertise = f"http://{'[' + host + ']' if ':' in host else host}:{bound}"
            if advertise is not None:
                gateway.advertise(advertise)
            gateway.start_background()
            # The replayed log lives as long as the process: no full collection visits it.
            freeze_long_lived()
            # Read, keep-alive and per-client limits: see clearance._serving.
            server = uvicorn.Server(uvicorn_config(create_asgi(gateway), host, bound))
            if on_listening is not None:
                on_listening(f"http://{host}:{bound}")
            server.run(sockets=[sock])
        finally:
            gateway.close()
            sock.close()

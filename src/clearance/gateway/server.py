"""Running the gateway: one uvicorn process with in-process inspection workers."""

from __future__ import annotations

import threading
from pathlib import Path

import uvicorn

from clearance.gateway.app import create_app
from clearance.gateway.service import Gateway


class RunningGateway:
    """A gateway served by uvicorn in a background thread (the demo and tests use this)."""

    def __init__(
        self, data_dir: Path, host: str = "127.0.0.1", port: int = 0, *, workers: int | None = None
    ) -> None:
        self.gateway = Gateway(data_dir)
        self.gateway.start_background(workers=workers)
        config = uvicorn.Config(
            create_app(self.gateway), host=host, port=port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="uvicorn", daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                self.gateway.close()
                raise OSError(f"the gateway could not listen on {host}:{port}")
            threading.Event().wait(0.02)
        sockets = self._server.servers[0].sockets
        self.host = host
        self.port = int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.gateway.close()

    def __enter__(self) -> RunningGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(data_dir: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until interrupted (``clearance serve``)."""
    gateway = Gateway(data_dir)
    try:
        gateway.start_background()
        uvicorn.run(
            create_app(gateway), host=host, port=port, log_level="warning", access_log=False
        )
    finally:
        gateway.close()

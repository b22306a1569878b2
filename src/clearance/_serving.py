"""Resource limits for Clearance's HTTP servers (the gateway and the witness).

uvicorn alone closes idle keep-alive connections but never a connection
that trickles a request: a client sending one header byte every few seconds
(slowloris) holds a socket for ever, and one host may open thousands.  The
protocol class built by :func:`guarded_protocol` adds, per connection:

- a deadline for the request head: the headers must be complete within
  :attr:`ServerLimits.header_timeout` seconds of the connection opening or of
  the previous response ending;
- a minimum body rate: while the application waits for more body, at least
  :attr:`ServerLimits.min_body_rate` bytes a second must arrive, measured
  over every :attr:`ServerLimits.tick` seconds;
- a per-client connection limit (by peer address): connection number
  :attr:`ServerLimits.per_client_connections` + 1 gets ``503`` and is closed;
- a request head of at most :attr:`ServerLimits.max_header_bytes` (``431``
  and closed beyond).

The protocol is uvicorn's httptools one (the C parser, llhttp) when httptools
is installed, as it is with the declared dependencies: the pure-Python h11
parser costs more CPU per request than the gateway's own work on a tile
read.  h11 remains the fallback.  :func:`uvicorn_config` also sets uvicorn's
own keep-alive timeout, the header size limit and the overall connection
limit, and lets uvicorn pick uvloop when it is installed.  :class:`RateLimiter` is a
per-client token bucket for endpoints that do work per request.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

try:  # the C parser; see the module documentation
    import httptools  # noqa: F401  (uvicorn's module imports even without it)
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    _HTTPTOOLS: type[asyncio.Protocol] | None = HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is a declared dependency
    _HTTPTOOLS = None


@dataclass(frozen=True)
class ServerLimits:
    """Per-connection and per-client limits of one server."""

    #: Seconds to receive a complete request head.
    header_timeout: float = 10.0
    #: Bytes a second a request body must arrive at, at least (measured every ``tick``).
    min_body_rate: int = 1024
    #: Seconds between checks of a connection.
    tick: float = 5.0
    #: Seconds an idle keep-alive connection stays open.
    keep_alive: float = 5.0
    #: Open connections from one peer address.
    per_client_connections: int = 256
    #: Open connections in all (uvicorn answers 503 beyond).
    max_connections: int = 2048
    #: Bytes of a request head.
    max_header_bytes: int = 32 * 1024


DEFAULT_LIMITS = ServerLimits()

_HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
    b"content-length: 26\r\nconnection: close\r\n\r\nrequest head is too large\n"
)

_BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
    b"content-length: 38\r\nconnection: close\r\n\r\ntoo many connections from this client\r\n"
)


class _ClientTable:
    """Open connections per peer address (one table per server, used on its event loop)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._open: dict[str, int] = {}

    def admit(self, host: str) -> bool:
        count = self._open.get(host, 0)
        if count >= self._limit:
            return False
        self._open[host] = count + 1
        return True

    def release(self, host: str) -> None:
        count = self._open.get(host, 0) - 1
        if count > 0:
            self._open[host] = count
        else:
            self._open.pop(host, None)


def guarded_protocol(
    limits: ServerLimits = DEFAULT_LIMITS, *, parser: str = "auto"
) -> type[asyncio.Protocol]:
    """A protocol class enforcing ``limits`` (one class, one client table, per server).

    ``parser``: ``"httptools"``, ``"h11"`` or ``"auto"`` (httptools when installed).
    """
    table = _ClientTable(limits.per_client_connections)
    base: Any
    if parser == "h11" or (parser == "auto" and _HTTPTOOLS is None):
        base = H11Protocol
    elif _HTTPTOOLS is None:
        raise ImportError("httptools is not installed")
    else:
        base = _HTTPTOOLS

    class Guarded(base):  # type: ignore[misc]
        _host: str | None = None
        _timer: asyncio.TimerHandle | None = None
        _phase_start = 0.0
        _received = 0
        _received_at_tick = 0
        # Bytes received since the last request head was complete (httptools only: h11
        # enforces the head limit itself).
        _head_bytes = 0

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            host = self.client[0] if self.client else "unknown"
            if not table.admit(host):
                transport.write(_BUSY_RESPONSE)
                transport.close()
                return
            self._host = host
            self._phase_start = self.loop.time()
            self._timer = self.loop.call_later(limits.tick, self._check)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._host is not None:
                table.release(self._host)
                self._host = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            self._received += len(data)
            if base is not H11Protocol:
                self._head_bytes += len(data)
            super().data_received(data)
            if self._head_bytes > limits.max_header_bytes and not self.transport.is_closing():
                self.transport.write(_HEAD_TOO_LARGE)
                self._drop()

        def on_headers_complete(self) -> None:
            self._head_bytes = 0  # what follows in this read is body, not head
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._head_bytes = 0
            # Bytes of the next pipelined request's head still count from here.

        def on_body(self, body: bytes) -> None:
            super().on_body(body)
            self._head_bytes = 0

        def on_response_complete(self) -> None:
            self._phase_start = self.loop.time()
            super().on_response_complete()

        def _check(self) -> None:
            self._timer = None
            if self.transport.is_closing():
                return
            now = self.loop.time()
            arrived = self._received - self._received_at_tick
            self._received_at_tick = self._received
            cycle = self.cycle
            if cycle is None or cycle.response_complete:
                # Waiting for a request head (a new connection or after a response).
                if now - self._phase_start > limits.header_timeout:
                    self._drop()
                    return
            elif (
                cycle.more_body
                and not self.flow.read_paused
                and not cycle.response_started
                and arrived < limits.min_body_rate * limits.tick
            ):
                # The application waits for body bytes and they do not keep coming.
                self._drop()
                return
            self._timer = self.loop.call_later(limits.tick, self._check)

        def _drop(self) -> None:
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.disconnected = True
            self.transport.close()

    Guarded.__name__ = Guarded.__qualname__ = (
        "GuardedH11Protocol" if base is H11Protocol else "GuardedHttpToolsProtocol"
    )
    return Guarded


def uvicorn_config(
    app: Any, host: str, port: int, limits: ServerLimits = DEFAULT_LIMITS
) -> uvicorn.Config:
    """A uvicorn configuration serving ``app`` under ``limits``."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        http=guarded_protocol(limits),
        timeout_keep_alive=int(max(1, limits.keep_alive)),
        limit_concurrency=limits.max_connections,
        h11_max_incomplete_event_size=limits.max_header_bytes,
    )


class RateLimiter:
    """A token bucket per client: ``rate`` requests a second, bursts of ``burst``.

    At most ``max_clients`` buckets are kept (least recently used dropped), so
    a flood of addresses cannot grow it without bound.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, client: str) -> bool:
        """Take one token for ``client``; False when it has none left."""
        now = self._clock()
        tokens, last = self._buckets.pop(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return allowed

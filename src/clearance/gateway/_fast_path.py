"""The gateway's ASGI front: the hot paths answered without the framework.

GETs of log tiles, the checkpoint and TUF metadata are served straight from disk (or,
with a PostgreSQL log, from the database), immutable files from a bounded memory
cache; signed submissions (``POST /api/v1/submissions``) go straight to
``Gateway.submit``.  Everything else, misses included, goes to the FastAPI app of
:mod:`clearance.gateway.app`, which also documents these paths; both answer with the
same statuses (:func:`status_of`) and cache headers.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from clearance.errors import BadInput, ClearanceError, Refused
from clearance.gateway._forwarding import (
    FORWARD_PATH,
    MAX_FORWARDED_BODY_BYTES,
    Forwarder,
    ForwardingError,
    forwarded_items,
)
from clearance.gateway.errors import (
    GatewayInputError,
    GatewayNotFoundError,
    GatewayRefused,
    GatewayUnavailableError,
)
from clearance.log.tiles import MAX_ENTRY_SIZE, TILE_WIDTH

if TYPE_CHECKING:
    from clearance.gateway.service import Gateway

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=5, must-revalidate"
NO_CACHE = "no-cache"

#: Made once: ``json.dumps`` with options builds an encoder at every call (per answer).
_ANSWER = json.JSONEncoder(separators=(",", ":"))

TILE_PATH = re.compile(r"^tile/(?:\d+|entries)/(?:x\d{3}/)*\d{3}(?:\.p/\d+)?$")


class PayloadTooLargeError(GatewayInputError):
    pass


def status_of(exc: ClearanceError, has_token: bool) -> int:
    """The HTTP status of a refusal (the same for the fast path and the framework)."""
    if isinstance(exc, PayloadTooLargeError):
        return 413
    if isinstance(exc, GatewayNotFoundError):
        return 404
    if isinstance(exc, GatewayRefused) and "token" in str(exc):
        return 403 if has_token else 401
    if isinstance(exc, Refused):
        return 403
    if isinstance(exc, BadInput):
        return 400
    if isinstance(exc, GatewayUnavailableError):
        return 503
    return 500


def bearer_token(header: str) -> str | None:
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


#: The largest immutable file a replica serves: a full entry bundle of entries of the
#: largest size (256 x (2 + 65,535) bytes, about 16 MiB).
LARGEST_IMMUTABLE = TILE_WIDTH * (2 + MAX_ENTRY_SIZE)


async def read_body(
    scope: Any, receive: Any, limit: int, what: str = "envelope"
) -> bytes | None:
    """The request's body, refused beyond ``limit`` bytes (as ``what``); None when the client
    left.  The app's routes read their bodies through it too (``app._read_limited``)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise PayloadTooLargeError(f"{what} is {value.decode()} bytes, the limit is {limit}")
    chunks: list[bytes] = []
    total, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise PayloadTooLargeError(f"{what} is larger than the limit of {limit} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _send_json(send: Any, status: int, answer: Any) -> None:
    body = _ANSWER.encode(answer).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ImmutableCache:
    """Bytes of files that never change once written, up to ``limit`` bytes in total (the
    least recently read dropped first); a file larger than ``item_limit`` is not kept."""

    def __init__(self, limit: int = 256 << 20, item_limit: int = LARGEST_IMMUTABLE) -> None:
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._limit = limit
        # Every file of the log, the largest entry bundles included: one left out is read
        # from the database (megabytes, decompressed) at every request for it.
        self._item_limit = min(item_limit, limit)

    def get(self, key: str) -> bytes | None:
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    def put(self, key: str, data: bytes) -> None:
        if key in self._items or len(data) > self._item_limit:
            return
        self._items[key] = data
        self._size += len(data)
        while self._size > self._limit:
            _, dropped = self._items.popitem(last=False)
            self._size -= len(dropped)


class StaticFastPath:
    """ASGI front of the gateway: GETs of log tiles, the checkpoint and TUF metadata are
    answered straight from disk (and memory, for immutable files) without the framework's
    routing, and so are signed submissions (``POST /api/v1/submissions``, the hot write);
    everything else, including misses, goes to the FastAPI app, which also documents
    these paths in the OpenAPI description."""

    def __init__(self, app: FastAPI, gateway: Gateway) -> None:
        self.app = app
        self._gateway = gateway
        self._from_database = not gateway.log.publishes_files
        self._log = gateway.log.public_dir
        self._tuf = gateway.tuf.metadata_dir
        self._cache = ImmutableCache()
        self._forwarder: Forwarder | None = None  # made on the event loop, at first use

    def _lookup(self, path: str) -> tuple[bytes, bytes, bytes] | None:
        if path == "/log/checkpoint":
            file, media, cache = self._log / "checkpoint", b"text/plain; charset=utf-8", SHORT
        elif path.startswith("/log/") and TILE_PATH.match(path[5:]):
            file, media = self._log / path[5:], b"application/octet-stream"
            cache = SHORT if ".p/" in path else IMMUTABLE
        elif path.startswith("/tuf/metadata/") and "/" not in path[14:] and path[14:]:
            name = path[14:]
            if name.startswith("."):
                return None
            file, media = self._tuf / name, b"application/json"
            cache = NO_CACHE if name == "timestamp.json" else IMMUTABLE
        else:
            return None
        if cache == IMMUTABLE:
            data = self._cache.get(str(file))
            if data is not None:
                return data, media, cache.encode()
        try:
            data = file.read_bytes()
        except OSError:
            return None
        if cache == IMMUTABLE:
            self._cache.put(str(file), data)
        return data, media, cache.encode()

    async def _lookup_database(self, path: str) -> tuple[bytes, bytes, bytes] | None:
        relative = path[5:]
        if path == "/log/checkpoint":
            data = await run_in_threadpool(self._gateway.log.read_public, "checkpoint")
            return data, b"text/plain; charset=utf-8", SHORT.encode()
        if not TILE_PATH.match(relative):
            return None
        cached = self._cache.get(path)
        if cached is None:
            try:
                cached = await run_in_threadpool(self._gateway.log.read_public, relative)
            except ClearanceError:
                return None  # the app answers 404 with the reason
            self._cache.put(path, cached)
        return cached, b"application/octet-stream", IMMUTABLE.encode()

    async def _submit(self, scope: Any, receive: Any, send: Any) -> None:
        """``POST /api/v1/submissions`` without the framework: the hottest write path
        (the route stays in the app, which documents it; the answers are the same)."""
        token = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                token = bearer_token(value.decode("latin-1"))
        try:
            body = await read_body(scope, receive, self._gateway.config.max_envelope_bytes)
            if body is None:
                return  # the client went away
            status, answer = await self._submission(body, token)
        except ClearanceError as exc:
            status, answer = status_of(exc, token is not None), {"detail": str(exc)}
        await _send_json(send, status, answer)

    async def _submission(self, body: bytes, token: str | None) -> tuple[int, dict[str, Any]]:
        """(status, answer) of one submission: the sequencer's, when this replica forwards
        to one and its answer checks (see clearance.gateway._forwarding), else this one's."""
        sequencer = self._gateway.sequencer_url()
        if sequencer is not None:
            if self._forwarder is None:
                self._forwarder = self._gateway.forwarder()
            try:
                return await self._forwarder.forward(sequencer, body, token)
            except ForwardingError:
                pass  # admitted here
        return await self._local_submission(body, token)

    async def _local_submission(
        self, body: bytes, token: str | None
    ) -> tuple[int, dict[str, Any]]:
        try:
            role = self._gateway.config.role_of(token)
            return 201, await self._gateway.submit_async(body, role)
        except ClearanceError as exc:
            return status_of(exc, token is not None), {"detail": str(exc)}

    async def _forwarded(self, scope: Any, receive: Any, send: Any) -> None:
        """``POST /internal/v1/forwarded``: another replica's batch of submissions, each
        judged by its own caller's token and admitted here together (never forwarded
        again), each answered as it would have been."""
        try:
            body = await read_body(scope, receive, MAX_FORWARDED_BODY_BYTES, "forwarded batch")
            if body is None:
                return
            try:
                items = forwarded_items(body)
            except ValueError as exc:
                raise GatewayInputError(f"forwarded submissions: {exc}") from None
            results = await asyncio.gather(
                *(self._local_submission(envelope, token) for envelope, token in items)
            )
            answer: dict[str, Any] = {
                "results": [{"status": code, "answer": one} for code, one in results]
            }
            status = 200
        except ClearanceError as exc:
            status, answer = status_of(exc, False), {"detail": str(exc)}
        await _send_json(send, status, answer)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == "/api/v1/submissions"
            and not scope.get("query_string")
        ):
            await self._submit(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == FORWARD_PATH:
            await self._forwarded(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path = scope["path"]
            if self._from_database and path.startswith("/log/"):
                found = await self._lookup_database(path)
            else:
                found = self._lookup(path)
            if found is not None:
                data, media, cache = found
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", media),
                            (b"content-length", str(len(data)).encode()),
                            (b"cache-control", cache),
                        ],
                    }
                )
                body = b"" if scope["method"] == "HEAD" else data
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

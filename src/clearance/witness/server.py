"""The witness HTTP service: ``POST /add-checkpoint`` (C2SP tlog-witness) and read-only
monitoring endpoints that export what the witness holds.

- ``POST /add-checkpoint``: 200 with cosignature lines, 400/403/404/409/422 as the spec names
  (409 carries the cosigned size, ``text/x.tlog.size``).
- ``GET /checkpoint?origin=O``: the latest checkpoint cosigned for ``O`` (log signature and
  this witness's cosignature), for monitors comparing views.
- ``GET /conflicts``: the conflicting checkpoints kept as evidence (bounded per origin), as JSON.

``POST /add-checkpoint`` is rate-limited per client address (429 beyond) and
its body is at most :data:`~clearance.witness.protocol.MAX_REQUEST_BYTES`;
the server runs under the connection limits of :mod:`clearance._serving`.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from clearance._serving import RateLimiter, uvicorn_config
from clearance.errors import ClearanceError
from clearance.witness.errors import (
    InconsistentCheckpoint,
    MalformedRequest,
    SizeConflict,
    UnknownLog,
    UntrustedCheckpoint,
)
from clearance.witness.protocol import (
    ADD_CHECKPOINT_PATH,
    MAX_REQUEST_BYTES,
    SIZE_CONTENT_TYPE,
    format_cosignatures,
    format_size,
)
from clearance.witness.witness import Witness

_NOTE_TYPE = "text/plain; charset=utf-8"


#: add-checkpoint requests a second per client address, and the burst allowed.
RATE_PER_CLIENT = 10.0
BURST_PER_CLIENT = 30


def create_app(witness: Witness, limiter: RateLimiter | None = None) -> FastAPI:
    """A FastAPI application serving ``witness``."""
    limiter = limiter or RateLimiter(RATE_PER_CLIENT, BURST_PER_CLIENT)
    app = FastAPI(
        title=f"Clearance witness {witness.name}",
        description="C2SP tlog-witness: cosigns checkpoints consistent with the last one it saw.",
    )

    @app.post(ADD_CHECKPOINT_PATH)
    async def add_checkpoint(request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        if not limiter.allow(client):
            return PlainTextResponse(
                "too many requests\n", status_code=429, headers={"retry-after": "1"}
            )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
            return PlainTextResponse("request body too large\n", status_code=400)
        # Read at most the limit even when no (or a false) length was declared.
        chunks: list[bytes] = []
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > MAX_REQUEST_BYTES:
                return PlainTextResponse("request body too large\n", status_code=400)
            chunks.append(chunk)
        body = b"".join(chunks)
        try:
            signatures = await run_in_threadpool(witness.add_checkpoint, body)
        except SizeConflict as exc:
            # Exactly the spec's media type: Starlette would append a charset to media_type.
            return Response(
                format_size(exc.latest_size),
                status_code=exc.status,
                headers={"content-type": SIZE_CONTENT_TYPE},
            )
        except (MalformedRequest, UnknownLog, UntrustedCheckpoint, InconsistentCheckpoint) as exc:
            return PlainTextResponse(f"{exc}\n", status_code=exc.status)
        except ClearanceError as exc:
            return PlainTextResponse(f"{exc}\n", status_code=400)
        return Response(format_cosignatures(signatures), status_code=200, media_type=_NOTE_TYPE)

    @app.get("/checkpoint")
    async def latest_checkpoint(origin: str) -> Response:
        cosigned = await run_in_threadpool(witness.state.latest, origin)
        if cosigned is None:
            return PlainTextResponse(f"no checkpoint cosigned for {origin!r}\n", status_code=404)
        return Response(cosigned.checkpoint, media_type=_NOTE_TYPE)

    @app.get("/conflicts")
    async def conflicts() -> JSONResponse:
        found = await run_in_threadpool(witness.state.conflicts)
        return JSONResponse([c.to_dict() for c in found])

    @app.get("/")
    async def about() -> JSONResponse:
        return JSONResponse(
            {
                "witness": witness.name,
                "verifier_key": witness.verifier.to_string(),
                "origins": list(witness.origins),
            }
        )

    return app


def serve(witness: Witness, host: str = "127.0.0.1", port: int = 8001) -> None:
    """Run the witness under uvicorn until interrupted."""
    import uvicorn

    uvicorn.Server(uvicorn_config(create_app(witness), host, port)).run()

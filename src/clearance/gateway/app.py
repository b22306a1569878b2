"""The gateway's HTTP interface (FastAPI; OpenAPI at ``/openapi.json``).

Static, cacheable paths (served straight from the data directory):

* ``/log/checkpoint`` (short max-age), ``/log/tile/...`` (full tiles immutable,
  partial tiles short max-age): the C2SP tlog-tiles layout of the log; with a
  PostgreSQL log every replica serves them from the database (partial tiles
  too are immutable there: an old width is cut from the stored tile);
* ``/trust-root.json``;
* ``/tuf/metadata/...`` and ``/tuf/targets/...``: the TUF repository.

``/api/v1/...``: submissions (every write a signed envelope plus the API
token of the role that may make it), status, bundles, updates, entitlements,
health.  Errors are JSON ``{"detail": "..."}``: 400 bad input, 401/403
refused, 404 unknown, 413 too large.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from clearance import __version__
from clearance.errors import BadInput, ClearanceError
from clearance.gateway._fast_path import (
    IMMUTABLE,
    NO_CACHE,
    SHORT,
    TILE_PATH,
    ImmutableCache,
    StaticFastPath,
    bearer_token,
    read_body,
    status_of,
)
from clearance.gateway.errors import GatewayInputError, GatewayNotFoundError, GatewayRefused
from clearance.gateway.service import Gateway

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def _token(request: Request) -> str | None:
    return bearer_token(request.headers.get("authorization", ""))


async def _read_limited(request: Request, limit: int, what: str) -> bytes:
    body = await read_body(request.scope, request.receive, limit, what)
    if body is None:
        raise ClientDisconnect  # as Request.stream() does: the client went away
    return body


def _entitlement_body(body: bytes) -> tuple[bytes, dict[str, Any] | None]:
    """``{"envelope": ..., "opening": ...}``, or a bare envelope (an entitlement in clear)."""
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise GatewayInputError("entitlement: the body is not JSON") from None
    if isinstance(value, dict) and "envelope" in value:
        opening = value.get("opening")
        if opening is not None and not isinstance(opening, dict):
            raise GatewayInputError("entitlement: opening must be a JSON object")
        return json.dumps(value["envelope"]).encode(), opening
    return body, None


def _safe_file(root: Path, relative: str) -> Path:
    if not relative or relative.startswith("/") or ".." in relative.split("/"):
        raise GatewayNotFoundError(f"no such file: {relative}")
    path = root / relative
    if not path.is_file():
        raise GatewayNotFoundError(f"no such file: {relative}")
    return path


def create_asgi(gateway: Gateway) -> StaticFastPath:
    """The application ``clearance serve`` runs: the API with the static fast path."""
    return StaticFastPath(create_app(gateway), gateway)


def create_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(
        title="Clearance gateway",
        version=__version__,
        description="Signed submissions into a witnessed transparency log, inspection, "
        "policy-bound staged distribution, TUF repository of approved releases.",
        # /docs and /redoc are served by clearance.web from packaged assets (no CDN).
        docs_url=None,
        redoc_url=None,
    )
    app.state.gateway = gateway

    @app.exception_handler(ClearanceError)
    async def _clearance_error(request: Request, exc: ClearanceError) -> JSONResponse:
        status = status_of(exc, _token(request) is not None)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    def role(request: Request) -> str | None:
        return gateway.config.role_of(_token(request))

    def need_role(request: Request, *roles: str) -> str:
        got = role(request)
        if got not in roles:
            raise GatewayRefused(f"this call needs a {' or '.join(roles)} API token")
        assert got is not None
        return got

    async def call(fn: Callable[..., Any], *args: Any) -> Any:
        return await run_in_threadpool(fn, *args)

    # -- static: log, trust root, TUF -----------------------------------------------------

    immutable_cache = ImmutableCache()

    def static(root: Path, relative: str, media_type: str, cache: str) -> Response:
        # Small files on local disk: read inline (cheaper than a thread hop); immutable
        # ones are kept in memory, since a full tile or a versioned TUF file never changes.
        if cache == IMMUTABLE:
            key = f"{root}/{relative}"
            data = immutable_cache.get(key)
            if data is None:
                data = _safe_file(root, relative).read_bytes()
                immutable_cache.put(key, data)
        else:
            data = _safe_file(root, relative).read_bytes()
        return Response(data, media_type=media_type, headers={"Cache-Control": cache})

    @app.get("/log/checkpoint", tags=["log"], response_class=Response)
    async def log_checkpoint() -> Response:
        if not gateway.log.publishes_files:
            data = await call(gateway.log.read_public, "checkpoint")
            return Response(
                data, media_type="text/plain; charset=utf-8", headers={"Cache-Control": SHORT}
            )
        return static(gateway.log.public_dir, "checkpoint", "text/plain; charset=utf-8", SHORT)

    @app.get("/log/{path:path}", tags=["log"], response_class=Response)
    async def log_tile(path: str) -> Response:
        if not TILE_PATH.match(path):
            raise GatewayNotFoundError(f"no such log file: {path}")
        if not gateway.log.publishes_files:
            try:
                data = await call(gateway.log.read_public, path)
            except BadInput as exc:
                raise GatewayNotFoundError(f"no such log file: {exc}") from None
            return Response(
                data, media_type="application/octet-stream", headers={"Cache-Control": IMMUTABLE}
            )
        cache = SHORT if ".p/" in path else IMMUTABLE
        return static(gateway.log.public_dir, path, "application/octet-stream", cache)

    @app.get("/trust-root.json", tags=["trust"], response_class=Response)
    async def trust_root() -> Response:
        file = gateway.reads.trust_root_file
        return static(file.parent, file.name, "application/json", SHORT)

    @app.get("/tuf/metadata/{name}", tags=["tuf"], response_class=Response)
    async def tuf_metadata(name: str) -> Response:
        cache = NO_CACHE if name == "timestamp.json" else IMMUTABLE
        return static(gateway.tuf.metadata_dir, name, "application/json", cache)

    @app.get("/tuf/targets/{path:path}", tags=["tuf"], response_class=Response)
    def tuf_target(path: str) -> Response:
        file = _safe_file(gateway.tuf.targets_dir, path)
        return FileResponse(
            file, media_type="application/octet-stream", headers={"Cache-Control": IMMUTABLE}
        )

    # -- API ----------------------------------------------------------------------------

    @app.post("/api/v1/submissions", tags=["api"], status_code=201)
    async def submit(request: Request) -> dict[str, Any]:
        """Submit a signed DSSE envelope: release (vendor token), verdict (inspector),
        policy (policy), entitlement (vendor), rollout decision (inspector or policy),
        install-health report (client).  Returns the receipt."""
        body = await _read_limited(request, gateway.config.max_envelope_bytes, "envelope")
        result: dict[str, Any] = await call(gateway.submit, body, role(request))
        return result

    @app.post("/api/v1/health-reports", tags=["api"], status_code=201)
    async def health_report(request: Request) -> dict[str, Any]:
        """An install-health report (``ok``, ``failed``, ``engine-crash``): a DSSE envelope
        of a ``https://clearance.dev/health/v1`` statement ``{release, ring, status}`` signed
        by one device key a customer's entitlement names (no token: the signature says who
        reports).  It is logged; returns the rollout state after the rule was applied."""
        body = await _read_limited(request, gateway.config.max_envelope_bytes, "envelope")
        result: dict[str, Any] = await call(gateway.submit, body, role(request), "health")
        return result

    @app.post("/api/v1/health-reports/bulk", tags=["api"], status_code=201)
    async def health_reports_bulk(request: Request) -> dict[str, Any]:
        """Many install-health reports at once: ``{"reports": [<DSSE envelope>, ...]}``
        (client token).  Signatures are checked in a process pool; the accepted reports
        are stored before the answer, counted in their rollout, and logged as one
        aggregate per ring and window.  Returns counts and the refused reports by position."""
        body = await _read_limited(request, 64 << 20, "bulk health reports")
        result: dict[str, Any] = await call(gateway.submit_health_bulk, body, role(request))
        return result

    @app.get("/api/v1/health-aggregates/{log_index}", tags=["api"])
    async def health_aggregate(
        log_index: int, after: str = "", limit: int | None = None
    ) -> dict[str, Any]:
        """A logged health aggregate and the individual reports it covers, ordered by
        SHA-256 (their RFC 6962 Merkle root, over the envelopes in that order, is in the
        aggregate).  ``?limit=N`` (at most 10,000) answers a page: the reports whose digest
        sorts after ``?after=`` (a digest; none: from the first), and ``next_after``, where
        the next page starts (``null`` after the last).  Without ``limit``, every report,
        or 400 when the aggregate covers more than 10,000."""
        result: dict[str, Any] = await call(
            gateway.reads.health_aggregate, log_index, after, limit
        )
        return result

    @app.post("/api/v1/entitlements", tags=["api"], status_code=201)
    async def add_entitlement(request: Request) -> dict[str, Any]:
        """An entitlement signed by the vendor that sold it (vendor token):
        ``{"envelope": <DSSE envelope of the commitment>, "opening": {salt, entitlement}}``.
        Only the commitment is logged; the opening is kept privately by the gateway."""
        body = await _read_limited(request, gateway.config.max_envelope_bytes * 2, "entitlement")
        envelope, opening = _entitlement_body(body)
        result: dict[str, Any] = await call(
            gateway.submit, envelope, role(request), "entitlement", opening
        )
        return result

    @app.get("/api/v1/submissions/{sha256}", tags=["api"])
    async def status(sha256: str) -> dict[str, Any]:
        result: dict[str, Any] = await call(gateway.reads.status, sha256)
        return result

    @app.put("/api/v1/artifacts/{sha256}", tags=["api"], status_code=201)
    async def upload(sha256: str, request: Request) -> dict[str, Any]:
        """Upload an artifact of a release (vendor token); the body is the raw file."""
        need_role(request, "vendor")
        if not _SHA_RE.match(sha256):
            raise GatewayInputError("artifact path must be its lowercase hex SHA-256")
        body = await _read_limited(request, gateway.config.max_artifact_bytes, "artifact")
        result: dict[str, Any] = await call(gateway.inspections.put_artifact, body, sha256)
        return result

    @app.get("/api/v1/artifacts/{sha256}", tags=["api"], response_class=Response)
    async def artifact(sha256: str, request: Request) -> Response:
        """An uploaded artifact, for inspectors (remote inspection workers)."""
        need_role(request, "inspector", "operator")
        if not _SHA_RE.match(sha256):
            raise GatewayInputError("artifact path must be its lowercase hex SHA-256")
        path = gateway.inspections.artifact_path(sha256)
        if not path.is_file():
            raise GatewayNotFoundError(f"no artifact {sha256}")
        return FileResponse(path, media_type="application/octet-stream")

    @app.get("/api/v1/releases", tags=["api"])
    async def releases() -> dict[str, Any]:
        rows = await call(gateway.reads.releases)
        return {"releases": [r.to_dict() for r in rows]}

    def customer_of(request: Request, asked: str | None) -> str:
        """The customer a request acts for: the one whose device key signed it (a device
        cannot name another), or, with the operator token, the one asked for."""
        if role(request) == "operator" and asked:
            return asked
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        customer = gateway.customers.authenticate(
            request.method, path, dict(request.headers), int(gateway.clock().timestamp())
        )
        if asked is not None and asked != customer:
            raise GatewayRefused(f"this device belongs to another customer than {asked!r}")
        return customer

    @app.get("/api/v1/bundles/{sha256}", tags=["api"], response_class=Response)
    async def bundle(sha256: str, request: Request, customer: str | None = Query(None)) -> Response:
        """The bundle of an approved release; with ``customer`` (device-signed request) it
        also carries that customer's entitlement with its opening, for ``verify --customer``."""
        who = None if customer is None else customer_of(request, customer)
        data: bytes = await call(gateway.bundles.build, sha256, who)
        return Response(data, media_type="application/vnd.clearance.bundle.v1+json")

    @app.get("/api/v1/regulator/openings", tags=["api"])
    async def openings(request: Request) -> dict[str, Any]:
        """Every entitlement opening the gateway holds (policy-authority token): the
        regulator checks each against its logged commitment and re-runs the decisions."""
        need_role(request, "policy")
        rows = await call(gateway.reads.openings)
        return {"openings": [{"log_index": i, "opening": o} for i, o in rows]}

    @app.get("/api/v1/updates/latest", tags=["api"])
    async def latest(
        request: Request,
        product: str = Query(...),
        channel: str = Query(...),
        customer: str | None = Query(None),
    ) -> dict[str, Any]:
        """The newest release this customer may install, the newest approved one in the log,
        and, when they differ, the logged reason (policy or rollout) for withholding.  The
        customer is the one whose device key signed the request."""
        customer = customer_of(request, customer)
        result: dict[str, Any] = await call(gateway.reads.latest, product, channel, customer)
        return result

    @app.get("/api/v1/updates/{sha256}/{artifact}", tags=["api"], response_class=Response)
    async def download(
        sha256: str, artifact: str, request: Request, customer: str | None = Query(None)
    ) -> Response:
        customer = customer_of(request, customer)
        row = await call(gateway.reads.approved_release, sha256)
        match = [a for a in row.artifacts if a["name"] == artifact]
        if not match:
            raise GatewayNotFoundError(f"release {sha256} has no artifact {artifact!r}")
        offer = await call(gateway.reads.offer, row, customer)
        if not offer["allowed"]:
            return JSONResponse({"detail": offer["reason"], **offer}, status_code=403)
        return FileResponse(
            gateway.inspections.artifact_path(match[0]["sha256"]),
            media_type="application/octet-stream",
        )

    @app.get("/api/v1/entitlements/{customer}", tags=["api"])
    async def entitlements(customer: str, request: Request) -> dict[str, Any]:
        """A customer's entitlements and today's decisions: for that customer's devices
        (signed request) or the operator, never public (entitlements are private)."""
        customer = customer_of(request, customer)
        rows = await call(gateway.reads.entitlements_of, customer)
        products = sorted({b["product"] for _, b in rows})
        decisions = {}
        for product in products:
            decisions[product] = (await call(gateway.reads.decide_for, customer, product)).to_dict()
        return {
            "customer": customer,
            "entitlements": [{"log_index": i, **b} for i, b in rows],
            "decisions_now": decisions,
        }

    @app.get("/api/v1/health", tags=["api"])
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "log_size": gateway.reads.log_size,
            "origin": gateway.reads.log_origin,
            "jobs": await call(gateway.reads.job_counts),
            "witnesses": gateway.reads.witness_status,
        }

    _mount_dashboard(app, gateway)
    return app


def _mount_dashboard(app: FastAPI, gateway: Gateway) -> None:
    try:
        from clearance.web import mount
    except ImportError:  # the dashboard is optional for the API
        return
    mount(app, gateway.reads)


Middleware = Callable[[Request], Awaitable[Response]]

"""The dashboard's routes: server-rendered pages (Jinja2, autoescaped, no JavaScript),
HTML error pages, offline API docs, and the audit-report drop box.

Every page reads the gateway through :class:`~clearance.web._source.DashboardSource`
(its public methods); rendering runs in the thread pool, since pages read the log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from clearance import __version__
from clearance.errors import BadInput, ClearanceError, Refused
from clearance.gateway.errors import GatewayNotFoundError
from clearance.web import auth, pages
from clearance.web._source import DashboardSource

_ENV = Environment(
    loader=PackageLoader("clearance.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
MAX_AUDIT_REPORT = 512 * 1024
HTML_HEADERS = {
    "Cache-Control": "no-cache",
    # Server-rendered pages need no script at all; the API docs pages set their own.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


def _docs_assets() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def render(
    template: str, request: Request, source: DashboardSource, http_status: int = 200, **ctx: Any
) -> HTMLResponse:
    role = auth.role(source, request)
    html = _ENV.get_template(template).render(
        version=__version__,
        origin=source.log_origin,
        role=role,
        role_name=auth.ROLE_NAMES.get(role or "", role),
        privileged=role in auth.PRIVILEGED,
        path=request.url.path,
        **ctx,
    )
    return HTMLResponse(html, status_code=http_status, headers=HTML_HEADERS)


def error_page(
    request: Request, source: DashboardSource, status: int, message: str
) -> HTMLResponse:
    titles = {400: "Bad request", 401: "Sign-in required", 403: "Not allowed", 404: "Not found"}
    return render(
        "error.html",
        request,
        source,
        status,
        status=status,
        title=titles.get(status, "Error"),
        message=message,
    )


def _status_of(exc: ClearanceError) -> int:
    if isinstance(exc, GatewayNotFoundError):
        return 404
    if isinstance(exc, Refused):
        return 403
    if isinstance(exc, BadInput):
        return 400
    return 500


def mount(app: FastAPI, gateway: DashboardSource) -> None:
    source = gateway

    async def page(
        request: Request, template: str, build: Callable[[], dict[str, Any]]
    ) -> HTMLResponse:
        try:
            ctx = await run_in_threadpool(build)
        except ClearanceError as exc:
            return error_page(request, source, _status_of(exc), str(exc))
        return render(template, request, source, **ctx)

    def html_route(path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return app.get(path, response_class=HTMLResponse, include_in_schema=False)

    @html_route("/")
    async def overview(request: Request) -> HTMLResponse:
        return await page(request, "overview.html", lambda: pages.overview(source))

    @html_route("/releases")
    async def releases(request: Request) -> HTMLResponse:
        return await page(request, "releases.html", lambda: pages.overview(source))

    @html_route("/releases/{sha256}")
    async def release(request: Request, sha256: str) -> HTMLResponse:
        return await page(request, "release.html", lambda: pages.release(source, sha256))

    @app.get("/releases/{sha256}/report.html", include_in_schema=False)
    async def release_report(request: Request, sha256: str) -> Response:
        path = source.inspection_report(sha256, "html")
        if path is None:
            return error_page(request, source, 404, f"no HTML inspection report for {sha256}")
        return FileResponse(path, media_type="text/html", headers=HTML_HEADERS)

    @app.get("/releases/{sha256}/findings.sarif", include_in_schema=False)
    async def release_sarif(request: Request, sha256: str) -> Response:
        path = source.inspection_report(sha256, "sarif")
        if path is None:
            return error_page(request, source, 404, f"no SARIF findings for {sha256}")
        return FileResponse(
            path, media_type="application/sarif+json", filename=f"{sha256[:16]}.sarif"
        )

    @html_route("/entries")
    async def entries(request: Request) -> HTMLResponse:
        return await page(
            request,
            "entries.html",
            lambda: {"recent": source.recent_entries(100), "log_size": source.log_size},
        )

    @html_route("/entries/{index}")
    async def entry(request: Request, index: str) -> HTMLResponse:
        if not index.isdigit():
            return error_page(request, source, 404, f"{index!r} is not a log index")
        return await page(request, "entry.html", lambda: {"e": pages.entry(source, int(index))})

    @html_route("/customers")
    async def customers(request: Request) -> HTMLResponse:
        if not auth.privileged(source, request):
            return error_page(
                request,
                source,
                401 if auth.credential(request) is None else 403,
                "Customers and their entitlements are shown to the log operator "
                "and the regulator only: sign in with your role's credential.",
            )
        return await page(request, "customers.html", lambda: {"customers": pages.customers(source)})

    @html_route("/policy")
    async def policy(request: Request) -> HTMLResponse:
        return await page(request, "policy.html", lambda: pages.policy(source))

    @html_route("/witnesses")
    async def witnesses(request: Request) -> HTMLResponse:
        return await page(request, "witnesses.html", lambda: pages.witnesses(source))

    @html_route("/rollouts")
    async def rollouts(request: Request) -> HTMLResponse:
        return await page(request, "rollouts.html", lambda: {"rollouts": pages.rollouts(source)})

    @html_route("/audit")
    async def audit(request: Request) -> HTMLResponse:
        return await page(
            request,
            "audit.html",
            lambda: {
                "reports": list(reversed(source.audit_reports())),
                "logged_reports": pages.logged_reports(source),
            },
        )

    @html_route("/search")
    async def search(request: Request, q: str = "") -> HTMLResponse:
        can = auth.privileged(source, request)
        return await page(request, "search.html", lambda: pages.search(source, q, can))

    @html_route("/signin")
    async def signin_form(request: Request) -> HTMLResponse:
        return render("signin.html", request, source, message="")

    @app.post("/signin", response_class=HTMLResponse, include_in_schema=False)
    async def signin(request: Request) -> Response:
        form = await request.form()
        token = str(form.get("credential", "")).strip()
        role = source.role_of(token or None)
        if role not in auth.PRIVILEGED:
            return render(
                "signin.html",
                request,
                source,
                403,
                message="This credential is not the log operator's or the regulator's.",
            )
        response = RedirectResponse("/customers", status_code=303)
        response.set_cookie(
            auth.COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=8 * 3600,
        )
        return response

    @app.post("/signout", include_in_schema=False)
    async def signout() -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(auth.COOKIE)
        return response

    @app.post("/api/v1/audit-reports", tags=["api"], status_code=201)
    async def post_audit_report(request: Request) -> JSONResponse:
        """An auditor posts the result of ``clearance audit --json``; the dashboard shows it
        under /audit, marked as the auditor's claim (the gateway checks its shape only)."""
        body = await request.body()
        if len(body) > MAX_AUDIT_REPORT:
            return JSONResponse({"detail": "audit report too large"}, status_code=413)
        try:
            report = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return JSONResponse({"detail": "audit report is not JSON"}, status_code=400)
        needed = {"origin", "checkpoint_size", "clean", "findings"}
        if not isinstance(report, dict) or not needed <= set(report):
            return JSONResponse(
                {"detail": f"audit report needs {', '.join(sorted(needed))}"}, status_code=400
            )
        if report["origin"] != source.log_origin:
            return JSONResponse({"detail": "audit report is about another log"}, status_code=400)
        number = await run_in_threadpool(source.add_audit_report, report)
        return JSONResponse({"number": number}, status_code=201)

    # -- API docs: Swagger UI from the fastapi-offline package's assets (no CDN).  ReDoc
    # is not offered: its bundle loads its logo from cdn.redoc.ly. ----------------------
    assets = _docs_assets()

    @app.get("/docs-assets/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        allowed = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}
        if name not in allowed:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return FileResponse(assets / name, headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Clearance gateway API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            return error_page(request, source, exc.status_code, str(exc.detail))
        return JSONResponse(
            {"detail": exc.detail},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )


__all__ = ["mount"]

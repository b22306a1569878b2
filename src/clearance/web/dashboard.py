"""Rendering the dashboard pages from the gateway's metadata index (Jinja2, autoescaped)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from clearance import __version__
from clearance.gateway.errors import GatewayNotFoundError

if TYPE_CHECKING:
    from clearance.gateway.service import Gateway

_ENV = Environment(
    loader=PackageLoader("clearance.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def overview(gateway: Gateway) -> dict[str, Any]:
    releases = []
    for row in reversed(gateway.releases()):
        rollout = gateway.rollout_of(row.sha256)
        releases.append(
            {
                **row.to_dict(),
                "verdicts": gateway.verdicts_of(row.sha256),
                "rollout": rollout,
            }
        )
    policy = gateway.policy_in_force()
    return {
        "version": __version__,
        "origin": gateway.log_origin,
        "log_size": gateway.log_size,
        "kinds": gateway.entry_kinds(),
        "jobs": gateway.job_counts(),
        "releases": releases,
        "recent": gateway.recent_entries(15),
        "policy": None
        if policy is None
        else {
            "name": policy.policy.name,
            "log_index": policy.log_index,
            "rules": [r.to_dict() for r in policy.policy.rules],
        },
        "witnesses": gateway.witness_status,
    }


def render_overview(gateway: Gateway) -> str:
    return _ENV.get_template("overview.html").render(**overview(gateway))


def render_release(gateway: Gateway, sha256: str) -> str:
    status = gateway.status(sha256)
    if "release" not in status:
        raise GatewayNotFoundError(f"{sha256} is not a release")
    return _ENV.get_template("release.html").render(
        version=__version__, origin=gateway.log_origin, **status
    )


def mount(app: FastAPI, gateway: Gateway) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        html = await run_in_threadpool(render_overview, gateway)
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    @app.get("/releases/{sha256}", response_class=HTMLResponse, include_in_schema=False)
    async def release_page(sha256: str) -> HTMLResponse:
        html = await run_in_threadpool(render_release, gateway, sha256)
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

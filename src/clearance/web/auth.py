"""Who is looking: the role of the credential sent as ``Authorization: Bearer`` or in the
sign-in cookie.  Pages that name customers are for the operator and the regulator (the
policy authority's credential); everyone else sees what the public log shows."""

from __future__ import annotations

from fastapi import Request

from clearance.web._source import DashboardSource

COOKIE = "clearance_credential"
#: Roles that may see pages naming customers.
PRIVILEGED = frozenset({"operator", "policy"})
ROLE_NAMES = {"operator": "log operator", "policy": "regulator (policy authority)"}


def credential(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get(COOKIE) or None


def role(source: DashboardSource, request: Request) -> str | None:
    return source.role_of(credential(request))


def privileged(source: DashboardSource, request: Request) -> bool:
    return role(source, request) in PRIVILEGED

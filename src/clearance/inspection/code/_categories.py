"""Which capa namespaces are capabilities an inspector must be told about.

The issue names them: network communication, screen or keyboard capture,
file collection and upload, privilege escalation, persistence, process
injection and loading code at run time (plus starting processes, which is
how most of those are done from a shell).  Anything else capa finds is shown
in the report but raises no finding.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    id: str
    label: str
    prefixes: tuple[str, ...]
    name_words: tuple[str, ...] = ()


CATEGORIES: tuple[Category, ...] = (
    Category(
        "keylogging",
        "keyboard capture",
        ("collection/keylog", "host-interaction/hardware/keyboard"),
    ),
    Category(
        "screen-capture",
        "screen, camera or microphone capture",
        (
            "collection/screenshot",
            "collection/webcam",
            "collection/microphone",
            "host-interaction/hardware/camera",
        ),
    ),
    Category(
        "file-collection",
        "file collection and upload",
        (
            "collection/file-managers",
            "communication/c2/file-transfer",
            "host-interaction/file-system/files/list",
        ),
    ),
    Category(
        "data-collection",
        "collection of credentials or user and system data",
        ("collection",),
    ),
    Category(
        "injection",
        "process injection",
        ("host-interaction/process/inject", "linking/hooking", "host-interaction/process/dump"),
    ),
    Category(
        "code-loading",
        "loading code at run time",
        ("load-code", "linking/runtime-linking", "runtime"),
    ),
    Category(
        "privilege",
        "privilege escalation",
        (
            "host-interaction/uac",
            "host-interaction/process/modify",
            "host-interaction/user",
            "host-interaction/sid",
        ),
        ("privilege", "setuid", "impersonate"),
    ),
    Category(
        "persistence",
        "persistence",
        ("persistence", "host-interaction/service/create"),
    ),
    Category(
        "process",
        "starting processes or shells",
        ("host-interaction/process/create", "communication/c2/shell"),
    ),
    Category(
        "network",
        "network communication",
        ("communication", "host-interaction/network", "linking/static/libcurl"),
    ),
)

BY_ID = {c.id: c for c in CATEGORIES}


def _under(namespace: str, prefix: str) -> bool:
    return namespace == prefix or namespace.startswith(prefix.rstrip("/") + "/")


def category_of(namespace: str, rule_name: str) -> Category | None:
    """The first category (most specific first) a capa rule belongs to, if any."""
    if _under(namespace, "communication/named-pipe"):
        return None  # local IPC, not network
    lowered = rule_name.lower()
    for category in CATEGORIES:
        if any(_under(namespace, p) for p in category.prefixes):
            return category
        if any(word in lowered for word in category.name_words):
            return category
    return None

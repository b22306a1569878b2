"""Typed readers for JSON fields: every malformed field becomes one clear StatementFormatError."""

from __future__ import annotations

import re
from typing import Any, TypeGuard

from clearance.attest.errors import StatementFormatError

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")


def is_text(value: object) -> TypeGuard[str]:
    """True for a non-empty string without control characters (what :func:`text` accepts)."""
    return isinstance(value, str) and bool(value) and _CONTROL.search(value) is None


def is_sha256(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def obj(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StatementFormatError(f"{what} is not a JSON object")
    return value


def text(value: object, what: str, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise StatementFormatError(f"{what} is missing or not a string")
    if not empty and not value:
        raise StatementFormatError(f"{what} is empty")
    if _CONTROL.search(value):
        raise StatementFormatError(f"{what} contains a control character")
    return value


def name(value: object, what: str) -> str:
    """A one-line identifier: non-empty, no whitespace other than inner spaces, no controls."""
    result = text(value, what)
    if result != result.strip() or "\n" in result or "\t" in result:
        raise StatementFormatError(
            f"{what} {result[:60]!r} has surrounding or line-breaking spaces"
        )
    return result


_DRIVE = re.compile(r"[A-Za-z]:")


def relative_path(value: object, what: str) -> str:
    """A clean relative POSIX path: no ``..``, no ``.`` or empty parts, no absolute,
    drive or backslash form -- a name that can only land inside the directory it is put in."""
    result = name(value, what)
    if "\\" in result:
        raise StatementFormatError(f"{what} {result[:60]!r} contains a backslash")
    if result.startswith("/") or _DRIVE.match(result):
        raise StatementFormatError(f"{what} {result[:60]!r} is an absolute path")
    parts = result.split("/")
    if any(part == ".." for part in parts):
        raise StatementFormatError(f"{what} {result[:60]!r} climbs out with '..'")
    if any(part in ("", ".") for part in parts):
        raise StatementFormatError(f"{what} {result[:60]!r} has an empty or '.' part")
    if any(part != part.strip() for part in parts):
        raise StatementFormatError(f"{what} {result[:60]!r} has a part with surrounding spaces")
    return result


def integer(value: object, what: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StatementFormatError(f"{what} is missing or not an integer")
    if value < minimum:
        raise StatementFormatError(f"{what} is below {minimum}")
    return value


def sha256(value: object, what: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise StatementFormatError(f"{what} is not a lowercase hex SHA-256 digest")
    return value


def str_list(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise StatementFormatError(f"{what} is not a list")
    return tuple(name(v, f"{what}[{i}]") for i, v in enumerate(value))


def str_map(value: object, what: str) -> dict[str, str]:
    mapping = obj(value, what)
    return {k: text(v, f"{what}[{k!r}]", empty=True) for k, v in mapping.items()}

"""RFC 3339 timestamps as used in policy documents (always UTC, second precision)."""

from __future__ import annotations

from datetime import UTC, datetime

from clearance.policy.errors import PolicyFormatError


def parse_time(value: object, what: str) -> datetime:
    """Parse ``2024-07-20T00:00:00Z`` (or a bare date, meaning its midnight UTC)."""
    if not isinstance(value, str):
        raise PolicyFormatError(f"{what}: expected an RFC 3339 time string, got {value!r}")
    text = value.strip()
    try:
        if len(text) == 10:
            parsed = datetime.fromisoformat(text + "T00:00:00+00:00")
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PolicyFormatError(f"{what}: {value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise PolicyFormatError(f"{what}: {value!r} has no time zone (use Z)")
    return parsed.astimezone(UTC)


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: policy times are always timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

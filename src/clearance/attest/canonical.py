"""RFC 8785 JSON Canonicalization Scheme: the only encoding used for hashed or logged JSON."""

from __future__ import annotations

from typing import Any

import rfc8785

from clearance.attest.errors import AttestFormatError


def canonical_json(obj: Any) -> bytes:
    """The RFC 8785 canonical bytes of ``obj`` (sorted keys, no spaces, ES6 numbers, UTF-8)."""
    try:
        data: bytes = rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise AttestFormatError(f"cannot canonicalize JSON: {exc}") from None
    return data

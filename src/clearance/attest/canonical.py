"""RFC 8785 JSON Canonicalization Scheme: the only encoding used for hashed or logged JSON."""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from clearance.attest.errors import AttestFormatError

#: The largest integer RFC 8785 (an IEEE 754 double) represents exactly.
_SAFE_INTEGER = 2**53 - 1
#: Sorted keys, no spaces, UTF-8 as is: RFC 8785 for the values of
#: :func:`_standard_library_agrees` (made once: ``json.dumps`` builds one per call).
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _standard_library_agrees(obj: Any) -> bool:
    """Whether ``json.dumps`` with sorted keys writes ``obj`` exactly as RFC 8785 does.

    It does for strings of any content (both escape only ``"``, ``\\`` and the control
    characters, with the same short forms and lowercase ``\\u00xx``; neither escapes
    anything else when ``ensure_ascii`` is off), integers in the exact range, booleans,
    ``null``, lists, and objects whose keys are ASCII (above ASCII, RFC 8785 sorts by
    UTF-16 code units and Python by code points).  Not for floats, whose shortest form
    differs (``1.0`` against ``1``, ``1e+21`` against ``1e21``).
    """
    kind = type(obj)
    if kind is str or obj is None or kind is bool:
        return True
    if kind is int:
        return bool(-_SAFE_INTEGER <= obj <= _SAFE_INTEGER)
    if kind is dict:
        return all(
            type(k) is str and k.isascii() and _standard_library_agrees(v) for k, v in obj.items()
        )
    if kind is list or kind is tuple:
        return all(_standard_library_agrees(v) for v in obj)
    return False


def canonical_json_of_strings(obj: Any) -> bytes:
    """:func:`canonical_json` of a value the standard library writes as RFC 8785 does
    (:func:`_standard_library_agrees`), known so by construction: objects with ASCII keys
    holding strings and lists of them (a DSSE envelope) need no look at every value."""
    try:
        text = _ENCODER.encode(obj)
        # Lone surrogates are no Unicode text: UTF-8 refuses them as RFC 8785 does.
        return text.encode("utf-8")
    except ValueError as exc:
        raise AttestFormatError(f"cannot canonicalize JSON: {exc}") from None


def canonical_json(obj: Any) -> bytes:
    """The RFC 8785 canonical bytes of ``obj`` (sorted keys, no spaces, ES6 numbers, UTF-8).

    The standard library's C encoder writes what it writes identically (see
    :func:`_standard_library_agrees`) at a fraction of the cost; everything else (floats,
    non-ASCII keys, what is not JSON) goes through the ``rfc8785`` canonicaliser.
    """
    if _standard_library_agrees(obj):
        return canonical_json_of_strings(obj)
    try:
        data: bytes = rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise AttestFormatError(f"cannot canonicalize JSON: {exc}") from None
    return data

"""The one way in for untrusted JSON and signed notes: limits checked before and while parsing.

Python's :mod:`json` happily builds anything: an integer of 5,000 digits
(which then raises ``ValueError`` from the int-to-str guard far from the
parser), an array nested 100,000 deep (``RecursionError``), ``NaN``.  Every
parser of input Clearance did not write itself -- bundles, submissions, log
entries, ``state.json``, trust roots, policies, witness requests, HTTP bodies
-- goes through :func:`load_json` (or :func:`check_note` for signed notes,
:func:`load_yaml` for YAML documents), which checks, in this order:

1. the size in bytes, before anything is decoded;
2. the nesting depth, by a scan of the brackets outside strings, before
   :func:`json.loads` recurses;
3. while parsing: every integer and float literal's length (``parse_int`` /
   ``parse_float`` hooks), and no ``NaN``/``Infinity`` constants.

A violation is one :class:`UntrustedInputError` (a :class:`~clearance.errors.BadInput`,
exit code 2) naming the input and the limit; callers usually re-raise it as
their own package's format error, keeping the message.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from clearance.errors import BadInput


class UntrustedInputError(BadInput):
    """Untrusted input is malformed or crosses a size, depth or number limit."""


@dataclass(frozen=True)
class JsonLimits:
    """Limits for one JSON document."""

    #: Bytes of the encoded document.
    max_bytes: int = 64 * 2**20
    #: Arrays and objects nested inside each other.
    max_depth: int = 64
    #: Characters of one number literal (sign, digits, dot and exponent included).
    max_number_chars: int = 40


DEFAULT_LIMITS = JsonLimits()

# A JSON string literal (escapes included); removed before counting brackets.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def _check_depth(data: bytes, what: str, max_depth: int) -> None:
    """Refuse nesting deeper than ``max_depth`` without recursing (a scan of the brackets)."""
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return  # cannot be deeper than the number of openers
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', data)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise UntrustedInputError(f"{what}: JSON nested deeper than {max_depth} levels")
        else:
            depth -= 1


class _NumberRefusedError(Exception):
    """A number literal over the limit (re-raised with the document's name by load_json)."""


@functools.lru_cache(maxsize=16)
def _decoder(limit: int) -> json.JSONDecoder:
    """A decoder refusing number literals longer than ``limit`` characters; made once per
    limit, since building one (its scanner included) costs as much as a small parse."""

    def parse_int(text: str) -> int:
        if len(text) > limit:
            raise _NumberRefusedError(f"a JSON integer has {len(text)} characters, at most {limit}")
        return int(text)

    def parse_float(text: str) -> float:
        if len(text) > limit:
            raise _NumberRefusedError(f"a JSON number has {len(text)} characters, at most {limit}")
        return float(text)

    def parse_constant(text: str) -> Any:
        raise _NumberRefusedError(f"{text} is not a JSON number")

    return json.JSONDecoder(
        parse_int=parse_int, parse_float=parse_float, parse_constant=parse_constant
    )


def load_json(data: bytes | str, what: str, limits: JsonLimits = DEFAULT_LIMITS) -> Any:
    """Parse untrusted JSON ``data`` (named ``what`` in errors) within ``limits``."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > limits.max_bytes:
        raise UntrustedInputError(f"{what}: {len(raw)} bytes, larger than {limits.max_bytes}")
    _check_depth(raw, what, limits.max_depth)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UntrustedInputError(f"{what}: not UTF-8 text") from None
    try:
        return _decoder(limits.max_number_chars).decode(text)
    except _NumberRefusedError as exc:
        raise UntrustedInputError(f"{what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UntrustedInputError(f"{what}: not valid JSON ({exc.msg} at {exc.pos})") from None
    except (RecursionError, ValueError, OverflowError) as exc:  # belt and braces
        raise UntrustedInputError(f"{what}: not usable JSON ({type(exc).__name__})") from None


@dataclass(frozen=True)
class NoteLimits:
    """Limits for one signed note (checkpoint) before it is parsed."""

    max_bytes: int = 64 * 1024
    #: Lines in the whole note (text and signature lines).
    max_lines: int = 1100


DEFAULT_NOTE_LIMITS = NoteLimits()


def check_note(data: bytes, what: str, limits: NoteLimits = DEFAULT_NOTE_LIMITS) -> bytes:
    """Refuse a signed note that is too large or has too many lines; return it unchanged."""
    if len(data) > limits.max_bytes:
        raise UntrustedInputError(f"{what}: {len(data)} bytes, larger than {limits.max_bytes}")
    lines = data.count(b"\n")
    if lines > limits.max_lines:
        raise UntrustedInputError(f"{what}: {lines} lines, more than {limits.max_lines}")
    return data


def load_yaml(text: str, what: str, limits: JsonLimits = DEFAULT_LIMITS) -> Any:
    """Parse an untrusted YAML document (safe tags only) within ``limits``.

    Nesting deeper than ``limits.max_depth`` and aliases (``*ref``: a few lines
    can stand for billions of nodes once walked) are refused while composing.
    """
    import yaml

    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise UntrustedInputError(f"{what}: {size} bytes, larger than {limits.max_bytes}")

    class _Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise UntrustedInputError(f"{what}: YAML aliases (*ref) are not accepted")
            self.depth += 1
            try:
                if self.depth > limits.max_depth:
                    raise UntrustedInputError(
                        f"{what}: YAML nested deeper than {limits.max_depth} levels"
                    )
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise UntrustedInputError(f"{what}: YAML nested too deeply") from None

"""The C2SP tlog-witness wire format: the add-checkpoint request and its responses.

Request body::

    old <size>\\n
    <base64 consistency proof hash>\\n   (0 to 63 lines)
    \\n
    <checkpoint signed note>

A 200 response is one or more note signature lines (cosignatures); a 409
response is the witness's latest cosigned size in decimal and a newline,
with content type ``text/x.tlog.size``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from clearance.keys import NoteFormatError, NoteSignature
from clearance.witness.errors import MalformedRequest

ADD_CHECKPOINT_PATH = "/add-checkpoint"
SIZE_CONTENT_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63
#: A checkpoint, 63 proof lines and a few signatures fit in a fraction of this.
MAX_REQUEST_BYTES = 64 * 1024
_HASH_SIZE = 32


def parse_decimal(text: str, what: str) -> int:
    """A non-negative ASCII decimal with no leading zeroes (``0`` itself allowed)."""
    if not text or not text.isascii() or not text.isdigit():
        raise MalformedRequest(f"{what} {text[:30]!r} is not a decimal number")
    if len(text) > 1 and text[0] == "0":
        raise MalformedRequest(f"{what} {text[:30]!r} has leading zeroes")
    if len(text) > 20:
        raise MalformedRequest(f"{what} {text[:30]!r} is too large")
    return int(text)


@dataclass(frozen=True)
class AddCheckpointRequest:
    """One add-checkpoint call: the size the client believes the witness holds, a
    consistency proof from that size, and the signed checkpoint note bytes."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: bytes

    def to_bytes(self) -> bytes:
        lines = [f"old {self.old_size}\n"]
        lines += [base64.b64encode(h).decode() + "\n" for h in self.proof]
        return "".join(lines).encode() + b"\n" + self.checkpoint

    @classmethod
    def from_bytes(cls, body: bytes) -> AddCheckpointRequest:
        if len(body) > MAX_REQUEST_BYTES:
            raise MalformedRequest(f"request body is {len(body)} bytes, over {MAX_REQUEST_BYTES}")
        head, sep, checkpoint = body.partition(b"\n\n")
        if not sep:
            raise MalformedRequest("request body has no blank line before the checkpoint")
        try:
            lines = head.decode("ascii").split("\n")
        except UnicodeDecodeError:
            raise MalformedRequest("old size and proof lines are not ASCII") from None
        first = lines[0]
        if not first.startswith("old "):
            raise MalformedRequest(f"first line {first[:30]!r} is not 'old <size>'")
        old_size = parse_decimal(first[4:], "old size")
        proof_lines = lines[1:]
        if len(proof_lines) > MAX_PROOF_LINES:
            raise MalformedRequest(f"{len(proof_lines)} proof lines, at most {MAX_PROOF_LINES}")
        proof = tuple(_decode_hash(line) for line in proof_lines)
        if not checkpoint:
            raise MalformedRequest("request body has no checkpoint")
        return cls(old_size, proof, checkpoint)


def _decode_hash(line: str) -> bytes:
    try:
        value = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedRequest(f"proof line {line[:50]!r} is not base64") from None
    if len(value) != _HASH_SIZE:
        raise MalformedRequest(f"proof line {line[:50]!r} is not a {_HASH_SIZE}-byte hash")
    return value


def format_cosignatures(signatures: tuple[NoteSignature, ...]) -> bytes:
    """A 200 response body: one note signature line per cosignature."""
    return "".join(s.to_line() for s in signatures).encode()


def parse_cosignatures(body: bytes) -> tuple[NoteSignature, ...]:
    """Parse a 200 response body; raises :class:`NoteFormatError` on any bad line."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteFormatError("cosignature response is not UTF-8") from None
    if not text.endswith("\n"):
        raise NoteFormatError("cosignature response does not end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) > 100:
        raise NoteFormatError("cosignature response has more than 100 lines")
    return tuple(NoteSignature.parse_line(line) for line in lines)


def format_size(size: int) -> bytes:
    """A 409 response body."""
    return f"{size}\n".encode()


def parse_size(body: bytes) -> int:
    """Parse a 409 response body (``text/x.tlog.size``)."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedRequest("conflict response is not ASCII") from None
    if not text.endswith("\n"):
        raise MalformedRequest("conflict response does not end in a newline")
    return parse_decimal(text[:-1], "witness size")

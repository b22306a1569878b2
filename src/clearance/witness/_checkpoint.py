"""The three header lines of a C2SP tlog-checkpoint body, which is all a witness reads.

Kept private and minimal: the full checkpoint model lives in
:mod:`clearance.log.checkpoint`; the witness only needs origin, size and root.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from clearance.witness.errors import MalformedRequest
from clearance.witness.protocol import parse_decimal


@dataclass(frozen=True)
class CheckpointHead:
    origin: str
    size: int
    root_hash: bytes


def parse_checkpoint_text(text: str) -> CheckpointHead:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise MalformedRequest("checkpoint needs origin, size and root hash lines")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not origin:
        raise MalformedRequest("checkpoint origin line is empty")
    size = parse_decimal(size_text, "checkpoint size")
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedRequest("checkpoint root hash is not base64") from None
    if len(root) != 32:
        raise MalformedRequest("checkpoint root hash is not 32 bytes")
    return CheckpointHead(origin, size, root)

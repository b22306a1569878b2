"""Checkpoint parsing for the witness: the log's model, with errors mapped to HTTP 400."""

from __future__ import annotations

from clearance.errors import BadInput
from clearance.log.checkpoint import Checkpoint
from clearance.witness.errors import MalformedRequest


def parse_checkpoint_text(text: str) -> Checkpoint:
    try:
        return Checkpoint.from_text(text)
    except BadInput as exc:
        raise MalformedRequest(str(exc)) from None

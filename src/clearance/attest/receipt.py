"""The receipt a submitter gets: where its entry is and the proof under a signed checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clearance.attest.errors import AttestFormatError


@dataclass(frozen=True)
class Receipt:
    """Index and SHA-256 of the logged entry, its inclusion proof and the checkpoint note."""

    index: int
    sha256: str
    tree_size: int
    inclusion_proof: tuple[bytes, ...]
    checkpoint: str
    kind: str = ""
    duplicate: bool = False

    @classmethod
    def of(
        cls,
        index: int,
        sha256: str,
        tree_size: int,
        proof: Sequence[bytes],
        checkpoint: str,
        kind: str = "",
        duplicate: bool = False,
    ) -> Receipt:
        return cls(index, sha256, tree_size, tuple(proof), checkpoint, kind, duplicate)

    def to_dict(self) -> dict[str, Any]:
        # The same keys as the gateway's receipts (clearance.gateway.service).
        return {
            "log_index": self.index,
            "sha256": self.sha256,
            "tree_size": self.tree_size,
            "inclusion_proof": [h.hex() for h in self.inclusion_proof],
            "checkpoint": self.checkpoint,
            "kind": self.kind,
            "duplicate": self.duplicate,
        }

    @classmethod
    def from_dict(cls, value: object) -> Receipt:
        if not isinstance(value, dict):
            raise AttestFormatError("receipt is not a JSON object")
        try:
            return cls(
                int(value["log_index"] if "log_index" in value else value["index"]),
                str(value["sha256"]),
                int(value["tree_size"]),
                tuple(bytes.fromhex(h) for h in value["inclusion_proof"]),
                str(value["checkpoint"]),
                str(value.get("kind", "")),
                bool(value.get("duplicate", False)),
            )
        except (KeyError, TypeError, ValueError):
            raise AttestFormatError("receipt is missing or has malformed fields") from None

"""One log entry for its permalink page: what it is, its statement decoded, who signed it
(and in which trust-root role), and its inclusion proof under the current checkpoint."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from clearance.attest import TrustRoot, key_id
from clearance.audit.entries import examine_entry, key_roles
from clearance.log.merkle import leaf_hash


@dataclass(frozen=True)
class SignatureView:
    keyid: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class EntryPage:
    index: int
    kind: str
    sha256: str
    leaf_hash: str
    problems: tuple[str, ...]
    signatures: tuple[SignatureView, ...]
    payload_type: str
    body: str
    release_sha256: str | None
    size: int
    proof: tuple[str, ...]
    checkpoint: str


def _pretty(data: bytes) -> str:
    try:
        return json.dumps(json.loads(data), indent=2, sort_keys=True, ensure_ascii=False)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return base64.b64encode(data[:4096]).decode() + ("…" if len(data) > 4096 else "")


def entry_page(
    index: int, data: bytes, root: TrustRoot, size: int, proof: list[bytes], checkpoint: bytes
) -> EntryPage:
    view = examine_entry(index, data, root)
    roles = key_roles(root)
    signatures: list[SignatureView] = []
    payload_type, body = "", _pretty(data)
    if view.envelope is not None:
        payload_type = view.envelope.payload_type
        body = _pretty(view.envelope.payload)
        for sig in view.envelope.signatures:
            held = tuple(
                sorted(r for r, keys in roles.items() if any(key_id(k) == sig.keyid for k in keys))
            )
            signatures.append(SignatureView(sig.keyid, held or ("unknown key",)))
    release = None
    if view.verdict is not None:
        release = view.verdict.release_sha256
    elif isinstance(view.record.get("release"), str):
        release = str(view.record["release"])
    elif view.release is not None:
        release = view.envelope_sha256 or view.sha256
    return EntryPage(
        index=index,
        kind=view.kind,
        sha256=view.sha256,
        leaf_hash=leaf_hash(data).hex(),
        problems=tuple(f.message for f in view.findings),
        signatures=tuple(signatures),
        payload_type=payload_type,
        body=body,
        release_sha256=release,
        size=size,
        proof=tuple(h.hex() for h in proof),
        checkpoint=checkpoint.decode(errors="replace"),
    )


def summary_text(summary: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in summary.items())

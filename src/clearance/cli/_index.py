"""The verifiable index of a local log directory (``LOGDIR/trust-root.json`` names its root)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from clearance.attest import TrustRoot, TrustRootFormatError
from clearance.cli._common import read_bytes
from clearance.index import LogIndex

TRUST_ROOT_IN_LOG = "trust-root.json"


def log_trust_root(logdir: Path) -> TrustRoot | None:
    """The trust root a local log's index is computed under, when the log names one."""
    path = Path(logdir) / TRUST_ROOT_IN_LOG
    if not path.is_file():
        return None
    try:
        return TrustRoot.from_bytes(read_bytes(path, "trust root"))
    except TrustRootFormatError as exc:
        raise TrustRootFormatError(f"{path}: {exc}") from None


def index_for(root: TrustRoot | None, entries: Sequence[bytes] | None = None) -> LogIndex | None:
    """A :class:`LogIndex` under ``root`` (brought to ``entries`` when given)."""
    if root is None:
        return None
    index = LogIndex(root)
    if entries is not None:
        index.extend(entries)
    return index

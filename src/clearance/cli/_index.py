"""The verifiable index of a local log directory (``LOGDIR/trust-root.json`` names its root)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from clearance.attest import TrustRoot, TrustRootFormatError
from clearance.cli._common import read_bytes
from clearance.errors import BadInput
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


def record_log_trust_root(logdir: Path, root: TrustRoot) -> None:
    """Write ``LOGDIR/trust-root.json`` (atomically): the root the log's index is computed
    under, for later ``submit``, ``log append`` and ``bundle --log``."""
    path = Path(logdir) / TRUST_ROOT_IN_LOG
    if not Path(logdir).is_dir():
        return  # not a log: opening it reports that
    tmp = path.with_name(f".{TRUST_ROOT_IN_LOG}.tmp")
    try:
        tmp.write_text(root.to_json())
        tmp.replace(path)
    except OSError as exc:
        raise BadInput(f"{path}: cannot record the log's trust root: {exc.strerror}") from None


def index_for(root: TrustRoot | None, entries: Sequence[bytes] | None = None) -> LogIndex | None:
    """A :class:`LogIndex` under ``root`` (brought to ``entries`` when given)."""
    if root is None:
        return None
    index = LogIndex(root)
    if entries is not None:
        index.extend(entries)
    return index

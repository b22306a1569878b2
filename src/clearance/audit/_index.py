"""The auditor's recomputation of the verifiable index (:mod:`clearance.index`).

The auditor replays every entry into its own :class:`~clearance.index.LogIndex`
under the pinned trust root and, once it has read up to the checkpoint's size,
compares its root with the one the checkpoint commits to
(``audit.index-root-mismatch``: endpoints would be shown a false state).  On
the way it flags a rollout the log records for a release the index does not
show approved, or shows revoked (``audit.rollout-unapproved``): the gateway
distributed something the inspectors did not approve.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable

from clearance._untrusted import load_json
from clearance.attest import TrustRoot
from clearance.audit.rules import AuditFinding
from clearance.errors import ClearanceError
from clearance.index import LogIndex, index_root_of, release_key
from clearance.index.state import TRANSITION_TYPE
from clearance.log.checkpoint import Checkpoint

_DISTRIBUTING = ("started", "advanced", "resumed", "completed")


class IndexAudit:
    """Feeds entries in log order; reports what the index shows wrong."""

    def __init__(self, trust_root: TrustRoot, report: Callable[[AuditFinding], None]) -> None:
        self._index = LogIndex(trust_root)
        self._report = report

    @property
    def size(self) -> int:
        return self._index.size

    def catch_up(self, entries: Iterable[bytes]) -> None:
        """Replay entries already audited on an earlier run (no findings for them)."""
        self._index.extend(entries)

    def add(self, index: int, data: bytes) -> None:
        if index != self._index.size:
            return  # out of step (a partial replay): the root comparison will not run
        self._index.extend([data])
        if b"rollout-transition" not in data:
            return
        try:
            raw = load_json(data, f"log entry {index}")
        except ClearanceError:
            return
        if not isinstance(raw, dict) or raw.get("_type") != TRANSITION_TYPE:
            return
        event, release = raw.get("event"), raw.get("release")
        if event not in _DISTRIBUTING or not isinstance(release, str):
            return
        record = self._index.record(release_key(release))
        state = None if record is None else record.get("state")
        revoked = None if record is None else record.get("revoked")
        if state == "approved" and revoked is None:
            return
        verdicts = [] if record is None else record.get("verdicts") or []
        if not verdicts:
            status = "no verdict"
        else:
            last = verdicts[-1]
            status = f"verdict {last.get('decision')!r} at entry {last.get('logIndex')}"
        if record is None:
            status += " (not an admitted release of the log)"
        elif revoked is not None:
            status += f" and was revoked at entry {revoked.get('logIndex')}"
        else:
            approvers = len(record.get("approvers") or [])
            status += f" ({state}: {approvers} distinct trusted inspector key(s) approved)"
        self._report(
            AuditFinding(
                "audit.rollout-unapproved",
                f"entry {index}: rollout {event} in ring {raw.get('ring', '?')!r} for release "
                f"{release[:16]}… which has {status}",
                index,
                {
                    "release": release,
                    "event": event,
                    "ring": raw.get("ring"),
                    "index_record": record,
                },
            )
        )

    def check_root(self, checkpoint: Checkpoint) -> None:
        """Compare the recomputed root with the checkpoint's, once at its size."""
        if self._index.size != checkpoint.size:
            return
        try:
            committed = index_root_of(checkpoint)
        except ClearanceError:
            return  # a log without an index: endpoints refuse its bundles, nothing is misstated
        computed = self._index.root()
        if committed != computed:
            self._report(
                AuditFinding(
                    "audit.index-root-mismatch",
                    f"the checkpoint of size {checkpoint.size} commits to an index root that "
                    "is not the one the log's entries give",
                    None,
                    {
                        "size": checkpoint.size,
                        "committed": base64.b64encode(committed).decode(),
                        "recomputed": base64.b64encode(computed).decode(),
                    },
                )
            )

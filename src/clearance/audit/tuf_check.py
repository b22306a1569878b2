"""TUF follows the log: every target the gateway's TUF repository publishes must name a
release the log holds, approved and neither rejected nor revoked.

The targets metadata is read the way a TUF client reads it (timestamp -> snapshot ->
targets, each signature checked against the repository's root metadata), so what is
compared is what a stock ``tuf.ngclient`` updater would download.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx
from tuf.api.exceptions import RepositoryError
from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp  # type: ignore[attr-defined]

from clearance.attest import APPROVED, REJECTED
from clearance.audit.errors import LogUnavailable
from clearance.audit.rules import AuditFinding
from clearance.audit.state import AuditState

#: Reads the published targets: target path -> release envelope digest (None: unnamed).
TargetsReader = Callable[[], Mapping[str, str | None]]


def _get(client: httpx.Client, url: str) -> bytes:
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        raise LogUnavailable(f"{url}: {exc}") from None
    if response.status_code != 200:
        raise LogUnavailable(f"{url}: HTTP {response.status_code}")
    return response.content


def _release_of(custom: Any) -> str | None:
    if isinstance(custom, dict):
        clearance = custom.get("clearance")
        if isinstance(clearance, dict) and isinstance(clearance.get("release_sha256"), str):
            return str(clearance["release_sha256"])
    return None


def tuf_targets_reader(server: str, client: httpx.Client | None = None) -> TargetsReader:
    """A reader of ``server``'s TUF targets, each metadata file checked as a TUF client does."""
    base = server.rstrip("/") + "/tuf/metadata/"
    http = client or httpx.Client(timeout=30.0)

    def read() -> Mapping[str, str | None]:
        try:
            first = http.get(base + "1.root.json")
        except httpx.HTTPError as exc:
            raise LogUnavailable(f"{base}1.root.json: {exc}") from None
        if first.status_code == 404:
            return {}  # this server publishes no TUF repository: nothing to compare
        try:
            root: Metadata[Root] = Metadata.from_bytes(_get(http, base + "1.root.json"))
            version = 1
            while True:  # follow the root chain as a client would
                try:
                    data = _get(http, f"{base}{version + 1}.root.json")
                except LogUnavailable:
                    break
                new: Metadata[Root] = Metadata.from_bytes(data)
                root.verify_delegate(Root.type, new)
                new.verify_delegate(Root.type, new)
                root, version = new, version + 1
            timestamp: Metadata[Timestamp] = Metadata.from_bytes(
                _get(http, base + "timestamp.json")
            )
            root.verify_delegate(Timestamp.type, timestamp)
            snap_version = timestamp.signed.snapshot_meta.version
            snapshot: Metadata[Snapshot] = Metadata.from_bytes(
                _get(http, f"{base}{snap_version}.snapshot.json")
            )
            root.verify_delegate(Snapshot.type, snapshot)
            targets_version = snapshot.signed.meta["targets.json"].version
            targets: Metadata[Targets] = Metadata.from_bytes(
                _get(http, f"{base}{targets_version}.targets.json")
            )
            root.verify_delegate(Targets.type, targets)
        except (RepositoryError, ValueError, KeyError) as exc:
            raise LogUnavailable(f"TUF metadata at {base}: {exc}") from None
        return {
            path: _release_of(target.unrecognized_fields.get("custom"))
            for path, target in targets.signed.targets.items()
        }

    return read


def tuf_findings(
    targets: Mapping[str, str | None],
    state: AuditState,
    revoked: Callable[[str], bool] = lambda _sha: False,
) -> list[AuditFinding]:
    """A finding per published target whose release the log does not approve."""
    out: list[AuditFinding] = []
    for path, release in sorted(targets.items()):
        problem: str | None = None
        if release is None:
            problem = "names no release"
        elif state.release(release) is None:
            problem = f"names release {release[:16]}…, which the log does not hold"
        else:
            decisions = [v.decision for v in state.verdicts_for(release)]
            if REJECTED in decisions:
                problem = f"names release {release[:16]}…, which an inspector rejected in the log"
            elif revoked(release):
                problem = f"names release {release[:16]}…, which the policy authority revoked"
            elif APPROVED not in decisions:
                problem = f"names release {release[:16]}…, which no logged verdict approves"
        if problem is not None:
            out.append(
                AuditFinding(
                    "audit.tuf-not-approved",
                    f"TUF target {path} {problem}",
                    None,
                    {"target": path, "release_sha256": release},
                )
            )
    return out

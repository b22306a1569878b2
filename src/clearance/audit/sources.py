"""Where the auditor reads from: the log's public tiles, and release artifacts.

The log is read only through its C2SP tlog-tiles files (``LOGDIR/public`` or
``URL/log/``), exactly as any outsider would.  Artifacts come from a local
folder or from the gateway's TUF targets (``URL/tuf/targets/<product>/<version>/
<sha256>.<name>``, consistent-snapshot names); a file is used only when its
SHA-256 is the one the release states.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

import httpx

from clearance.attest import Artifact, Release
from clearance.log.tiles import DirectoryTileSource, HttpTileSource, TileSource


def log_source(logdir: Path | None, server: str | None) -> TileSource:
    """The tiles of ``LOGDIR/public`` or of ``SERVER/log/``."""
    if server is not None:
        return HttpTileSource(server.rstrip("/") + "/log/")
    assert logdir is not None
    return DirectoryTileSource(logdir / "public")


class ArtifactSource(Protocol):
    """Finds the bytes of one artifact of a release, or returns None."""

    def fetch(self, release: Release, artifact: Artifact) -> bytes | None: ...


def _matches(data: bytes, artifact: Artifact) -> bool:
    return len(data) == artifact.size and hashlib.sha256(data).hexdigest() == artifact.sha256


class DirectoryArtifacts:
    """Artifacts in a folder: ``DIR/<name>``, ``DIR/<product>/<version>/<name>`` or ``DIR/<sha256>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def fetch(self, release: Release, artifact: Artifact) -> bytes | None:
        candidates = (
            self.root / artifact.name,
            self.root / release.product / release.version / artifact.name,
            self.root / artifact.sha256,
        )
        for path in candidates:
            try:
                if not path.resolve().is_relative_to(self.root.resolve()):
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            if _matches(data, artifact):
                return data
        return None


class TufTargetArtifacts:
    """Artifacts from the gateway's TUF targets directory over HTTP."""

    def __init__(self, server: str, client: httpx.Client | None = None) -> None:
        self._base = server.rstrip("/") + "/tuf/targets/"
        self._client = client or httpx.Client(timeout=60.0)

    def fetch(self, release: Release, artifact: Artifact) -> bytes | None:
        url = f"{self._base}{release.product}/{release.version}/{artifact.sha256}.{artifact.name}"
        try:
            response = self._client.get(url)
        except httpx.HTTPError:
            return None
        if response.status_code != 200 or not _matches(response.content, artifact):
            return None
        return response.content

"""The endpoint's memory between verifications (``--state DIR``).

``DIR/state.json`` holds the last installed version per product and channel
and the last checkpoint seen per log origin::

    {"installed": {product: {channel: version}}, "checkpoints": {origin: note text}}

It is replaced atomically (write to a temporary file, then rename).  When a
split view is detected, both checkpoints are written to
``DIR/split-view/<unix time>-<old size>-<new size>/{seen,presented}.checkpoint``
and kept: they are the proof to show anyone that the log equivocated.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from clearance._untrusted import UntrustedInputError, load_json
from clearance.client.errors import StateError

STATE_FILE = "state.json"


@dataclass
class ClientState:
    """Installed versions and last checkpoints; :meth:`save` writes them back to ``directory``."""

    directory: Path
    installed: dict[str, dict[str, str]] = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: str | Path) -> ClientState:
        path = Path(directory)
        file = path / STATE_FILE
        if not file.exists():
            return cls(path)
        try:
            value = load_json(file.read_bytes(), "client state")
        except (OSError, UntrustedInputError) as exc:
            raise StateError(f"{file}: cannot read client state: {exc}") from None
        installed = value.get("installed", {}) if isinstance(value, dict) else None
        checkpoints = value.get("checkpoints", {}) if isinstance(value, dict) else None
        if not (
            isinstance(installed, dict)
            and all(
                isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
                for v in installed.values()
            )
            and isinstance(checkpoints, dict)
            and all(isinstance(v, str) for v in checkpoints.values())
        ):
            raise StateError(f"{file}: client state has an unexpected shape")
        return cls(path, installed, checkpoints)

    def installed_version(self, product: str, channel: str) -> str | None:
        return self.installed.get(product, {}).get(channel)

    def save(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            body = json.dumps(
                {"installed": self.installed, "checkpoints": self.checkpoints},
                indent=2,
                sort_keys=True,
            )
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".state-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(body + "\n")
                out.flush()
                os.fsync(out.fileno())
            Path(tmp).replace(self.directory / STATE_FILE)
        except OSError as exc:
            raise StateError(f"{self.directory}: cannot write client state: {exc}") from None

    def keep_split_view(self, seen: bytes, presented: bytes, old_size: int, new_size: int) -> Path:
        """Write both checkpoints as evidence and return the evidence directory."""
        target = self.directory / "split-view" / f"{int(time.time())}-{old_size}-{new_size}"
        try:
            target.mkdir(parents=True, exist_ok=True)
            (target / "seen.checkpoint").write_bytes(seen)
            (target / "presented.checkpoint").write_bytes(presented)
        except OSError as exc:
            raise StateError(f"{target}: cannot keep split-view evidence: {exc}") from None
        return target

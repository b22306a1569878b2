"""The endpoint's memory between verifications (``--state DIR``).

``DIR/state.json`` holds the last installed version per product and channel,
the channel each product is pinned to, the channel epoch (number of logged
channel resets) the installed version belongs to, and the last checkpoint
seen per log origin::

    {"installed": {product: {channel: version}}, "pins": {product: channel},
     "epochs": {product: {channel: int}}, "checkpoints": {origin: note text}}

The verifier never writes it: it returns a :class:`StateUpdate` that the
command applies (:meth:`ClientState.apply`) and saves once every check,
the withholding check included, has passed.  It is replaced atomically (write to a temporary file, then rename).  When a
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
from clearance.attest.version import Version
from clearance.client.errors import StateError

STATE_FILE = "state.json"


@dataclass(frozen=True)
class StateUpdate:
    """What one successful verification changes in the client state."""

    product: str
    channel: str
    version: str
    epoch: int
    origin: str
    checkpoint: str
    checkpoint_size: int


@dataclass
class ClientState:
    """Installed versions, pins and last checkpoints; :meth:`save` writes them to ``directory``."""

    directory: Path
    installed: dict[str, dict[str, str]] = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)
    pins: dict[str, str] = field(default_factory=dict)
    epochs: dict[str, dict[str, int]] = field(default_factory=dict)

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
        pins = value.get("pins")
        if pins is None:
            # A state written before pinning: pin each product to its only channel.
            pins = {p: next(iter(c)) for p, c in installed.items() if len(c) == 1}
        epochs = value.get("epochs", {})
        if not (
            isinstance(pins, dict)
            and all(isinstance(v, str) for v in pins.values())
            and isinstance(epochs, dict)
            and all(
                isinstance(v, dict)
                and all(isinstance(x, int) and not isinstance(x, bool) for x in v.values())
                for v in epochs.values()
            )
        ):
            raise StateError(f"{file}: client state has unexpected pins or epochs")
        return cls(path, installed, checkpoints, pins, epochs)

    def installed_version(self, product: str, channel: str) -> str | None:
        return self.installed.get(product, {}).get(channel)

    def epoch(self, product: str, channel: str) -> int:
        return self.epochs.get(product, {}).get(channel, 0)

    def apply(self, update: StateUpdate, seen_size: int | None = None) -> None:
        """Record a verified installation (in memory; :meth:`save` writes it).

        ``seen_size`` is the size of the checkpoint stored for the origin: a
        smaller checkpoint than it never replaces it."""
        self.pins[update.product] = update.channel
        installed = self.installed.setdefault(update.product, {})
        last = installed.get(update.channel)
        epochs = self.epochs.setdefault(update.product, {})
        newer_epoch = update.epoch > epochs.get(update.channel, 0)
        if last is None or newer_epoch or Version.parse(update.version) > Version.parse(last):
            installed[update.channel] = update.version
        epochs[update.channel] = max(update.epoch, epochs.get(update.channel, 0))
        if seen_size is None or update.checkpoint_size >= seen_size:
            self.checkpoints[update.origin] = update.checkpoint

    def save(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            body = json.dumps(
                {
                    "installed": self.installed,
                    "checkpoints": self.checkpoints,
                    "pins": self.pins,
                    "epochs": self.epochs,
                },
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

"""Approved releases published as a TUF 1.0 repository (python-tuf ``Metadata`` API).

Layout under ``DIR`` (served at ``/tuf/``)::

    metadata/<N>.root.json   metadata/timestamp.json
    metadata/<V>.snapshot.json   metadata/<V>.targets.json
    targets/<sha256>.<name>         (consistent snapshots: one file per digest)

Each target is ``<product>/<version>/<artifact>``; its ``custom.clearance``
names the release envelope digest, its log index and where to fetch the
Clearance bundle, so a TUF client that also speaks Clearance verifies the
bundle before installing.  One Ed25519 key per role, kept in ``DIR/keys``
(mode 0600).  Files are written to a temporary name and renamed, and the
timestamp is written last, so a reader never sees a half-published version.

With a shared store (:class:`TufShare`, the gateway's PostgreSQL database for
replicas on several machines) ``DIR`` is this replica's copy: each change
first brings it up to the store's, signs the next versions on top, and
stores what it wrote, all under the store's lock; :meth:`TufRepository.sync`
refreshes the copy.  The keys stay in ``DIR/keys`` on every replica (copied
from the data directory ``gateway init`` made): signing keys are not put in
the database.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, SSlibKey  # type: ignore[attr-defined]
from tuf.api.metadata import (  # type: ignore[attr-defined]  # re-exported, not in __all__
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from clearance.attest._fields import relative_path
from clearance.attest.errors import StatementFormatError
from clearance.gateway.errors import GatewayInputError

ROLES = ("root", "targets", "snapshot", "timestamp")


@dataclass(frozen=True)
class Expiry:
    """How long each role's metadata stays valid after it is signed."""

    root: timedelta = timedelta(days=365)
    targets: timedelta = timedelta(days=90)
    snapshot: timedelta = timedelta(days=7)
    timestamp: timedelta = timedelta(days=1)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def _load_or_create_signer(path: Path) -> CryptoSigner:
    if path.exists():
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise GatewayInputError(f"{path}: not an Ed25519 private key")
    else:
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    return CryptoSigner(private, SSlibKey.from_crypto(private.public_key()))


def release_of(target: TargetFile) -> str | None:
    """The release envelope digest a target's ``custom.clearance`` names, if any."""
    custom = target.unrecognized_fields.get("custom")
    if not isinstance(custom, dict):
        return None
    clearance = custom.get("clearance")
    if not isinstance(clearance, dict):
        return None
    sha = clearance.get("release_sha256")
    return sha if isinstance(sha, str) else None


class TufShare(Protocol):
    """Where replicas share the repository's files (see the module documentation)."""

    def exclusive(self, directory: Path) -> AbstractContextManager[None]: ...
    def pull(self, directory: Path) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class PublishedTarget:
    path: str
    length: int
    sha256: str


class TufRepository:
    """The gateway's TUF repository: create once, then add targets and re-sign."""

    def __init__(
        self, directory: Path, expiry: Expiry | None = None, *, shared: TufShare | None = None
    ) -> None:
        self.directory = directory
        self._shared = shared
        self.metadata_dir = directory / "metadata"
        self.targets_dir = directory / "targets"
        self.expiry = expiry or Expiry()
        self._lock = threading.Lock()
        for sub in (self.metadata_dir, self.targets_dir, directory / "keys"):
            sub.mkdir(parents=True, exist_ok=True)
        (directory / "keys").chmod(0o700)
        self._signers = {
            role: _load_or_create_signer(directory / "keys" / f"{role}.pem") for role in ROLES
        }
        self._serializer = JSONSerializer(compact=False)
        try:
            with self._lock, self._changing():
                if not (self.metadata_dir / "1.root.json").exists():
                    self._bootstrap()
                self._check_keys()
        except BaseException:
            self.close()
            raise

    def _changing(self) -> AbstractContextManager[None]:
        """One change (the lock is held): exclusive in the shared store, if there is one."""
        if self._shared is None:
            return nullcontext()
        return self._shared.exclusive(self.directory)

    def _check_keys(self) -> None:
        """This replica's keys must be the ones the (shared) root names."""
        root = Metadata[Root].from_file(str(self.metadata_dir / "1.root.json")).signed
        for role in ROLES:
            if self._signers[role].public_key.keyid not in root.roles[role].keyids:
                raise GatewayInputError(
                    f"{self.directory / 'keys'}: the {role} key is not the one the TUF root "
                    "names; replicas need the keys of the data directory `gateway init` made"
                )

    def sync(self) -> None:
        """Bring this copy up to the shared store's (nothing to do without one)."""
        if self._shared is not None:
            with self._lock:
                self._shared.pull(self.directory)

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()

    # -- reading -------------------------------------------------------------

    def _latest(self, role: str) -> Metadata[Any]:
        if role == "timestamp":
            return Metadata.from_file(str(self.metadata_dir / "timestamp.json"))
        versions = sorted(
            int(p.name.split(".", 1)[0]) for p in self.metadata_dir.glob(f"*.{role}.json")
        )
        return Metadata.from_file(str(self.metadata_dir / f"{versions[-1]}.{role}.json"))

    def root_bytes(self, version: int = 1) -> bytes:
        return (self.metadata_dir / f"{version}.root.json").read_bytes()

    def targets(self) -> dict[str, TargetFile]:
        with self._lock:
            if self._shared is not None:
                self._shared.pull(self.directory)
            signed = self._latest("targets").signed
            assert isinstance(signed, Targets)
            return dict(signed.targets)

    # -- writing -------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    def _sign_write(self, md: Metadata[Any], role: str, filename: str) -> None:
        md.signatures.clear()
        md.sign(self._signers[role])
        _write_atomic(self.metadata_dir / filename, md.to_bytes(self._serializer))

    def _bootstrap(self) -> None:
        now = self._now()
        root = Root(expires=now + self.expiry.root, consistent_snapshot=True)
        for role in ROLES:
            root.add_key(self._signers[role].public_key, role)
        self._sign_write(Metadata(root), "root", "1.root.json")
        targets: Metadata[Targets] = Metadata(Targets(expires=now + self.expiry.targets))
        self._sign_write(targets, "targets", "1.targets.json")
        snapshot: Metadata[Snapshot] = Metadata(Snapshot(expires=now + self.expiry.snapshot))
        snapshot.signed.meta["targets.json"] = MetaFile(version=1)
        self._sign_write(snapshot, "snapshot", "1.snapshot.json")
        self._write_timestamp(1, now)

    def _write_timestamp(self, snapshot_version: int, now: datetime) -> None:
        path = self.metadata_dir / "timestamp.json"
        version = 1
        if path.exists():
            version = Metadata.from_file(str(path)).signed.version + 1
        ts = Timestamp(
            version=version,
            expires=now + self.expiry.timestamp,
            snapshot_meta=MetaFile(version=snapshot_version),
        )
        self._sign_write(Metadata(ts), "timestamp", "timestamp.json")

    def publish(
        self, files: Mapping[str, bytes], custom: Mapping[str, Mapping[str, Any]]
    ) -> list[PublishedTarget]:
        """Add (or replace) targets: ``files`` maps target path to content, ``custom`` to
        each target's ``custom`` object.  Bumps targets, snapshot and timestamp."""
        for name in files:
            try:
                relative_path(name, "target path")
            except StatementFormatError as exc:
                raise GatewayInputError(str(exc)) from exc
        with self._lock, self._changing():
            now = self._now()
            targets_md = self._latest("targets")
            signed = targets_md.signed
            assert isinstance(signed, Targets)
            out: list[PublishedTarget] = []
            for name, content in files.items():
                digest = hashlib.sha256(content).hexdigest()
                stored = self.targets_dir / Path(name).parent / f"{digest}.{Path(name).name}"
                stored.parent.mkdir(parents=True, exist_ok=True)
                if not stored.exists():
                    _write_atomic(stored, content)
                target = TargetFile(
                    length=len(content),
                    hashes={"sha256": digest},
                    path=name,
                    unrecognized_fields={"custom": dict(custom.get(name, {}))},
                )
                signed.targets[name] = target
                out.append(PublishedTarget(name, len(content), digest))
            self._bump(targets_md, now)
            return out

    def withdraw(self, release_sha256: str) -> list[str]:
        """Drop every target of a release (rejected or revoked): the next targets version
        lacks them, so a stock TUF client that refreshes no longer finds them and refuses to
        download them.  Targets are matched by ``custom.clearance.release_sha256``; the stored
        files stay (older consistent snapshots name them).  Returns the paths removed;
        nothing is re-signed when the release had none (idempotent)."""
        with self._lock, self._changing():
            targets_md = self._latest("targets")
            signed = targets_md.signed
            assert isinstance(signed, Targets)
            gone = sorted(
                path
                for path, target in signed.targets.items()
                if release_of(target) == release_sha256
            )
            if not gone:
                return []
            for path in gone:
                del signed.targets[path]
            self._bump(targets_md, self._now())
            return gone

    def _bump(self, targets_md: Metadata[Any], now: datetime) -> None:
        """Sign the next targets version, then snapshot, then timestamp (the lock is held)."""
        signed = targets_md.signed
        assert isinstance(signed, Targets)
        signed.version += 1
        signed.expires = now + self.expiry.targets
        self._sign_write(targets_md, "targets", f"{signed.version}.targets.json")
        snapshot_md = self._latest("snapshot")
        snap = snapshot_md.signed
        assert isinstance(snap, Snapshot)
        snap.version += 1
        snap.expires = now + self.expiry.snapshot
        snap.meta["targets.json"] = MetaFile(version=signed.version)
        self._sign_write(snapshot_md, "snapshot", f"{snap.version}.snapshot.json")
        self._write_timestamp(snap.version, now)

    def refresh_timestamp(self, *, if_expiring_within: timedelta | None = None) -> bool:
        """Re-sign the timestamp (same snapshot) so that clients keep updating; True if done."""
        if if_expiring_within is not None:  # the common case (every tick): no shared lock
            with self._lock:
                if not self._expiring(if_expiring_within):
                    return False
        with self._lock, self._changing():
            if if_expiring_within is not None and not self._expiring(if_expiring_within):
                return False  # another replica refreshed it meanwhile
            current = self._latest("timestamp").signed
            assert isinstance(current, Timestamp)
            self._write_timestamp(current.snapshot_meta.version, self._now())
            return True

    def _expiring(self, within: timedelta) -> bool:
        current = self._latest("timestamp").signed
        assert isinstance(current, Timestamp)
        return current.expires - self._now() <= within

"""Key files on disk: ``NAME.key`` (mode 0600) and ``NAME.pub``."""

from __future__ import annotations

import os
from pathlib import Path

from clearance.keys.ed25519 import Signer, Verifier
from clearance.keys.errors import KeyFormatError


def generate_key_files(name: str, directory: Path) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair; never overwrite an existing file."""
    signer = Signer.generate(name)
    # Names like "example.com/log" are usual for logs: the key goes to DIR/example.com/log.key.
    parts = name.split("/")
    if name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise KeyFormatError(f"key name {name!r} cannot be used as a file name under {directory}")
    private_path = directory / f"{name}.key"
    public_path = directory / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFormatError(f"{path}: already exists, refusing to overwrite")
    try:
        private_path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL makes the no-overwrite promise hold even against a racing writer.
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(signer.to_string() + "\n")
        fd = os.open(public_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.fchmod(fd, 0o644)  # published: world-readable whatever the umask
        with os.fdopen(fd, "w") as out:
            out.write(signer.verifier.to_string() + "\n")
    except OSError as exc:
        raise KeyFormatError(
            f"{exc.filename or directory}: cannot write key: {exc.strerror}"
        ) from None
    return private_path, public_path


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyFormatError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFormatError(f"{path}: cannot read {what}: {exc}") from None


_PRIVATE_PREFIX = "PRIVATE+KEY+"


def load_signer(path: str | Path) -> Signer:
    p = Path(path)
    text = _read(p, "private key")
    if not text.lstrip().startswith(_PRIVATE_PREFIX) and text.count("+") >= 2:
        raise KeyFormatError(
            f"{p}: this is a public key (verifier line); a private key (.key) is expected here"
        )
    try:
        return Signer.parse(text)
    except KeyFormatError as exc:
        if str(exc).startswith(str(p)):
            raise
        raise KeyFormatError(f"{p}: {exc}") from None


def load_verifier(path: str | Path) -> Verifier:
    p = Path(path)
    text = _read(p, "public key")
    if text.lstrip().startswith(_PRIVATE_PREFIX):
        # Say so, and never echo the private key's text into an error message or a log.
        raise KeyFormatError(
            f"{p}: this is a private key; a public key (.pub) is expected here "
            "(keep the private key secret: pass NAME.pub)"
        )
    try:
        return Verifier.parse(text)
    except KeyFormatError as exc:
        if str(exc).startswith(str(p)):
            raise
        raise KeyFormatError(f"{p}: {exc}") from None

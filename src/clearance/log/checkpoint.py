"""C2SP tlog-checkpoint: the signed statement of a log's size and root hash.

The checkpoint body is ``<origin>\\n<size>\\n<base64 root hash>\\n`` followed
by optional extension lines; it is signed as a C2SP signed note by the log
key and may carry ``cosignature/v1`` lines from witnesses.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from clearance.keys import (
    Note,
    NoteFormatError,
    SignatureError,
    Signer,
    Verifier,
    sign_note,
    verify_note,
)
from clearance.keys.note import check_note_text
from clearance.log.errors import CheckpointFormatError, CheckpointSignatureError
from clearance.log.merkle import HASH_SIZE

#: Reject absurd sizes early; a tree of 2**63 leaves cannot exist.
MAX_TREE_SIZE = (1 << 63) - 1


def check_origin(origin: str) -> None:
    """An origin is one non-empty line without control characters or surrounding spaces."""
    if not origin:
        raise CheckpointFormatError("checkpoint origin is empty")
    if origin != origin.strip():
        raise CheckpointFormatError(f"checkpoint origin {origin!r} has surrounding spaces")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in origin):
        raise CheckpointFormatError(f"checkpoint origin {origin!r} contains a control character")


class CheckpointExtension(Protocol):
    """Commits to the log's entries in extra checkpoint lines (e.g. the verifiable index).

    The log applies every appended batch (``extend``) before signing and puts
    ``lines()`` after the root hash.  When its ``size`` is behind the log's (another
    process appended), the log applies the missing stored entries with ``extend_to``,
    which must be atomic against other callers of it; when it is ahead (a batch that
    failed after being applied), the log calls ``rebuild`` with every stored entry.
    """

    @property
    def size(self) -> int: ...

    def rebuild(self, entries: Iterable[bytes]) -> None: ...

    def extend(self, entries: Iterable[bytes]) -> None: ...

    def extend_to(self, size: int, read: Callable[[int, int], Iterable[bytes]]) -> None: ...

    def lines(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Checkpoint:
    """The body of a checkpoint: origin line, tree size, root hash and extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_origin(self.origin)
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointFormatError(f"checkpoint size {self.size} is out of range")
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointFormatError("checkpoint root hash must be 32 bytes")
        for line in self.extensions:
            if not line or "\n" in line:
                raise CheckpointFormatError(f"checkpoint extension line {line!r} is malformed")

    def to_text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    def to_bytes(self) -> bytes:
        return self.to_text().encode()

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        try:
            check_note_text(text)
        except NoteFormatError as exc:
            raise CheckpointFormatError(f"checkpoint: {exc}") from None
        return cls._from_checked_text(text)

    @classmethod
    def from_note(cls, note: Note) -> Checkpoint:
        """The checkpoint a parsed note carries (its text was checked when the note was built)."""
        return cls._from_checked_text(note.text)

    @classmethod
    def _from_checked_text(cls, text: str) -> Checkpoint:
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointFormatError(
                f"checkpoint has {len(lines)} lines, expected origin, size and root hash"
            )
        origin, size_text, root_text, *extensions = lines
        # The spec wants the canonical decimal form: ASCII digits, no sign, no leading zero.
        if (
            not size_text.isascii()
            or not size_text.isdigit()
            or (len(size_text) > 1 and size_text[0] == "0")
            or len(size_text) > 19
        ):
            raise CheckpointFormatError(
                f"checkpoint size {size_text[:30]!r} is not a decimal number"
            )
        try:
            root = base64.b64decode(root_text, validate=True)
        except (binascii.Error, ValueError):
            raise CheckpointFormatError("checkpoint root hash is not valid base64") from None
        if base64.b64encode(root).decode() != root_text:
            raise CheckpointFormatError("checkpoint root hash is not canonical base64")
        return cls(origin, int(size_text), root, tuple(extensions))

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        try:
            return cls.from_text(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise CheckpointFormatError("checkpoint is not UTF-8 text") from None


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> Note:
    """Sign the checkpoint body with the log key (a C2SP signed note)."""
    return sign_note(cp.to_text(), [signer])


def open_checkpoint(
    data: bytes, log_verifier: Verifier, origin: str | None = None
) -> tuple[Checkpoint, Note]:
    """Parse a signed checkpoint and check the log's signature and origin.

    ``origin`` defaults to the log key's name, as in C2SP tlog-checkpoint.
    Malformed data raises :class:`CheckpointFormatError` (bad input); a missing
    or invalid log signature, or another origin, raises
    :class:`CheckpointSignatureError`.
    """
    try:
        note = Note.from_bytes(data)
    except NoteFormatError as exc:
        raise CheckpointFormatError(f"checkpoint: {exc}") from None
    checkpoint = Checkpoint.from_note(note)
    try:
        verify_note(note, [log_verifier])
    except SignatureError as exc:
        raise CheckpointSignatureError(f"checkpoint of {checkpoint.origin!r}: {exc}") from None
    expected = log_verifier.name if origin is None else origin
    if checkpoint.origin != expected:
        raise CheckpointSignatureError(
            f"checkpoint is for origin {checkpoint.origin!r}, expected {expected!r}"
        )
    return checkpoint, note

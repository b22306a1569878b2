"""C2SP signed notes, and the ``cosignature/v1`` signatures of C2SP tlog-cosignature.

A note is UTF-8 text ending in a newline, a blank line, then one signature
line per signer: ``— <name> <base64(key id || signature)>``.  Signatures by
keys the reader does not know are kept, not rejected, so that a checkpoint
can carry cosignatures from witnesses some clients do not trust.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from clearance._untrusted import NoteLimits, UntrustedInputError, check_note
from clearance.keys.ed25519 import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Signer,
    Verifier,
    check_key_name,
)
from clearance.keys.errors import KeyFormatError, NoteFormatError, SignatureError

_DASH = "\u2014 "  # EM DASH and a space start every signature line
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 1 << 20
#: Lines in a whole note (text and signatures): checkpoints have a handful.
MAX_NOTE_LINES = 1000 + MAX_SIGNATURES
_LIMITS = NoteLimits(max_bytes=MAX_NOTE_BYTES, max_lines=MAX_NOTE_LINES)
_COSIGNATURE_HEADER = "cosignature/v1\ntime {}\n"


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the signer's name, key id and signature bytes (after the id)."""

    name: str
    key_id: int
    signature: bytes

    def to_line(self) -> str:
        blob = struct.pack(">I", self.key_id) + self.signature
        return f"{_DASH}{self.name} {base64.b64encode(blob).decode()}\n"

    @classmethod
    def parse_line(cls, line: str) -> NoteSignature:
        if not line.startswith(_DASH):
            raise NoteFormatError(f"signature line {line[:40]!r} does not start with '— '")
        rest = line[len(_DASH) :]
        name, sep, encoded = rest.partition(" ")
        if not sep or not encoded:
            raise NoteFormatError(f"signature line {line[:40]!r}: expected '— name signature'")
        try:
            check_key_name(name)
        except KeyFormatError as exc:
            raise NoteFormatError(f"signature line: {exc}") from None
        try:
            blob = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise NoteFormatError(f"signature line by {name!r}: invalid base64") from None
        if len(blob) < 5:
            raise NoteFormatError(f"signature line by {name!r}: signature too short")
        (key_id,) = struct.unpack(">I", blob[:4])
        return cls(name, key_id, blob[4:])


@dataclass(frozen=True)
class Note:
    """A signed note: its text (ending in a newline) and its signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...] = ()

    def __post_init__(self) -> None:
        check_note_text(self.text)

    def to_bytes(self) -> bytes:
        return (self.text + "\n" + "".join(s.to_line() for s in self.signatures)).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Note:
        try:
            check_note(data, "note", _LIMITS)
        except UntrustedInputError as exc:
            raise NoteFormatError(str(exc)) from None
        try:
            whole = data.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteFormatError("note is not valid UTF-8") from None
        split = whole.rfind("\n\n")
        if split < 0:
            raise NoteFormatError("note has no signature block (no blank line)")
        text, block = whole[: split + 1], whole[split + 2 :]
        if not block.endswith("\n"):
            raise NoteFormatError("note signature block does not end in a newline")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise NoteFormatError(f"note has more than {MAX_SIGNATURES} signatures")
        return cls(text, tuple(NoteSignature.parse_line(line) for line in lines))

    def with_signatures(self, extra: Iterable[NoteSignature]) -> Note:
        """This note with ``extra`` signatures appended (duplicates dropped)."""
        merged = list(self.signatures)
        for sig in extra:
            if sig not in merged:
                merged.append(sig)
        if len(merged) > MAX_SIGNATURES:
            raise NoteFormatError(f"note would have more than {MAX_SIGNATURES} signatures")
        return Note(self.text, tuple(merged))


#: Control characters other than the newline (checked by the regex engine, not per
#: character in Python: every checkpoint a client verifies goes through here).
_NOTE_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def check_note_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteFormatError("note text does not end in a newline")
    if "\n\n" in text:
        raise NoteFormatError("note text contains a blank line")
    control = _NOTE_CONTROL.search(text)
    if control is not None:
        raise NoteFormatError(f"note text contains control character {ord(control.group()):#04x}")


def sign_note(text: str, signers: Sequence[Signer]) -> Note:
    """Sign ``text`` with each Ed25519 note signer."""
    check_note_text(text)
    sigs = []
    for signer in signers:
        if signer.alg != ALG_ED25519:
            raise KeyFormatError(f"key {signer.name!r} is not an Ed25519 note-signing key")
        sigs.append(NoteSignature(signer.name, signer.verifier.key_id, signer.sign(text.encode())))
    return Note(text, tuple(sigs))


def _matching(verifier: Verifier, sig: NoteSignature) -> bool:
    return sig.name == verifier.name and sig.key_id == verifier.key_id


def verify_note(note: Note, verifiers: Sequence[Verifier]) -> list[Verifier]:
    """Return the verifiers whose signature on ``note`` is valid.

    A signature that claims to be by a known key (same name and key id) but
    does not verify is an error, as in Go's ``note.Open``: it is a forgery,
    not an unknown signer.  Raises :class:`SignatureError` when no known key
    signed at all.
    """
    good: list[Verifier] = []
    for verifier in verifiers:
        for sig in note.signatures:
            if not _matching(verifier, sig):
                continue
            if verifier.alg == ALG_COSIGNATURE_V1:
                verify_cosignature(note.text, sig, verifier)
            elif not verifier.verify(note.text.encode(), sig.signature):
                raise SignatureError(f"invalid signature by {verifier.name!r}")
            if verifier not in good:
                good.append(verifier)
    if not good:
        names = ", ".join(sorted({v.name for v in verifiers})) or "(none)"
        raise SignatureError(f"note is not signed by any known key ({names})")
    return good


def cosign(text: str, signer: Signer, timestamp: int) -> NoteSignature:
    """A C2SP ``cosignature/v1`` signature of a checkpoint text at ``timestamp`` (Unix s)."""
    check_note_text(text)
    if signer.alg != ALG_COSIGNATURE_V1:
        signer = Signer.from_seed(signer.name, signer.seed, ALG_COSIGNATURE_V1)
    message = _COSIGNATURE_HEADER.format(timestamp).encode() + text.encode()
    sig = signer.sign(message)
    return NoteSignature(signer.name, signer.verifier.key_id, struct.pack(">Q", timestamp) + sig)


def verify_cosignature(text: str, sig: NoteSignature, verifier: Verifier) -> int:
    """Check a ``cosignature/v1`` line and return its timestamp."""
    if verifier.alg != ALG_COSIGNATURE_V1:
        verifier = verifier.as_alg(ALG_COSIGNATURE_V1)
    if not _matching(verifier, sig):
        raise SignatureError(f"cosignature is not by witness key {verifier.name!r}")
    if len(sig.signature) != 8 + 64:
        raise SignatureError(f"cosignature by {verifier.name!r} has the wrong length")
    (timestamp,) = struct.unpack(">Q", sig.signature[:8])
    message = _COSIGNATURE_HEADER.format(timestamp).encode() + text.encode()
    if not verifier.verify(message, sig.signature[8:]):
        raise SignatureError(f"invalid cosignature by {verifier.name!r}")
    result: int = timestamp
    return result

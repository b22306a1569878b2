"""Exceptions of the keys package."""

from clearance.errors import BadInput, Refused


class KeyFormatError(BadInput):
    """A key string or key file is not in the C2SP signed-note encoding."""


class NoteFormatError(BadInput):
    """A signed note is malformed (text, signature block or signature lines)."""


class SignatureError(Refused):
    """A signature does not verify, or no trusted key signed the note."""

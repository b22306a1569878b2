"""Ed25519 keys and signed notes in the C2SP encodings (signed-note, tlog-cosignature)."""

from clearance.keys.ed25519 import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Signer,
    Verifier,
    key_hash,
)
from clearance.keys.errors import KeyFormatError, NoteFormatError, SignatureError
from clearance.keys.files import generate_key_files, load_signer, load_verifier
from clearance.keys.note import (
    Note,
    NoteSignature,
    cosign,
    sign_note,
    verify_cosignature,
    verify_note,
)

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "KeyFormatError",
    "Note",
    "NoteFormatError",
    "NoteSignature",
    "SignatureError",
    "Signer",
    "Verifier",
    "cosign",
    "generate_key_files",
    "key_hash",
    "load_signer",
    "load_verifier",
    "sign_note",
    "verify_cosignature",
    "verify_note",
]

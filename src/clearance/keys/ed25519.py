"""Ed25519 keys in the C2SP signed-note encoding.

Verifier key: ``<name>+<keyhash>+<base64(type || public key)>``; private key:
``PRIVATE+KEY+<name>+<keyhash>+<base64(type || seed)>``.  The key hash is the
first four bytes of SHA-256(name || "\\n" || type || public key), big-endian,
as eight hex digits.  Type 0x01 is a plain Ed25519 note signer, 0x04 a
``cosignature/v1`` witness key (C2SP tlog-cosignature).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass, field, replace
from functools import cached_property

import nacl.bindings
import nacl.exceptions
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from clearance.keys.errors import KeyFormatError

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
_KNOWN_ALGS = (ALG_ED25519, ALG_COSIGNATURE_V1)
_PRIVATE_PREFIX = "PRIVATE+KEY+"


#: Unicode spaces (``\s`` is ``str.isspace``) and control characters.
_NAME_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]")


def check_key_name(name: str) -> None:
    """A key name is non-empty, has no '+' and no Unicode space or control character."""
    if not name:
        raise KeyFormatError("key name is empty")
    if "+" in name:
        raise KeyFormatError(f"key name {name!r} contains '+'")
    if _NAME_FORBIDDEN.search(name):
        raise KeyFormatError(f"key name {name!r} contains a space or control character")


def key_hash(name: str, alg: int, public_key: bytes) -> int:
    """The 32-bit key id of a signed-note key (C2SP signed-note)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    value: int = struct.unpack(">I", digest[:4])[0]
    return value


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError(f"{what}: invalid base64") from None


@dataclass(frozen=True)
class Verifier:
    """A public key that verifies notes signed under ``name``.

    Verification is libsodium's (``crypto_sign_open``), not OpenSSL's, for two
    reasons.  It is stricter: a public key or a signature's R of small order,
    and non-canonical encodings, are refused, where OpenSSL accepts them (a
    small-order key makes one signature valid for every message).  And it is
    faster: about 1.8 times on this project's reference machine, which matters
    because every bulk health report and every submission costs one or more
    verifications (``benchmarks/bench_verify.py`` measures both side by side).
    Every party (gateway, client, auditor, witness) verifies through this one
    method, so none of them accepts what another refuses.
    """

    name: str
    alg: int
    public_key: bytes

    @classmethod
    def from_public_bytes(cls, name: str, public_key: bytes, alg: int = ALG_ED25519) -> Verifier:
        check_key_name(name)
        if alg not in _KNOWN_ALGS:
            raise KeyFormatError(f"key {name!r}: unsupported algorithm 0x{alg:02x}")
        if len(public_key) != 32:
            raise KeyFormatError(f"key {name!r}: Ed25519 public key must be 32 bytes")
        if not nacl.bindings.crypto_core_ed25519_is_valid_point(public_key):
            raise KeyFormatError(
                f"key {name!r}: not an Ed25519 public key (off the curve, of small order "
                "or not canonically encoded)"
            )
        return cls(name, alg, public_key)

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Parse ``name+hash+base64`` and check that the hash matches the key."""
        text = vkey.strip()
        if text.startswith(_PRIVATE_PREFIX):
            # Never echo a private key into an error message.
            raise KeyFormatError("a private key was given where a public verifier key is expected")
        parts = text.split("+", 2)
        if len(parts) != 3:
            raise KeyFormatError(f"verifier key {text[:60]!r}: expected name+hash+base64")
        name, hash_hex, encoded = parts
        check_key_name(name)
        if len(hash_hex) != 8 or any(c not in "0123456789abcdef" for c in hash_hex):
            raise KeyFormatError(f"verifier key {name!r}: key hash must be 8 lowercase hex digits")
        raw = _b64decode(encoded, f"verifier key {name!r}")
        if len(raw) != 33:
            raise KeyFormatError(f"verifier key {name!r}: expected 1 type byte and 32 key bytes")
        verifier = cls.from_public_bytes(name, raw[1:], raw[0])
        if verifier.key_id != int(hash_hex, 16):
            raise KeyFormatError(f"verifier key {name!r}: key hash does not match the key")
        return verifier

    @property
    def key_id(self) -> int:
        return key_hash(self.name, self.alg, self.public_key)

    @property
    def key_id_bytes(self) -> bytes:
        return struct.pack(">I", self.key_id)

    def to_string(self) -> str:
        encoded = base64.b64encode(bytes([self.alg]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is a valid Ed25519 signature of ``message``."""
        if len(signature) != 64:
            return False
        try:
            nacl.bindings.crypto_sign_open(signature + message, self.public_key)
        except nacl.exceptions.BadSignatureError:
            return False
        return True

    def as_alg(self, alg: int) -> Verifier:
        """The same Ed25519 key under another signed-note type (e.g. for cosignatures)."""
        if alg not in _KNOWN_ALGS:
            raise KeyFormatError(f"key {self.name!r}: unsupported algorithm 0x{alg:02x}")
        return replace(self, alg=alg)  # name and key were checked when this one was made


@dataclass(frozen=True)
class Signer:
    """A private key that signs notes under ``name``."""

    name: str
    alg: int
    seed: bytes = field(repr=False)
    _key: Ed25519PrivateKey = field(repr=False, compare=False, hash=False)

    @classmethod
    def generate(cls, name: str, alg: int = ALG_ED25519) -> Signer:
        key = Ed25519PrivateKey.generate()
        return cls.from_seed(name, key.private_bytes_raw(), alg)

    @classmethod
    def from_seed(cls, name: str, seed: bytes, alg: int = ALG_ED25519) -> Signer:
        check_key_name(name)
        if alg not in _KNOWN_ALGS:
            raise KeyFormatError(f"private key {name!r}: unsupported algorithm 0x{alg:02x}")
        if len(seed) != 32:
            raise KeyFormatError(f"private key {name!r}: Ed25519 seed must be 32 bytes")
        return cls(name, alg, seed, Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def parse(cls, skey: str) -> Signer:
        text = skey.strip()
        if not text.startswith(_PRIVATE_PREFIX):
            raise KeyFormatError("private key: expected PRIVATE+KEY+name+hash+base64")
        parts = text[len(_PRIVATE_PREFIX) :].split("+", 2)
        if len(parts) != 3:
            raise KeyFormatError("private key: expected PRIVATE+KEY+name+hash+base64")
        name, hash_hex, encoded = parts
        check_key_name(name)
        raw = _b64decode(encoded, f"private key {name!r}")
        if len(raw) != 33:
            raise KeyFormatError(f"private key {name!r}: expected 1 type byte and 32 seed bytes")
        signer = cls.from_seed(name, raw[1:], raw[0])
        try:
            declared = int(hash_hex, 16)
        except ValueError:
            raise KeyFormatError(f"private key {name!r}: key hash is not hex") from None
        if len(hash_hex) != 8 or signer.verifier.key_id != declared:
            raise KeyFormatError(f"private key {name!r}: key hash does not match the key")
        return signer

    @cached_property
    def public_key(self) -> bytes:
        return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @cached_property
    def verifier(self) -> Verifier:
        # Kept: making it checks the key is a point of the curve (as long as a signature
        # check), and the log's signer gives its verifier at every checkpoint it signs.
        return Verifier.from_public_bytes(self.name, self.public_key, self.alg)

    def to_string(self) -> str:
        encoded = base64.b64encode(bytes([self.alg]) + self.seed).decode()
        return f"{_PRIVATE_PREFIX}{self.name}+{self.verifier.key_id:08x}+{encoded}"

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

"""Private entitlements: the log holds a salted commitment, not who the customer is.

An entitlement (customer, jurisdiction, product, dates, device keys) is sold by
a vendor and must be logged, so that a withheld or delivered update can be
explained by logged documents.  Logged in clear, the public log would be the
vendor's customer list.  So the vendor logs only a commitment::

    commitment = SHA-256("clearance-entitlement-v1" 0x00 || salt || RFC 8785(entitlement))

with a fresh 32-byte salt, in a vendor-signed statement (``predicateType``
:data:`~clearance.policy.model.ENTITLEMENT_PREDICATE_TYPE`, predicate
``{"scheme": "sha256-salted-v1", "commitment": hex}``, subject ``entitlement``
with the commitment as its digest).  The *opening* (salt and entitlement) is
given privately to the customer and to the gateway, and on request to the
regulator; whoever holds it checks it against the logged commitment
(:func:`open_commitment`) and re-runs the decision.  The salt makes the
commitment hiding (nobody can test guesses of a customer name against it);
SHA-256 makes it binding (the vendor cannot later open it to another
entitlement).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clearance.attest.canonical import canonical_json
from clearance.attest.dsse import Envelope
from clearance.attest.statement import Statement, Subject
from clearance.keys import Signer
from clearance.policy.errors import DistributionRefused, PolicyFormatError
from clearance.policy.model import ENTITLEMENT_PREDICATE_TYPE, Entitlement

COMMITMENT_SCHEME = "sha256-salted-v1"
_DOMAIN = b"clearance-entitlement-v1\x00"
SALT_BYTES = 32


class CommitmentMismatchError(DistributionRefused):
    """An opening does not open the logged commitment (wrong salt, wrong entitlement)."""


def commitment_of(salt: bytes, entitlement: Entitlement) -> str:
    """The hex commitment to ``entitlement`` under ``salt``."""
    return hashlib.sha256(_DOMAIN + salt + canonical_json(entitlement.to_dict())).hexdigest()


@dataclass(frozen=True)
class EntitlementOpening:
    """What opens a logged commitment: the salt and the entitlement itself."""

    salt: bytes
    entitlement: Entitlement

    def __post_init__(self) -> None:
        if len(self.salt) != SALT_BYTES:
            raise PolicyFormatError(f"entitlement opening: salt must be {SALT_BYTES} bytes")

    @property
    def commitment(self) -> str:
        return commitment_of(self.salt, self.entitlement)

    def to_dict(self) -> dict[str, Any]:
        return {"salt": self.salt.hex(), "entitlement": self.entitlement.to_dict()}

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, value: object) -> EntitlementOpening:
        if not isinstance(value, Mapping):
            raise PolicyFormatError("entitlement opening must be a JSON object")
        salt = value.get("salt")
        if not isinstance(salt, str) or len(salt) != 2 * SALT_BYTES:
            raise PolicyFormatError("entitlement opening: salt must be 64 hex digits")
        try:
            raw = bytes.fromhex(salt)
        except ValueError:
            raise PolicyFormatError("entitlement opening: salt must be 64 hex digits") from None
        return cls(raw, Entitlement.from_dict(value.get("entitlement")))


def new_opening(entitlement: Entitlement, salt: bytes | None = None) -> EntitlementOpening:
    """A fresh opening (random salt) for ``entitlement``."""
    return EntitlementOpening(os.urandom(SALT_BYTES) if salt is None else salt, entitlement)


def entitlement_statement(opening: EntitlementOpening) -> Statement:
    """The statement the vendor signs and logs: the commitment, nothing in clear."""
    return Statement(
        (Subject("entitlement", opening.commitment),),
        ENTITLEMENT_PREDICATE_TYPE,
        {"scheme": COMMITMENT_SCHEME, "commitment": opening.commitment},
    )


def sign_entitlement(opening: EntitlementOpening, signers: Sequence[Signer]) -> Envelope:
    return entitlement_statement(opening).sign(list(signers))


def logged_commitment(predicate: Mapping[str, Any]) -> str | None:
    """The commitment a logged entitlement predicate holds; None for a clear (legacy) one."""
    if predicate.get("scheme") != COMMITMENT_SCHEME:
        if "commitment" in predicate:
            raise PolicyFormatError(
                f"entitlement commitment scheme {predicate.get('scheme')!r} is not "
                f"{COMMITMENT_SCHEME!r}"
            )
        return None
    value = predicate.get("commitment")
    if not isinstance(value, str) or len(value) != 64 or value.strip("0123456789abcdef"):
        raise PolicyFormatError("entitlement commitment must be 64 lowercase hex digits")
    return value


def open_commitment(predicate: Mapping[str, Any], opening: EntitlementOpening) -> Entitlement:
    """The entitlement, if ``opening`` opens the commitment in the logged ``predicate``."""
    commitment = logged_commitment(predicate)
    if commitment is None:
        raise PolicyFormatError("the logged entitlement is not a commitment")
    if opening.commitment != commitment:
        raise CommitmentMismatchError(
            f"the entitlement opening does not open logged commitment {commitment[:16]}…"
        )
    return opening.entitlement

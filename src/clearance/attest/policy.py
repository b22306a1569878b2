"""Policy statements (``https://clearance.dev/policy/v1``): placeholder schema.

The distribution part defines the predicate's fields; here a policy is any
JSON object signed by the trust root's policy key, with a subject naming
what it governs (by default the predicate's own digest).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clearance.attest.canonical import canonical_json
from clearance.attest.dsse import Envelope
from clearance.attest.statement import POLICY_V1, Statement, Subject, statement_of
from clearance.keys import Signer


@dataclass(frozen=True)
class PolicyStatement:
    """A typed view of a policy statement: its subjects and its (free-form) predicate."""

    subjects: tuple[Subject, ...]
    predicate: Mapping[str, Any]

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> PolicyStatement:
        statement = statement_of(envelope, POLICY_V1)
        return cls(statement.subjects, statement.predicate)


def create_policy(
    predicate: Mapping[str, Any],
    signers: Signer | Sequence[Signer],
    *,
    name: str = "policy",
    subjects: Sequence[Subject] = (),
) -> Envelope:
    """Sign a policy predicate; without subjects the subject is the predicate's digest."""
    body = dict(predicate)
    if not subjects:
        subjects = (Subject(name, hashlib.sha256(canonical_json(body)).hexdigest()),)
    signer_list = [signers] if isinstance(signers, Signer) else list(signers)
    return Statement(tuple(subjects), POLICY_V1, body).sign(signer_list)

"""Classifying log entries: what kind each is and the typed view the gateway indexes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from clearance._untrusted import UntrustedInputError, load_json
from clearance.attest import Envelope, Statement, admission, statement_of
from clearance.attest.statement import HEALTH_AGGREGATE_TYPE as HEALTH_AGGREGATE_TYPE
from clearance.attest.statement import TRANSITION_V1
from clearance.gateway.errors import GatewayInputError
from clearance.gateway.rollout import TRANSITION_TYPE

KIND_RELEASE = admission.KIND_RELEASE
KIND_VERDICT = admission.KIND_VERDICT
KIND_POLICY = admission.KIND_POLICY
KIND_ENTITLEMENT = admission.KIND_ENTITLEMENT
#: The index has stored rollout decisions under this name since its first version.
KIND_ROLLOUT_DECISION = "rollout-decision"
KIND_HEALTH = admission.KIND_HEALTH
KIND_TRANSITION = admission.KIND_TRANSITION
KIND_REVOCATION = admission.KIND_REVOCATION
KIND_CHANNEL_RESET = admission.KIND_CHANNEL_RESET
KIND_REPORT = admission.KIND_REPORT
KIND_HEALTH_AGGREGATE = "health-aggregate"

#: Where the index's name for a kind differs from the admission rule's.
_INDEX_NAME = {admission.KIND_ROLLOUT: KIND_ROLLOUT_DECISION}
#: Gateway kind by predicate type: the admission rule's map, under the index's names.
KIND_OF_PREDICATE = {
    predicate: _INDEX_NAME.get(kind, kind)
    for predicate, kind in admission.KIND_OF_PREDICATE.items()
}
#: The admission rule's kind of each gateway kind that a statement carries.
ADMISSION_KIND = {
    _INDEX_NAME.get(kind, kind): kind for kind in admission.KIND_OF_PREDICATE.values()
}


@dataclass(frozen=True)
class ParsedEntry:
    kind: str
    sha256: str
    envelope: Envelope | None
    statement: Statement | None
    document: dict[str, Any] | None  # for gateway-written entries (transitions)


def parse_entry(data: bytes) -> ParsedEntry:
    """A log entry is a DSSE envelope (a rollout transition signed by the rollout key among
    them) or a plain-JSON rollout transition written by an older gateway."""
    sha = hashlib.sha256(data).hexdigest()
    try:
        raw = load_json(data, "log entry")
    except UntrustedInputError as exc:
        raise GatewayInputError(str(exc)) from None
    if isinstance(raw, dict) and raw.get("_type") == TRANSITION_TYPE:
        return ParsedEntry(KIND_TRANSITION, sha, None, None, raw)
    if isinstance(raw, dict) and raw.get("_type") == HEALTH_AGGREGATE_TYPE:
        return ParsedEntry(KIND_HEALTH_AGGREGATE, sha, None, None, raw)
    return parse_envelope(Envelope.from_dict(raw))


def parse_envelope(envelope: Envelope) -> ParsedEntry:
    """:func:`parse_entry` of an envelope already parsed (a submission's)."""
    statement = statement_of(envelope)
    if statement.predicate_type == TRANSITION_V1:
        document = {"_type": TRANSITION_TYPE, **statement.predicate}
        return ParsedEntry(KIND_TRANSITION, envelope.sha256, envelope, statement, document)
    kind = KIND_OF_PREDICATE.get(statement.predicate_type)
    if kind is None:
        raise GatewayInputError(
            f"statement predicateType {statement.predicate_type!r} is not one the gateway takes"
        )
    return ParsedEntry(kind, envelope.sha256, envelope, statement, None)

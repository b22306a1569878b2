"""Classifying log entries: what kind each is and the typed view the gateway indexes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from clearance._untrusted import UntrustedInputError, load_json
from clearance.attest import (
    CHANNEL_RESET_V1,
    HEALTH_V1,
    POLICY_V1,
    RELEASE_V1,
    REVOCATION_V1,
    ROLLOUT_V1,
    VERDICT_V1,
    Envelope,
    Statement,
    statement_of,
)
from clearance.attest.statement import TRANSITION_V1
from clearance.gateway.errors import GatewayInputError
from clearance.gateway.rollout import TRANSITION_TYPE
from clearance.policy import ENTITLEMENT_PREDICATE_TYPE

KIND_RELEASE = "release"
KIND_VERDICT = "verdict"
KIND_POLICY = "policy"
KIND_ENTITLEMENT = "entitlement"
KIND_ROLLOUT_DECISION = "rollout-decision"
KIND_HEALTH = "health"
KIND_TRANSITION = "rollout-transition"
KIND_REVOCATION = "revocation"
KIND_CHANNEL_RESET = "channel-reset"
KIND_HEALTH_AGGREGATE = "health-aggregate"
#: ``_type`` of a gateway-written health aggregate (see clearance.gateway.health_batch).
HEALTH_AGGREGATE_TYPE = "https://clearance.dev/health-aggregate/v1"

KIND_OF_PREDICATE = {
    RELEASE_V1: KIND_RELEASE,
    VERDICT_V1: KIND_VERDICT,
    POLICY_V1: KIND_POLICY,
    ENTITLEMENT_PREDICATE_TYPE: KIND_ENTITLEMENT,
    ROLLOUT_V1: KIND_ROLLOUT_DECISION,
    HEALTH_V1: KIND_HEALTH,
    REVOCATION_V1: KIND_REVOCATION,
    CHANNEL_RESET_V1: KIND_CHANNEL_RESET,
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
    envelope = Envelope.from_dict(raw)
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

"""Signed statements: in-toto Statement v1 in DSSE envelopes, and the trust root.

Public API::

    canonical_json(obj) -> bytes
    Envelope, Signature, pae, key_id, sign_envelope
    Statement, Subject, statement_of, RELEASE_V1, VERDICT_V1, POLICY_V1, ...
    Release, Artifact, BuildRecipe, create_release
    Verdict, create_verdict, DECISIONS
    Version, compare_versions
    Revocation, ChannelReset, revoke_release, revoke_key, reset_channel   # recovery
    TrustRoot, Role, accept_rotation, follow_rotations, rotation_envelope
"""

from clearance.attest.canonical import canonical_json
from clearance.attest.dsse import Envelope, Signature, key_id, pae, sign_envelope
from clearance.attest.errors import (
    AttestFormatError,
    EnvelopeFormatError,
    EnvelopeSignatureError,
    RotationRefused,
    StatementFormatError,
    TrustRootFormatError,
    VersionFormatError,
)
from clearance.attest.policy import PolicyStatement, create_policy
from clearance.attest.recovery import (
    ChannelReset,
    Revocation,
    reset_channel,
    revoke_key,
    revoke_release,
)
from clearance.attest.release import ARTIFACT_KINDS, Artifact, BuildRecipe, Release, create_release
from clearance.attest.statement import (
    CHANNEL_RESET_V1,
    ENTITLEMENT_V1,
    HEALTH_V1,
    PAYLOAD_TYPE,
    POLICY_V1,
    PREDICATE_TYPES,
    RELEASE_V1,
    REVOCATION_V1,
    ROLLOUT_V1,
    STATEMENT_TYPE,
    VERDICT_V1,
    Statement,
    Subject,
    statement_of,
)
from clearance.attest.trust_root import (
    TRUST_ROOT_PAYLOAD_TYPE,
    Role,
    TrustRoot,
    accept_rotation,
    follow_rotations,
    rotation_envelope,
)
from clearance.attest.verdict import (
    APPROVED,
    DECISIONS,
    NEEDS_REVIEW,
    REJECTED,
    Verdict,
    create_verdict,
    rfc3339_now,
)
from clearance.attest.version import Version, compare_versions

__all__ = [
    "APPROVED",
    "ARTIFACT_KINDS",
    "CHANNEL_RESET_V1",
    "DECISIONS",
    "ENTITLEMENT_V1",
    "HEALTH_V1",
    "NEEDS_REVIEW",
    "PAYLOAD_TYPE",
    "POLICY_V1",
    "PREDICATE_TYPES",
    "REJECTED",
    "RELEASE_V1",
    "REVOCATION_V1",
    "ROLLOUT_V1",
    "STATEMENT_TYPE",
    "TRUST_ROOT_PAYLOAD_TYPE",
    "VERDICT_V1",
    "Artifact",
    "AttestFormatError",
    "BuildRecipe",
    "ChannelReset",
    "Envelope",
    "EnvelopeFormatError",
    "EnvelopeSignatureError",
    "PolicyStatement",
    "Release",
    "Revocation",
    "Role",
    "RotationRefused",
    "Signature",
    "Statement",
    "StatementFormatError",
    "Subject",
    "TrustRoot",
    "TrustRootFormatError",
    "Verdict",
    "Version",
    "VersionFormatError",
    "accept_rotation",
    "canonical_json",
    "compare_versions",
    "create_policy",
    "create_release",
    "create_verdict",
    "follow_rotations",
    "key_id",
    "pae",
    "reset_channel",
    "revoke_key",
    "revoke_release",
    "rfc3339_now",
    "rotation_envelope",
    "sign_envelope",
    "statement_of",
]

"""The endpoint side: offline bundles and the verifier that checks them.

Public API::

    Bundle, LoggedEntry, ConsistencyProof, BUNDLE_MEDIA_TYPE     (the wire format; bundles are
                                                                  built by clearance.gateway.bundles)
    BundleVerifier(trust_root, clock).verify(artifact_sha256, bundle, state) -> VerificationResult
    verify_bundle(artifact_sha256, bundle, trust_root, state=None, clock=time.time)
    ClientState.load(dir)
    errors: one VerificationError subclass per check (clearance.client.errors)
"""

from clearance.client.bundle import (
    BUNDLE_MEDIA_TYPE,
    Bundle,
    ConsistencyProof,
    LoggedEntry,
)
from clearance.client.errors import (
    ArtifactDigestError,
    CheckpointForgedError,
    ConsistencyUnprovenError,
    CosignatureThresholdError,
    FreezeError,
    InspectorThresholdError,
    MalformedBundleError,
    MixAndMatchError,
    PolicyError,
    ReleaseNotLoggedError,
    ReleaseSignatureError,
    RollbackError,
    SplitViewError,
    StaleCheckpointError,
    StateError,
    VerdictForOtherReleaseError,
    VerdictMissingError,
    VerdictNotLoggedError,
    VerdictRejectedError,
    VerdictSignatureError,
    VerificationError,
)
from clearance.client.state import ClientState
from clearance.client.verifier import BundleVerifier, VerificationResult, verify_bundle

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "ArtifactDigestError",
    "Bundle",
    "BundleVerifier",
    "CheckpointForgedError",
    "ClientState",
    "ConsistencyProof",
    "ConsistencyUnprovenError",
    "CosignatureThresholdError",
    "FreezeError",
    "InspectorThresholdError",
    "LoggedEntry",
    "MalformedBundleError",
    "MixAndMatchError",
    "PolicyError",
    "ReleaseNotLoggedError",
    "ReleaseSignatureError",
    "RollbackError",
    "SplitViewError",
    "StaleCheckpointError",
    "StateError",
    "VerdictForOtherReleaseError",
    "VerdictMissingError",
    "VerdictNotLoggedError",
    "VerdictRejectedError",
    "VerdictSignatureError",
    "VerificationError",
    "VerificationResult",
    "verify_bundle",
]

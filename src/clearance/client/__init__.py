"""The endpoint side: offline bundles and the verifier that checks them.

Public API::

    Bundle, LoggedEntry, ConsistencyProof, BUNDLE_MEDIA_TYPE     (the wire format; bundles are
                                                                  built by clearance.gateway.bundles)
    BundleVerifier(trust_root, clock).verify(artifact_sha256, bundle, state,
                                             product=None, channel=None) -> VerificationResult
        (pure: result.update is the StateUpdate; nothing is written)
    record_installation(state, result)   # apply the update and save: the command's last step
    keep_split_view(state, SplitViewError) -> SplitViewError   # evidence, written by the command
    verify_bundle(artifact_sha256, bundle, trust_root, state=None, clock=time.time)  # both
    ClientState.load(dir), StateUpdate
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
    IncompleteBundleError,
    IndexMissingError,
    IndexProofError,
    InspectorThresholdError,
    MalformedBundleError,
    MixAndMatchError,
    NotApprovedInIndexError,
    PinningError,
    PolicyError,
    ReleaseNotLoggedError,
    ReleaseRevokedError,
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
from clearance.client.installation import keep_split_view, record_installation, verify_bundle
from clearance.client.state import ClientState, StateUpdate
from clearance.client.verifier import BundleVerifier, VerificationResult

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
    "IncompleteBundleError",
    "IndexMissingError",
    "IndexProofError",
    "InspectorThresholdError",
    "LoggedEntry",
    "MalformedBundleError",
    "MixAndMatchError",
    "NotApprovedInIndexError",
    "PinningError",
    "PolicyError",
    "ReleaseNotLoggedError",
    "ReleaseRevokedError",
    "ReleaseSignatureError",
    "RollbackError",
    "SplitViewError",
    "StaleCheckpointError",
    "StateError",
    "StateUpdate",
    "VerdictForOtherReleaseError",
    "VerdictMissingError",
    "VerdictNotLoggedError",
    "VerdictRejectedError",
    "VerdictSignatureError",
    "VerificationError",
    "VerificationResult",
    "keep_split_view",
    "record_installation",
    "verify_bundle",
]

"""One exception per verifier check, each naming the check that failed.

Every class derives from :class:`VerificationError` (a :class:`Refused`, exit
code 1), so callers may catch the family or one precise attack.
"""

from __future__ import annotations

from clearance.errors import BadInput, Refused


class VerificationError(Refused):
    """The bundle does not prove what the endpoint needs; ``check`` names the failing step."""

    check = "verification"

    def __init__(self, message: str) -> None:
        super().__init__(f"[{self.check}] {message}")


class MalformedBundleError(VerificationError):
    """The bundle (or an envelope, statement or proof inside it) cannot be parsed."""

    check = "bundle"


class ArtifactDigestError(VerificationError):
    """The artifact's SHA-256 is not one the release names (tampered or wrong file)."""

    check = "artifact-digest"


class ReleaseSignatureError(VerificationError):
    """The release is unsigned, wrongly signed, or signed by fewer vendor keys than required."""

    check = "release-signature"


class ReleaseNotLoggedError(VerificationError):
    """The release's inclusion proof does not lead to the checkpoint's root."""

    check = "release-logged"


class MixAndMatchError(VerificationError):
    """A proof in the bundle belongs to another entry than the envelope it travels with."""

    check = "bundle-binding"


class VerdictForOtherReleaseError(VerificationError):
    """A verdict's subject is not this exact release envelope."""

    check = "verdict-subject"


class VerdictMissingError(VerificationError):
    """The bundle carries no verdict for the release."""

    check = "verdict-missing"


class VerdictSignatureError(VerificationError):
    """A verdict carries an invalid signature under a trusted inspector's key id."""

    check = "verdict-signature"


class VerdictRejectedError(VerificationError):
    """A trusted inspector's verdict is ``rejected`` or ``needs-review``."""

    check = "verdict-decision"


class InspectorThresholdError(VerificationError):
    """Fewer distinct trusted inspectors approved the release than the trust root requires."""

    check = "verdict-threshold"


class VerdictNotLoggedError(VerificationError):
    """An approving verdict's inclusion proof does not lead to the checkpoint's root."""

    check = "verdict-logged"


class PolicyError(VerificationError):
    """The policy carried by the bundle is not signed by the policy key or not logged."""

    check = "policy"


class CheckpointForgedError(VerificationError):
    """The checkpoint is not signed by the trusted log key, or names another origin."""

    check = "checkpoint-signature"


class CosignatureThresholdError(VerificationError):
    """Fewer trusted witnesses cosigned the checkpoint than the trust root requires."""

    check = "checkpoint-cosignatures"


class StaleCheckpointError(VerificationError):
    """The newest threshold of witness cosignatures is older than the maximum checkpoint age."""

    check = "checkpoint-fresh"


class RollbackError(VerificationError):
    """The release's version is lower than the one last installed on this product and channel."""

    check = "version"


class FreezeError(VerificationError):
    """The checkpoint is older (smaller) than one this client already saw: a replay or freeze."""

    check = "consistency"


class SplitViewError(VerificationError):
    """Two checkpoints of one log that cannot both be true; both are kept as evidence."""

    check = "consistency"

    def __init__(
        self,
        message: str,
        evidence_dir: str | None = None,
        seen: bytes | None = None,
        presented: bytes | None = None,
        sizes: tuple[int, int] = (0, 0),
    ) -> None:
        super().__init__(message)
        self.evidence_dir = evidence_dir
        #: The two checkpoints (the command keeps them as evidence; the verifier writes nothing).
        self.seen = seen
        self.presented = presented
        self.sizes = sizes


class ConsistencyUnprovenError(VerificationError):
    """A newer checkpoint comes with no consistency proof and no witnesses vouch for it."""

    check = "consistency"


class IndexMissingError(VerificationError):
    """The checkpoint commits to no verifiable index, or the bundle lacks the index records."""

    check = "index"


class IndexProofError(VerificationError):
    """An index record in the bundle is malformed or does not lead to the committed index root."""

    check = "index"


class IncompleteBundleError(VerificationError):
    """The index lists a verdict on the release that the bundle leaves out (selected evidence)."""

    check = "index-complete"


class NotApprovedInIndexError(VerificationError):
    """The log's index says the release is not approved (rejected, pending, under review)."""

    check = "index-state"


class ReleaseRevokedError(VerificationError):
    """The release was revoked: by its own revocation, its vendor key's, or a channel reset."""

    check = "revoked"


class PinningError(VerificationError):
    """The bundle is for another product or channel than the endpoint is pinned to."""

    check = "pinning"


class StateError(BadInput):
    """The client state directory cannot be read or written."""


# -- distribution, checked offline by ``verify --customer`` (policy, entitlement, rollout) --


class PolicyMissingError(VerificationError):
    """``--customer`` was asked but the bundle carries no distribution policy (stripped)."""

    check = "policy-missing"


class EntitlementError(VerificationError):
    """The customer's entitlement is missing, not vendor-signed, not logged, does not open
    its logged commitment, or names another customer or product."""

    check = "entitlement"


class DistributionDeniedError(VerificationError):
    """The logged policy and the customer's entitlement do not allow this delivery now."""

    check = "distribution-policy"


class RolloutMissingError(VerificationError):
    """The trust root names a rollout role but the bundle carries no rollout transition."""

    check = "rollout-missing"


class RolloutSignatureError(VerificationError):
    """A rollout transition is malformed, for another release, not signed by the rollout
    role or not logged."""

    check = "rollout-signature"


class RolloutHaltedError(VerificationError):
    """The release's rollout is halted."""

    check = "rollout-halted"


class RolloutRingError(VerificationError):
    """The release's rollout has not reached the customer's ring yet."""

    check = "rollout-ring"

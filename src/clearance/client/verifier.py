"""The endpoint verifier: prove offline that an artifact may be installed.

Checks run in this order and stop at the first failure with its own error
class (see :mod:`clearance.client.errors`):

1. the artifact's SHA-256 is one of the release's subjects;
2. the release is signed by a threshold of vendor keys;
3. the release is logged: its inclusion proof leads to the checkpoint's root;
4. the verdicts are all for exactly this release envelope, none from a
   trusted inspector is negative, a threshold of distinct trusted inspector
   keys approved (:func:`clearance.attest.admission.evaluate_verdicts`), and
   every counted verdict is logged; (a policy in the bundle must be signed by
   the policy role and logged;)
5. the checkpoint is signed by the log key for the trusted origin and
   cosigned (``cosignature/v1``) by a threshold of trusted witnesses;
6. the checkpoint is fresh: the threshold-th newest valid cosignature
   timestamp is at most the trust root's maximum checkpoint age old;
7. the verifiable index the checkpoint commits to lists no verdict the bundle
   leaves out, shows the release approved and not revoked, and approvals by
   revoked keys do not count (:mod:`clearance.client._indexed`);
8. the release is for the product and channel the endpoint is pinned to (or
   that the command names), and its version is not lower than the last one
   installed (unless a logged channel reset lowered the floor since);
9. with a customer named: the distribution policy, the customer's entitlement and
   the release's signed rollout transitions, evaluated offline
   (:mod:`clearance.client._distribution`);
10. the checkpoint is consistent with the last one this client saw
    (:func:`clearance.log.consistency.check_consistent`).

The verifier is pure: it reads the client state, never writes it, and takes
the time only from its injected clock.  It returns the result and the
:class:`~clearance.client.state.StateUpdate` that the caller applies and
saves once every check of its own (the withholding check included) passed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from clearance.attest.admission import (
    ForgedSignatureError,
    VerdictVote,
    evaluate_verdicts,
    valid_key_ids,
)
from clearance.attest.errors import EnvelopeSignatureError
from clearance.attest.release import Release
from clearance.attest.trust_root import TrustRoot
from clearance.attest.verdict import REJECTED, Verdict
from clearance.attest.version import Version
from clearance.client._distribution import DistributionResult, check_distribution
from clearance.client._indexed import IndexedState, check_index
from clearance.client.bundle import Bundle, LoggedEntry
from clearance.client.errors import (
    ArtifactDigestError,
    CheckpointForgedError,
    ConsistencyUnprovenError,
    CosignatureThresholdError,
    FreezeError,
    InspectorThresholdError,
    MalformedBundleError,
    MixAndMatchError,
    PinningError,
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
from clearance.client.state import ClientState, StateUpdate
from clearance.errors import BadInput
from clearance.keys import Note
from clearance.log import consistency as log_consistency
from clearance.log.checkpoint import Checkpoint
from clearance.log.errors import (
    CheckpointForkError,
    CheckpointRollbackError,
    ForgedCosignatureError,
)
from clearance.log.errors import ConsistencyUnprovenError as _Unproven
from clearance.log.merkle import ProofError, leaf_hash, verify_inclusion

CONSISTENCY_FIRST_SEEN = log_consistency.FIRST_SEEN
CONSISTENCY_SAME = log_consistency.SAME
CONSISTENCY_PROVED = log_consistency.PROVED
CONSISTENCY_WITNESSED = "witnessed"


@dataclass(frozen=True)
class VerificationResult:
    """What was proven: the release, where it is logged, who approved and who witnessed;
    and the state update to record once the caller's own checks passed."""

    product: str
    version: str
    channel: str
    artifact: str
    release_sha256: str
    log_index: int
    checkpoint_size: int
    inspectors: tuple[str, ...]
    witnesses: tuple[str, ...]
    checkpoint_age: int | None
    consistency: str
    distribution: DistributionResult | None = None
    channel_epoch: int = 0
    channel_latest: str | None = None
    update: StateUpdate | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, object]:
        extra: dict[str, object] = {}
        if self.distribution is not None:
            extra["distribution"] = self.distribution.to_dict()
        return extra | {
            "product": self.product,
            "version": self.version,
            "channel": self.channel,
            "artifact": self.artifact,
            "release_sha256": self.release_sha256,
            "log_index": self.log_index,
            "checkpoint_size": self.checkpoint_size,
            "inspectors": list(self.inspectors),
            "witnesses": list(self.witnesses),
            "checkpoint_age_seconds": self.checkpoint_age,
            "consistency": self.consistency,
            "channel_epoch": self.channel_epoch,
            "channel_latest": self.channel_latest,
        }


def _parse(parser: Callable[[], object], what: str) -> object:
    try:
        return parser()
    except BadInput as exc:
        raise MalformedBundleError(f"{what}: {exc}") from None


class BundleVerifier:
    """Verifies bundles against one trust root; reusable across many bundles."""

    def __init__(self, trust_root: TrustRoot, clock: Callable[[], float] = time.time) -> None:
        self.trust_root = trust_root
        self._clock = clock
        self._witnesses = log_consistency.witness_keys(trust_root.witnesses.keys)
        self._log_key_id = trust_root.log_key.key_id

    def verify(
        self,
        artifact_sha256: str,
        bundle: Bundle | bytes,
        state: ClientState | None = None,
        customer: str | None = None,
        *,
        product: str | None = None,
        channel: str | None = None,
    ) -> VerificationResult:
        """Run every check; raise the check's error or return what was proven.

        With ``customer``, also evaluate the policy, the customer's entitlement and the
        rollout carried by the bundle, offline (check 9).  ``product``/``channel``: what
        the command names; a bundle for anything else is refused, and naming them
        allows leaving the pinned channel.
        """
        root = self.trust_root
        if isinstance(bundle, bytes):
            bundle = Bundle.from_bytes(bundle)
        release_env = bundle.release.parsed_envelope("release")
        release = _parse(lambda: Release.from_envelope(release_env), "release")
        assert isinstance(release, Release)
        note = _parse(lambda: Note.from_bytes(bundle.checkpoint), "checkpoint")
        assert isinstance(note, Note)
        checkpoint = _checkpoint_body(note)

        # 1. The artifact is one the release names.
        artifact = release.artifact_by_digest(artifact_sha256)
        if artifact is None:
            raise ArtifactDigestError(
                f"artifact sha256 {artifact_sha256} is not in release {release.product} "
                f"{release.version}"
            )

        # 2. Vendor signatures.
        try:
            release_env.verify(root.vendors.keys, root.vendors.threshold)
        except EnvelopeSignatureError as exc:
            raise ReleaseSignatureError(
                f"release {release.product} {release.version}: {exc}"
            ) from None

        # 3. The release is logged under the checkpoint.
        release_sha256 = hashlib.sha256(bundle.release.envelope).hexdigest()
        _check_logged(bundle.release, checkpoint, "release", ReleaseNotLoggedError)

        # 4. Verdicts.
        votes = self._check_verdicts(bundle, release_sha256, checkpoint)
        if bundle.policy is not None:
            self._check_policy(bundle.policy, checkpoint)

        # 5. Checkpoint signature and cosignatures.
        self._check_log_signature(note)
        if checkpoint.origin != root.log_origin:
            raise CheckpointForgedError(
                f"checkpoint origin {checkpoint.origin!r} is not the trusted {root.log_origin!r}"
            )
        try:
            cosigned = log_consistency.cosignatures(note, root.witnesses.keys)
        except ForgedCosignatureError as exc:
            raise CosignatureThresholdError(str(exc)) from None
        if len(cosigned) < root.witnesses.threshold:
            raise CosignatureThresholdError(
                f"{len(cosigned)} valid witness cosignature(s), {root.witnesses.threshold} required"
            )

        # 6. Freshness, from the witnesses' cosignature timestamps.
        age = self._check_fresh(cosigned)

        # 7. What the whole log says (the verifiable index), not just this bundle.
        indexed = check_index(
            bundle,
            checkpoint,
            release_sha256,
            release.product,
            release.channel,
            [v.index for v in bundle.verdicts],
        )
        approvers = self._approvers(votes, indexed.revoked_keys)

        # 8. Pinning and rollback.
        if state is not None or product is not None or channel is not None:
            self._check_pinned(release, state, product, channel)
        if state is not None:
            self._check_rollback(release, state, indexed)

        # 9. Distribution for this customer (before anything is written to the state).
        distribution = None
        if customer is not None:
            distribution = check_distribution(
                root,
                bundle,
                release,
                release_sha256,
                customer,
                self._clock(),
                lambda entry, what, error: _check_logged(entry, checkpoint, what, error),
            )

        # 10. Consistency with the last checkpoint this client saw.
        consistency = CONSISTENCY_FIRST_SEEN
        if state is not None:
            consistency = self._check_consistency(bundle, checkpoint, state)

        return VerificationResult(
            product=release.product,
            version=release.version,
            channel=release.channel,
            artifact=artifact.name,
            release_sha256=release_sha256,
            log_index=bundle.release.index,
            checkpoint_size=checkpoint.size,
            inspectors=approvers,
            witnesses=tuple(sorted(cosigned)),
            checkpoint_age=age,
            consistency=consistency,
            distribution=distribution,
            channel_epoch=indexed.epoch,
            channel_latest=indexed.latest,
            update=StateUpdate(
                release.product,
                release.channel,
                release.version,
                indexed.epoch,
                checkpoint.origin,
                bundle.checkpoint.decode("utf-8"),
                checkpoint.size,
            ),
        )

    def _check_verdicts(
        self, bundle: Bundle, release_sha256: str, checkpoint: Checkpoint
    ) -> list[VerdictVote]:
        """The verdict rule of :func:`evaluate_verdicts`, over the verdicts in the bundle."""
        root = self.trust_root
        if not bundle.verdicts:
            raise VerdictMissingError("the bundle carries no verdict for the release")
        votes: list[VerdictVote] = []
        parsed: list[tuple[LoggedEntry, Verdict, frozenset[str]]] = []
        for i, entry in enumerate(bundle.verdicts):
            env = entry.parsed_envelope(f"verdicts[{i}]")
            verdict = _parse(lambda env=env: Verdict.from_envelope(env), f"verdicts[{i}]")  # type: ignore[misc]
            assert isinstance(verdict, Verdict)
            if verdict.release_sha256 != release_sha256:
                raise VerdictForOtherReleaseError(
                    f"verdicts[{i}] is for release {verdict.release_sha256}, not {release_sha256}"
                )
            try:
                ids = valid_key_ids(env, root.inspectors.keys)
            except ForgedSignatureError as exc:
                raise VerdictSignatureError(f"verdicts[{i}]: {exc}") from None
            votes.append(VerdictVote(entry.index, verdict.decision, ids))
            parsed.append((entry, verdict, ids))
        approval = evaluate_verdicts(votes, root.inspectors)
        if approval.rejecters:
            rejected = next(v for _, v, ids in parsed if ids and v.decision == REJECTED)
            raise VerdictRejectedError(
                f"inspector {rejected.inspector!r} rejected the release"
                + (f": {rejected.note}" if rejected.note else "")
            )
        if not approval.approved:
            if approval.reviewers:
                review = next(v for _, v, ids in parsed if ids & approval.reviewers)
                raise VerdictRejectedError(
                    f"inspector {review.inspector!r} asked for human review and only "
                    f"{len(approval.approvers)} of {root.inspectors.threshold} required "
                    "inspectors approved"
                )
            raise InspectorThresholdError(
                f"{len(approval.approvers)} trusted inspector key(s) approved, "
                f"{root.inspectors.threshold} required"
            )
        for entry, verdict, ids in parsed:
            if ids and verdict.approved:
                _check_logged(
                    entry, checkpoint, f"verdict by {verdict.inspector!r}", VerdictNotLoggedError
                )
        return votes

    def _approvers(self, votes: list[VerdictVote], revoked: frozenset[str]) -> tuple[str, ...]:
        """Approving key names once revoked keys are left out; refuse below the threshold."""
        root = self.trust_root
        approval = evaluate_verdicts(votes, root.inspectors, revoked)
        if not approval.approved:
            raise InspectorThresholdError(
                f"{len(approval.approvers)} trusted inspector key(s) approved once the keys "
                f"revoked in the log are left out, {root.inspectors.threshold} required"
            )
        return tuple(sorted(k.rsplit("+", 1)[0] for k in approval.approvers))

    def _check_policy(self, entry: LoggedEntry, checkpoint: Checkpoint) -> None:
        role = self.trust_root.policy
        if role.threshold == 0:
            raise PolicyError("the bundle carries a policy but the trust root has no policy key")
        env = entry.parsed_envelope("policy")
        try:
            env.verify(role.keys, role.threshold)
        except EnvelopeSignatureError as exc:
            raise PolicyError(f"policy: {exc}") from None
        _check_logged(entry, checkpoint, "policy", PolicyError)

    def _check_log_signature(self, note: Note) -> None:
        """As ``verify_note`` with the one log key: a matching line must verify, one must exist."""
        log_key = self.trust_root.log_key
        found = False
        message = note.text.encode()
        for sig in note.signatures:
            if sig.name == log_key.name and sig.key_id == self._log_key_id:
                if not log_key.verify(message, sig.signature):
                    raise CheckpointForgedError(f"invalid checkpoint signature by {log_key.name!r}")
                found = True
        if not found:
            raise CheckpointForgedError(f"checkpoint is not signed by the log key {log_key.name!r}")

    def _check_fresh(self, cosigned: dict[str, int]) -> int | None:
        max_age = self.trust_root.max_checkpoint_age
        if max_age is None:
            return None
        threshold = max(1, self.trust_root.witnesses.threshold)
        stamps = sorted(cosigned.values(), reverse=True)
        if len(stamps) < threshold:
            raise StaleCheckpointError(
                "no witness cosignature dates the checkpoint, so its age cannot be bounded"
            )
        # The threshold-th newest: that many witnesses vouched at least this recently.
        age = int(self._clock()) - stamps[threshold - 1]
        if age > max_age:
            raise StaleCheckpointError(
                f"checkpoint was last cosigned {age} s ago, more than the maximum {max_age} s"
            )
        return max(age, 0)

    @staticmethod
    def _check_pinned(
        release: Release, state: ClientState | None, product: str | None, channel: str | None
    ) -> None:
        named = f"{release.product}/{release.channel}"
        if product is not None and release.product != product:
            raise PinningError(f"the bundle is for product {release.product!r}, not {product!r}")
        if channel is not None and release.channel != channel:
            raise PinningError(f"the bundle is for channel {named}, not {channel!r}")
        if state is None or (product is not None and channel is not None) or not state.pins:
            return  # named by the command, or the first installation pins it
        pinned = state.pins.get(release.product)
        if pinned is None and product is None:
            raise PinningError(
                f"the bundle is for product {release.product!r}; this endpoint is pinned to "
                f"{', '.join(sorted(state.pins))} (name it with --product and --channel)"
            )
        if pinned is not None and pinned != release.channel and channel is None:
            raise PinningError(
                f"the bundle is for channel {named}; this endpoint is pinned to "
                f"{release.product}/{pinned} (name the channel with --channel to switch)"
            )

    @staticmethod
    def _check_rollback(release: Release, state: ClientState, indexed: IndexedState) -> None:
        last = state.installed_version(release.product, release.channel)
        seen_epoch = state.epoch(release.product, release.channel)
        if indexed.epoch < seen_epoch:
            raise RollbackError(
                f"{release.product} {release.channel}: the bundle's log view is at channel "
                f"epoch {indexed.epoch}, this client already saw epoch {seen_epoch}"
            )
        if last is None:
            return
        reference = Version.parse(last)
        if indexed.epoch > seen_epoch and indexed.floor is not None:
            # A logged channel reset since: the releases above its floor were revoked.
            reference = min(reference, Version.parse(indexed.floor))
        if release.parsed_version < reference:
            raise RollbackError(
                f"{release.product} {release.channel}: version {release.version} is lower "
                f"than {reference} (installed {last})"
            )

    def _check_consistency(self, bundle: Bundle, checkpoint: Checkpoint, state: ClientState) -> str:
        seen_text = state.checkpoints.get(checkpoint.origin)
        if seen_text is None:
            return CONSISTENCY_FIRST_SEEN
        seen_bytes = seen_text.encode("utf-8")
        try:
            seen = Checkpoint.from_note(Note.from_bytes(seen_bytes))
        except BadInput as exc:
            raise StateError(f"{state.directory}: stored checkpoint is unreadable: {exc}") from None
        proof = next((c.proof for c in bundle.consistency if c.from_size == seen.size), None)
        try:
            return log_consistency.check_consistent(seen, checkpoint, proof)
        except CheckpointRollbackError as exc:
            raise FreezeError(str(exc)) from None
        except CheckpointForkError as exc:
            raise SplitViewError(
                str(exc), None, seen_bytes, bundle.checkpoint, (seen.size, checkpoint.size)
            ) from None
        except _Unproven as exc:
            if self.trust_root.witnesses.threshold >= 1:
                return CONSISTENCY_WITNESSED  # witnesses check consistency before cosigning
            raise ConsistencyUnprovenError(f"{exc} and no witnesses in the trust root") from None


def _checkpoint_body(note: Note) -> Checkpoint:
    try:
        return Checkpoint.from_note(note)
    except BadInput as exc:
        raise MalformedBundleError(str(exc)) from None


def _check_logged(
    entry: LoggedEntry,
    checkpoint: Checkpoint,
    what: str,
    error: type[VerificationError],
) -> None:
    if leaf_hash(entry.envelope) != entry.leaf_hash:
        raise MixAndMatchError(
            f"the inclusion proof carried with the {what} was made for another entry"
        )
    try:
        verify_inclusion(
            entry.index,
            checkpoint.size,
            entry.leaf_hash,
            entry.inclusion_proof,
            checkpoint.root_hash,
        )
    except ProofError as exc:
        raise error(f"{what} is not in the log at index {entry.index}: {exc}") from None


def verify_bundle(
    artifact_sha256: str,
    bundle: Bundle | bytes,
    trust_root: TrustRoot,
    state: ClientState | None = None,
    clock: Callable[[], float] = time.time,
    customer: str | None = None,
) -> VerificationResult:
    """One-shot form of :meth:`BundleVerifier.verify`."""
    return BundleVerifier(trust_root, clock).verify(artifact_sha256, bundle, state, customer)

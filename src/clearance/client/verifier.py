"""The endpoint verifier: prove offline that an artifact may be installed.

Checks run in this order and stop at the first failure with its own error
class (see :mod:`clearance.client.errors`):

1. the artifact's SHA-256 is one of the release's subjects;
2. the release is signed by a threshold of vendor keys;
3. the release is logged: its inclusion proof leads to the checkpoint's root;
4. the verdicts are all for exactly this release envelope, none from a
   trusted inspector is negative, a threshold of distinct trusted inspectors
   approved, and every counted verdict is logged;
   (a policy in the bundle must be signed by the policy role and logged;)
5. the checkpoint is signed by the log key for the trusted origin and
   cosigned (``cosignature/v1``) by a threshold of trusted witnesses;
6. the checkpoint is fresh: the threshold-th newest valid cosignature
   timestamp is at most the trust root's maximum checkpoint age old;
7. the version is not lower than the last one installed (``state``);
8. the checkpoint is consistent with the last one this client saw;
9. with a customer named: the distribution policy, the customer's entitlement and
   the release's signed rollout transitions, evaluated offline
   (:mod:`clearance.client._distribution`).

Nothing is written to the state unless every check passes, except the
evidence of a split view.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from clearance.attest.dsse import Envelope
from clearance.attest.errors import EnvelopeSignatureError
from clearance.attest.release import Release
from clearance.attest.trust_root import TrustRoot
from clearance.attest.verdict import REJECTED, Verdict
from clearance.attest.version import Version
from clearance.client._distribution import DistributionResult, check_distribution
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
from clearance.errors import BadInput
from clearance.keys import ALG_COSIGNATURE_V1, Note, SignatureError, verify_cosignature
from clearance.log.checkpoint import Checkpoint
from clearance.log.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion

CONSISTENCY_FIRST_SEEN = "first-seen"
CONSISTENCY_SAME = "same"
CONSISTENCY_PROVED = "proved"
CONSISTENCY_WITNESSED = "witnessed"


@dataclass(frozen=True)
class VerificationResult:
    """What was proven: the release, where it is logged, who approved and who witnessed."""

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
        # Witness keys in their cosignature/v1 form and key ids, computed once.
        self._witnesses = tuple(
            (w, w.key_id)
            for w in (
                k if k.alg == ALG_COSIGNATURE_V1 else k.as_alg(ALG_COSIGNATURE_V1)
                for k in trust_root.witnesses.keys
            )
        )
        self._log_key_id = trust_root.log_key.key_id

    def verify(
        self,
        artifact_sha256: str,
        bundle: Bundle | bytes,
        state: ClientState | None = None,
        customer: str | None = None,
    ) -> VerificationResult:
        """Run every check; raise the check's error or return what was proven.

        With ``customer``, also evaluate the policy, the customer's entitlement and the
        rollout carried by the bundle, offline (check 9)."""
        root = self.trust_root
        if isinstance(bundle, bytes):
            bundle = Bundle.from_bytes(bundle)
        release_env = _envelope(bundle.release, "release")
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
        inspectors = self._check_verdicts(bundle, release_sha256, checkpoint)
        if bundle.policy is not None:
            self._check_policy(bundle.policy, checkpoint)

        # 5. Checkpoint signature and cosignatures.
        self._check_log_signature(note)
        if checkpoint.origin != root.log_origin:
            raise CheckpointForgedError(
                f"checkpoint origin {checkpoint.origin!r} is not the trusted {root.log_origin!r}"
            )
        cosigned = self._cosignatures(note)
        if len(cosigned) < root.witnesses.threshold:
            raise CosignatureThresholdError(
                f"{len(cosigned)} valid witness cosignature(s), {root.witnesses.threshold} required"
            )

        # 6. Freshness, from the witnesses' cosignature timestamps.
        age = self._check_fresh(cosigned)

        # 7. No rollback.
        if state is not None:
            last = state.installed_version(release.product, release.channel)
            if last is not None and release.parsed_version < Version.parse(last):
                raise RollbackError(
                    f"{release.product} {release.channel}: version {release.version} is lower "
                    f"than the installed {last}"
                )

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

        # 8. Consistency with the last checkpoint this client saw.
        consistency = CONSISTENCY_FIRST_SEEN
        if state is not None:
            consistency = self._check_consistency(bundle, checkpoint, state)
            self._remember(state, release, checkpoint, bundle.checkpoint)

        return VerificationResult(
            product=release.product,
            version=release.version,
            channel=release.channel,
            artifact=artifact.name,
            release_sha256=release_sha256,
            log_index=bundle.release.index,
            checkpoint_size=checkpoint.size,
            inspectors=tuple(inspectors),
            witnesses=tuple(sorted(cosigned)),
            checkpoint_age=age,
            consistency=consistency,
            distribution=distribution,
        )

    def _check_verdicts(
        self, bundle: Bundle, release_sha256: str, checkpoint: Checkpoint
    ) -> list[str]:
        """Verdict rule (the gateway's): a trusted ``rejected`` vetoes; ``needs-review``
        does not count but does not veto either, so a later approval (e.g. a human
        inspector's) can still reach the threshold of distinct approving inspectors."""
        root = self.trust_root
        if not bundle.verdicts:
            raise VerdictMissingError("the bundle carries no verdict for the release")
        counted: list[tuple[LoggedEntry, Verdict]] = []
        approvers: dict[bytes, str] = {}
        review: Verdict | None = None
        for i, entry in enumerate(bundle.verdicts):
            env = _envelope(entry, f"verdicts[{i}]")
            verdict = _parse(lambda env=env: Verdict.from_envelope(env), f"verdicts[{i}]")  # type: ignore[misc]
            assert isinstance(verdict, Verdict)
            if verdict.release_sha256 != release_sha256:
                raise VerdictForOtherReleaseError(
                    f"verdicts[{i}] is for release {verdict.release_sha256}, not {release_sha256}"
                )
            try:
                signers = env.verify(root.inspectors.keys, 1)
            except EnvelopeSignatureError as exc:
                if "invalid signature" in str(exc):
                    raise VerdictSignatureError(f"verdicts[{i}]: {exc}") from None
                continue  # no trusted inspector signed it: it does not count
            if verdict.decision == REJECTED:
                raise VerdictRejectedError(
                    f"inspector {verdict.inspector!r} rejected the release"
                    + (f": {verdict.note}" if verdict.note else "")
                )
            if not verdict.approved:
                review = verdict
                continue
            counted.append((entry, verdict))
            for key in signers:
                approvers.setdefault(key.public_key, key.name)
        if len(approvers) < root.inspectors.threshold:
            if review is not None:
                raise VerdictRejectedError(
                    f"inspector {review.inspector!r} asked for human review and only "
                    f"{len(approvers)} of {root.inspectors.threshold} required inspectors approved"
                )
            raise InspectorThresholdError(
                f"{len(approvers)} trusted inspector(s) approved, "
                f"{root.inspectors.threshold} required"
            )
        for entry, verdict in counted:
            _check_logged(
                entry, checkpoint, f"verdict by {verdict.inspector!r}", VerdictNotLoggedError
            )
        return sorted(approvers.values())

    def _check_policy(self, entry: LoggedEntry, checkpoint: Checkpoint) -> None:
        role = self.trust_root.policy
        if role.threshold == 0:
            raise PolicyError("the bundle carries a policy but the trust root has no policy key")
        env = _envelope(entry, "policy")
        try:
            env.verify(role.keys, role.threshold)
        except EnvelopeSignatureError as exc:
            raise PolicyError(f"policy: {exc}") from None
        _check_logged(entry, checkpoint, "policy", PolicyError)

    def _cosignatures(self, note: Note) -> dict[str, int]:
        """Witness name -> timestamp, for each valid cosignature by a trusted witness."""
        found: dict[str, int] = {}
        for witness, witness_id in self._witnesses:
            for sig in note.signatures:
                if sig.name != witness.name or sig.key_id != witness_id:
                    continue
                try:
                    found[witness.name] = verify_cosignature(note.text, sig, witness)
                except SignatureError as exc:
                    raise CosignatureThresholdError(f"forged cosignature: {exc}") from None
        return found

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

    def _check_consistency(self, bundle: Bundle, checkpoint: Checkpoint, state: ClientState) -> str:
        seen_text = state.checkpoints.get(checkpoint.origin)
        if seen_text is None:
            return CONSISTENCY_FIRST_SEEN
        seen_bytes = seen_text.encode("utf-8")
        try:
            seen = Checkpoint.from_note(Note.from_bytes(seen_bytes))
        except BadInput as exc:
            raise StateError(f"{state.directory}: stored checkpoint is unreadable: {exc}") from None

        def split(reason: str) -> SplitViewError:
            evidence = state.keep_split_view(
                seen_bytes, bundle.checkpoint, seen.size, checkpoint.size
            )
            return SplitViewError(f"{reason}; both checkpoints kept in {evidence}", str(evidence))

        if checkpoint.size < seen.size:
            raise FreezeError(
                f"checkpoint of size {checkpoint.size} is older than the size {seen.size} "
                "this client already saw (replayed or frozen view)"
            )
        if checkpoint.size == seen.size:
            if checkpoint.root_hash != seen.root_hash:
                raise split(f"two different roots for tree size {seen.size}")
            return CONSISTENCY_SAME
        proof = next((c for c in bundle.consistency if c.from_size == seen.size), None)
        if proof is None:
            if self.trust_root.witnesses.threshold >= 1:
                return CONSISTENCY_WITNESSED
            raise ConsistencyUnprovenError(
                f"no consistency proof from size {seen.size} and no witnesses in the trust root"
            )
        try:
            verify_consistency(
                seen.size, checkpoint.size, seen.root_hash, checkpoint.root_hash, proof.proof
            )
        except ProofError as exc:
            raise split(
                f"tree {seen.size} is not a prefix of tree {checkpoint.size}: {exc}"
            ) from None
        return CONSISTENCY_PROVED

    @staticmethod
    def _remember(
        state: ClientState, release: Release, checkpoint: Checkpoint, note: bytes
    ) -> None:
        installed = state.installed.setdefault(release.product, {})
        last = installed.get(release.channel)
        if last is None or release.parsed_version > Version.parse(last):
            installed[release.channel] = release.version
        seen_text = state.checkpoints.get(checkpoint.origin)
        seen_size = -1
        if seen_text is not None:
            seen_size = Checkpoint.from_note(Note.from_bytes(seen_text.encode())).size
        if checkpoint.size >= seen_size:
            state.checkpoints[checkpoint.origin] = note.decode("utf-8")
        state.save()


def _checkpoint_body(note: Note) -> Checkpoint:
    try:
        return Checkpoint.from_note(note)
    except BadInput as exc:
        raise MalformedBundleError(str(exc)) from None


def _envelope(entry: LoggedEntry, what: str) -> Envelope:
    try:
        return Envelope.from_bytes(entry.envelope)
    except BadInput as exc:
        raise MalformedBundleError(f"{what}: {exc}") from None


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

"""The endpoint verifier: the happy path and one test per attack, each with its own error."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from clearance.attest import Envelope, Signature, create_verdict, sign_envelope
from clearance.attest.dsse import key_id
from clearance.client import (
    ArtifactDigestError,
    Bundle,
    BundleVerifier,
    CheckpointForgedError,
    ClientState,
    CosignatureThresholdError,
    FreezeError,
    InspectorThresholdError,
    LoggedEntry,
    MixAndMatchError,
    ReleaseNotLoggedError,
    ReleaseSignatureError,
    RollbackError,
    SplitViewError,
    StaleCheckpointError,
    VerdictForOtherReleaseError,
    VerdictMissingError,
    VerdictNotLoggedError,
    VerdictRejectedError,
    VerdictSignatureError,
    VerificationError,
    VerificationResult,
    keep_split_view,
    record_installation,
)
from clearance.keys import Signer
from client.world import World

RULES = b"rule a { condition: true }"
DIGEST = hashlib.sha256(RULES).hexdigest()


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


class _Installer:
    """Verify, then record the installation as the command does (the verifier is pure)."""

    def __init__(self, verifier: BundleVerifier) -> None:
        self.verifier = verifier

    def verify(
        self, digest: str, bundle: Bundle | bytes, state: ClientState | None = None, **kw: str
    ) -> VerificationResult:
        try:
            result = self.verifier.verify(digest, bundle, state, **kw)
        except SplitViewError as exc:
            if state is None:
                raise
            raise keep_split_view(state, exc) from None
        if state is not None:
            record_installation(state, result)
        return result


def _verifier(world: World) -> _Installer:
    return _Installer(BundleVerifier(world.trust_root, world.clock))


def _state(tmp_path: Path) -> ClientState:
    return ClientState.load(tmp_path / "state")


def test_happy_path_and_state(world: World, tmp_path: Path) -> None:
    _, _, idx = world.publish("1.0")
    bundle = world.bundle(idx)
    state = _state(tmp_path)
    result = _verifier(world).verify(DIGEST, bundle.to_bytes(), state)
    assert result.product == "av" and result.version == "1.0"
    assert result.inspectors == ("inspector-a", "inspector-b")
    assert result.witnesses == ("witness-a", "witness-b")
    assert result.consistency == "first-seen"
    assert result.log_index == 0 and result.checkpoint_size == 4
    reloaded = _state(tmp_path)
    assert reloaded.installed_version("av", "stable") == "1.0"
    # Same bundle again: same checkpoint.
    assert _verifier(world).verify(DIGEST, bundle, reloaded).consistency == "same"
    # The bundle survives a round trip byte for byte.
    assert Bundle.from_bytes(bundle.to_bytes()) == bundle


def test_upgrade_with_consistency_proof(world: World, tmp_path: Path) -> None:
    _, _, idx1 = world.publish("1.0")
    state = _state(tmp_path)
    _verifier(world).verify(DIGEST, world.bundle(idx1), state)
    old_size = world.log.size
    _, _, idx2 = world.publish("1.1", RULES)
    proved = _verifier(world).verify(
        DIGEST, world.bundle(idx2, since=(old_size,)), _state(tmp_path)
    )
    assert proved.consistency == "proved" and proved.version == "1.1"
    assert _state(tmp_path).installed_version("av", "stable") == "1.1"


def test_upgrade_without_proof_is_vouched_by_witnesses(world: World, tmp_path: Path) -> None:
    _, _, idx1 = world.publish("1.0")
    _verifier(world).verify(DIGEST, world.bundle(idx1), _state(tmp_path))
    _, _, idx2 = world.publish("1.1")
    assert (
        _verifier(world).verify(DIGEST, world.bundle(idx2), _state(tmp_path)).consistency
        == "witnessed"
    )


# --- one test per attack -------------------------------------------------------------------


def test_tampered_artifact(world: World) -> None:
    _, _, idx = world.publish("1.0")
    tampered = hashlib.sha256(RULES + b" or true").hexdigest()
    with pytest.raises(ArtifactDigestError):
        _verifier(world).verify(tampered, world.bundle(idx))


def test_unsigned_release(world: World) -> None:
    release = world.release("1.0")
    unsigned = Envelope(release.payload_type, release.payload)
    verdicts = world.approve(unsigned)
    idx = world.append(unsigned, *verdicts)
    with pytest.raises(ReleaseSignatureError):
        _verifier(world).verify(DIGEST, world.bundle(idx))


def test_release_signed_by_another_key(world: World) -> None:
    release = world.release("1.0")
    mallory = sign_envelope(release.payload_type, release.payload, [Signer.generate("vendor")])
    idx = world.append(mallory, *world.approve(mallory))
    with pytest.raises(ReleaseSignatureError):
        _verifier(world).verify(DIGEST, world.bundle(idx))


def test_release_with_forged_vendor_signature(world: World) -> None:
    release = world.release("1.0")
    forged = Envelope(
        release.payload_type,
        release.payload,
        (Signature(key_id(world.vendor.verifier), b"\x00" * 64),),
    )
    idx = world.append(forged, *world.approve(forged))
    with pytest.raises(ReleaseSignatureError, match="invalid signature"):
        _verifier(world).verify(DIGEST, world.bundle(idx))


def test_release_not_in_log(world: World) -> None:
    _, _, idx = world.publish("1.0")
    bundle = world.bundle(idx)
    # A properly signed and approved release that was never appended, given the logged one's proof.
    hidden = world.release("1.0-hidden")
    fake_entry = LoggedEntry.of(
        hidden.to_bytes(), bundle.release.index, bundle.release.inclusion_proof
    )
    verdicts = [
        LoggedEntry.of(v.to_bytes(), e.index, e.inclusion_proof)
        for v, e in zip(world.approve(hidden), bundle.verdicts, strict=True)
    ]
    with pytest.raises(ReleaseNotLoggedError):
        _verifier(world).verify(
            DIGEST, replace(bundle, release=fake_entry, verdicts=tuple(verdicts))
        )


def test_verdict_for_another_release(world: World) -> None:
    _, _, idx1 = world.publish("1.0")
    _, _, idx2 = world.publish("1.1", b"other rules")
    # Release 1.0 with the verdicts of release 1.1.
    with pytest.raises(VerdictForOtherReleaseError):
        _verifier(world).verify(DIGEST, world.bundle([idx1[0], *idx2[1:]]))


def test_rejected_verdict(world: World) -> None:
    release = world.release("1.0")
    verdicts = [*world.approve(release, count=1), *world.approve(release, "rejected")[1:]]
    idx = world.append(release, *verdicts)
    with pytest.raises(VerdictRejectedError):
        _verifier(world).verify(DIGEST, world.bundle(idx))


def test_needs_review_is_not_approval(world: World) -> None:
    release = world.release("1.0")
    idx = world.append(release, *world.approve(release, "needs-review"))
    with pytest.raises(VerdictRejectedError):
        _verifier(world).verify(DIGEST, world.bundle(idx))


def test_needs_review_then_human_approval(world: World) -> None:
    release = world.release("1.0")
    review = world.approve(release, "needs-review", count=1)[0]
    human = create_verdict(
        release, "approved", signers=world.inspectors[0], note="reviewed by hand"
    )
    idx = world.append(release, review, human, world.approve(release)[1])
    result = _verifier(world).verify(DIGEST, world.bundle(idx))
    assert result.inspectors == ("inspector-a", "inspector-b")


def test_a_rejection_vetoes_even_with_enough_approvals(world: World) -> None:
    release = world.release("1.0")
    veto = create_verdict(release, "rejected", signers=world.inspectors[0], note="targets one org")
    idx = world.append(release, *world.approve(release), veto)
    with pytest.raises(VerdictRejectedError, match="targets one org"):
        _verifier(world).verify(DIGEST, world.bundle(idx))


def test_missing_verdict(world: World) -> None:
    (idx,) = world.append(world.release("1.0"))
    with pytest.raises(VerdictMissingError):
        _verifier(world).verify(DIGEST, world.bundle([idx]))


def test_too_few_inspectors(world: World) -> None:
    release = world.release("1.0")
    one = world.approve(release, count=1)
    # The same inspector twice, and an untrusted "inspector", do not make two.
    stranger = create_verdict(release, "approved", signers=Signer.generate("inspector-b"))
    idx = world.append(release, one[0], one[0], stranger)
    with pytest.raises(InspectorThresholdError):
        _verifier(world).verify(DIGEST, world.bundle(idx))


def test_forged_inspector_signature(world: World) -> None:
    release = world.release("1.0")
    good = world.approve(release)
    forged = Envelope(
        good[1].payload_type,
        good[1].payload,
        (Signature(key_id(world.inspectors[1].verifier), b"\x01" * 64),),
    )
    idx = world.append(release, good[0], forged)
    with pytest.raises(VerdictSignatureError):
        _verifier(world).verify(DIGEST, world.bundle(idx))


def test_verdict_not_logged(world: World) -> None:
    release, _, idx = world.publish("1.0")
    bundle = world.bundle(idx)
    late = create_verdict(release, "approved", signers=world.inspectors[1], note="never logged")
    entry = bundle.verdicts[1]
    fake = LoggedEntry.of(late.to_bytes(), entry.index, entry.inclusion_proof)
    with pytest.raises(VerdictNotLoggedError):
        _verifier(world).verify(DIGEST, replace(bundle, verdicts=(bundle.verdicts[0], fake)))


def test_forged_checkpoint(world: World) -> None:
    # The attacker runs its own log with the same origin, containing its release.
    _, _, idx = world.publish("1.0")
    impostor = Signer.generate(world.log_key.name)
    with pytest.raises(CheckpointForgedError):
        _verifier(world).verify(DIGEST, world.bundle(idx, world.checkpoint(log_key=impostor)))


def test_checkpoint_with_wrong_root(world: World) -> None:
    _, _, idx = world.publish("1.0")
    # A correctly signed checkpoint, but proofs made for another tree: not logged.
    bundle = replace(world.bundle(idx), checkpoint=world.checkpoint(root=b"\x00" * 32))
    with pytest.raises(ReleaseNotLoggedError):
        _verifier(world).verify(DIGEST, bundle)


def test_stale_checkpoint(world: World) -> None:
    _, _, idx = world.publish("1.0")
    old = world.checkpoint(cosigned_at=world.now - world.max_age - 60)
    with pytest.raises(StaleCheckpointError):
        _verifier(world).verify(DIGEST, world.bundle(idx, old))


def test_too_few_cosignatures(world: World) -> None:
    _, _, idx = world.publish("1.0")
    with pytest.raises(CosignatureThresholdError):
        _verifier(world).verify(DIGEST, world.bundle(idx, world.checkpoint(witnesses=1)))


def test_cosignature_by_untrusted_witness_does_not_count(world: World) -> None:
    from clearance.keys import Note, cosign

    _, _, idx = world.publish("1.0")
    note = Note.from_bytes(world.checkpoint(witnesses=1))
    extra = cosign(note.text, Signer.generate("witness-b"), int(world.now))
    with pytest.raises(CosignatureThresholdError):
        _verifier(world).verify(DIGEST, world.bundle(idx, note.with_signatures([extra]).to_bytes()))


def test_rollback_to_older_version(world: World, tmp_path: Path) -> None:
    _, _, idx1 = world.publish("1.0")
    bundle_old = world.bundle(idx1)
    _, _, idx2 = world.publish("2.0")
    state = _state(tmp_path)
    _verifier(world).verify(DIGEST, world.bundle(idx2), state)
    # Old release, but presented under today's checkpoint so only the version check can stop it.
    old_today = world.bundle(idx1)
    assert old_today.checkpoint != bundle_old.checkpoint
    with pytest.raises(RollbackError):
        _verifier(world).verify(DIGEST, old_today, _state(tmp_path))


def test_freeze_old_checkpoint_replayed(world: World, tmp_path: Path) -> None:
    _, _, idx1 = world.publish("1.0")
    frozen = world.bundle(idx1)  # fresh enough, but of the old, smaller tree
    world.publish("1.1")
    # The client installs 1.0 under the newer checkpoint, then is shown the old one again.
    _verifier(world).verify(DIGEST, world.bundle(idx1), _state(tmp_path))
    with pytest.raises(FreezeError):
        _verifier(world).verify(DIGEST, frozen, _state(tmp_path))


def test_split_view_same_size(world: World, tmp_path: Path) -> None:
    _, _, idx = world.publish("1.0")
    _verifier(world).verify(DIGEST, world.bundle(idx), _state(tmp_path))
    # The log shows this client a different tree of the same size (a fork it keeps for it).
    fork = World(world.tmp, world.log_key, world.vendor, world.inspectors, world.witnesses)
    fork.now = world.now
    fork.log.append(b"another view")
    _, _, fidx = fork.publish("1.0")
    fork_size_bundle = fork.bundle(fidx, fork.checkpoint(size=world.log.size))
    with pytest.raises(SplitViewError) as info:
        _verifier(world).verify(DIGEST, fork_size_bundle, _state(tmp_path))
    evidence = Path(info.value.evidence_dir or "")
    assert (evidence / "seen.checkpoint").read_bytes() != (
        evidence / "presented.checkpoint"
    ).read_bytes()


def test_split_view_bad_consistency(world: World, tmp_path: Path) -> None:
    _, _, idx = world.publish("1.0")
    _verifier(world).verify(DIGEST, world.bundle(idx), _state(tmp_path))
    seen_size = world.log.size
    fork = World(world.tmp, world.log_key, world.vendor, world.inspectors, world.witnesses)
    fork.now = world.now
    fork.log.append(b"rewritten history")
    _, _, fidx = fork.publish("1.1")
    with pytest.raises(SplitViewError):
        _verifier(world).verify(DIGEST, fork.bundle(fidx, since=(seen_size,)), _state(tmp_path))
    assert list((tmp_path / "state" / "split-view").iterdir())


def test_build_bundle_checks_its_own_proofs(world: World) -> None:
    from clearance.log.merkle import ProofError

    _, _, idx = world.publish("1.0")
    with pytest.raises(ProofError):
        world.bundle(idx, world.checkpoint(root=b"\x00" * 32))


def test_mix_and_match(world: World) -> None:
    _, _, idx1 = world.publish("1.0")
    _, _, idx2 = world.publish("1.1")
    a, b = world.bundle(idx1), world.bundle(idx2)
    # Release envelope from bundle A, its proof (index, leaf hash, path) from bundle B.
    mixed_release = replace(b.release, envelope=a.release.envelope)
    with pytest.raises(MixAndMatchError):
        _verifier(world).verify(DIGEST, replace(a, release=mixed_release))


def test_state_is_untouched_by_a_refusal(world: World, tmp_path: Path) -> None:
    _, _, idx = world.publish("1.0")
    with pytest.raises(VerificationError):
        _verifier(world).verify(
            DIGEST, world.bundle(idx, world.checkpoint(witnesses=0)), _state(tmp_path)
        )
    assert not (tmp_path / "state" / "state.json").exists()


def test_policy_in_bundle(world: World) -> None:
    from clearance.attest import create_policy
    from clearance.client import PolicyError
    from clearance.gateway.bundles import build_bundle

    _, _, idx = world.publish("1.0")
    policy = create_policy({"jurisdictions": {"XX": "deny"}}, world.policy_key)
    forged = create_policy({"jurisdictions": {}}, Signer.generate("regulator"))
    (p_idx, f_idx) = world.append(policy, forged)
    ok = build_bundle(world.log, world.checkpoint(), idx[0], idx[1:], p_idx, index=world.index())
    assert _verifier(world).verify(DIGEST, ok).version == "1.0"
    bad = build_bundle(world.log, world.checkpoint(), idx[0], idx[1:], f_idx, index=world.index())
    with pytest.raises(PolicyError):
        _verifier(world).verify(DIGEST, bad)


def test_no_witnesses_means_no_unproven_growth(world: World, tmp_path: Path) -> None:
    from clearance.attest import Role
    from clearance.client import ConsistencyUnprovenError

    root = replace(world.trust_root, witnesses=Role(), max_checkpoint_age=None)
    verifier = _Installer(BundleVerifier(root, world.clock))
    _, _, idx1 = world.publish("1.0")
    verifier.verify(DIGEST, world.bundle(idx1, world.checkpoint(witnesses=0)), _state(tmp_path))
    seen = world.log.size
    _, _, idx2 = world.publish("1.1")
    with pytest.raises(ConsistencyUnprovenError):
        verifier.verify(DIGEST, world.bundle(idx2, world.checkpoint(witnesses=0)), _state(tmp_path))
    proved = world.bundle(idx2, world.checkpoint(witnesses=0), since=(seen,))
    assert verifier.verify(DIGEST, proved, _state(tmp_path)).consistency == "proved"


def test_freshness_needs_dated_cosignatures(world: World) -> None:
    from clearance.attest import Role

    _, _, idx = world.publish("1.0")
    root = replace(world.trust_root, witnesses=Role())
    with pytest.raises(StaleCheckpointError, match="cannot be bounded"):
        BundleVerifier(root, world.clock).verify(
            DIGEST, world.bundle(idx, world.checkpoint(witnesses=0))
        )
    # The threshold-th newest cosignature counts: one fresh and one stale witness is stale.
    from clearance.keys import Note, cosign, sign_note
    from clearance.log.checkpoint import Checkpoint

    body = Checkpoint("clearance.test/log", world.log.size, world.log.root()).to_text()
    note = sign_note(body, [world.log_key]).with_signatures(
        [
            cosign(body, world.witnesses[0], int(world.now)),
            cosign(body, world.witnesses[1], int(world.now) - world.max_age - 1),
        ]
    )
    with pytest.raises(StaleCheckpointError):
        _verifier(world).verify(DIGEST, world.bundle(idx, note.to_bytes()))
    assert isinstance(note, Note)


def test_corrupt_state_is_bad_input(world: World, tmp_path: Path) -> None:
    from clearance.client import StateError

    _, _, idx = world.publish("1.0")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "state.json").write_text("{not json")
    with pytest.raises(StateError):
        ClientState.load(state_dir)
    (state_dir / "state.json").write_text(
        '{"installed": {}, "checkpoints": {"clearance.test/log": "junk"}}'
    )
    with pytest.raises(StateError):
        _verifier(world).verify(DIGEST, world.bundle(idx), ClientState.load(state_dir))

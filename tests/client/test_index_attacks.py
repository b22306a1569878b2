"""Issue 10 attacks on the endpoint: selected evidence, names counted as keys, unpinned
products and channels, a frozen channel; each refused with its own error."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from clearance.attest import create_verdict, reset_channel, revoke_key, revoke_release
from clearance.client import (
    Bundle,
    BundleVerifier,
    ClientState,
    IncompleteBundleError,
    IndexMissingError,
    IndexProofError,
    InspectorThresholdError,
    NotApprovedInIndexError,
    PinningError,
    ReleaseRevokedError,
    RollbackError,
    VerdictRejectedError,
    record_installation,
)
from clearance.index import IndexProof, release_key
from clearance.keys import Signer
from client.world import World

RULES = b"rule a { condition: true }"
DIGEST = hashlib.sha256(RULES).hexdigest()


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def _verifier(world: World) -> BundleVerifier:
    return BundleVerifier(world.trust_root, world.clock)


def _install(world: World, bundle: Bundle, state: ClientState, **kw: str) -> None:
    record_installation(state, _verifier(world).verify(DIGEST, bundle, state, **kw))


# -- case 1: a bundle carrying only the approval of a later-rejected release -------------------


def test_bundle_with_only_the_approval_of_a_later_rejected_release_is_refused(
    world: World,
) -> None:
    release, _, idx = world.publish("1.0")
    approved_then = world.bundle(idx)
    assert _verifier(world).verify(DIGEST, approved_then).version == "1.0"
    (rejection,) = world.append(
        create_verdict(release, "rejected", signers=world.inspectors[0], note="backdoor")
    )
    # The gateway (or anyone reading the tiles) ships the approvals only, under the new
    # checkpoint: the index lists the rejection, so the bundle is incomplete.
    selected = world.bundle(idx)
    with pytest.raises(IncompleteBundleError, match=f"rejected at log index {rejection}"):
        _verifier(world).verify(DIGEST, selected)
    # With everything the log holds, the rejection vetoes.
    with pytest.raises(VerdictRejectedError):
        _verifier(world).verify(DIGEST, world.bundle(idx, complete=True))


def test_a_rejection_by_a_key_the_bundle_hides_is_counted_by_the_index(world: World) -> None:
    release, _, _ = world.publish("1.0")
    world.append(create_verdict(release, "rejected", signers=world.inspectors[1]))
    record = world.index().record(release_key(release.sha256))
    assert record is not None and record["state"] == "rejected"


def test_an_index_record_rewritten_to_approved_does_not_match_the_root(world: World) -> None:
    release, _, idx = world.publish("1.0")
    world.append(create_verdict(release, "rejected", signers=world.inspectors[0]))
    bundle = world.bundle(idx)
    forged = []
    for proof in bundle.index:
        if proof.key == release_key(release.sha256):
            record = json.loads(proof.value)
            record["state"], record["verdicts"] = "approved", record["verdicts"][:2]
            proof = IndexProof(proof.key, json.dumps(record).encode(), proof.siblings)
        forged.append(proof)
    with pytest.raises(IndexProofError):
        _verifier(world).verify(DIGEST, replace(bundle, index=tuple(forged)))


def test_a_bundle_without_index_proofs_is_refused(world: World) -> None:
    _, _, idx = world.publish("1.0")
    with pytest.raises(IndexMissingError):
        _verifier(world).verify(DIGEST, replace(world.bundle(idx), index=()))


def test_a_checkpoint_that_commits_to_no_index_is_refused(world: World) -> None:
    from clearance.keys import cosign, sign_note
    from clearance.log.checkpoint import Checkpoint

    _, _, idx = world.publish("1.0")
    body = Checkpoint("clearance.test/log", world.log.size, world.log.root()).to_text()
    note = sign_note(body, [world.log_key]).with_signatures(
        [cosign(body, w, int(world.now)) for w in world.witnesses[:2]]
    )
    with pytest.raises(IndexMissingError, match="0 index root lines"):
        _verifier(world).verify(DIGEST, world.bundle(idx, note.to_bytes()))


# -- case 2: names counted as keys ----------------------------------------------------------------


def test_signer_names_as_strings_do_not_reach_a_threshold_of_three(tmp_path: Path) -> None:
    world = World(
        tmp_path,
        inspectors=[Signer.generate(n) for n in ("inspector", "inspector2", "inspector3")],
        inspector_threshold=3,
    )
    release = world.release("1.0")
    a, b = world.inspectors[:2]
    verdicts = [create_verdict(release, "approved", signers=s) for s in ([a], [b], [a, b])]
    idx = world.append(release, *verdicts)
    with pytest.raises(InspectorThresholdError, match="2 trusted inspector key"):
        _verifier(world).verify(DIGEST, world.bundle(idx))
    record = world.index().record(release_key(release.sha256))
    assert record is not None and record["state"] == "pending"
    assert len(record["approvers"]) == 2


# -- case 4: pinning -----------------------------------------------------------------------------


def test_a_bundle_for_another_channel_is_refused_when_pinned(world: World, tmp_path: Path) -> None:
    state = ClientState.load(tmp_path / "state")
    _, _, stable = world.publish("2.0.0")
    _install(world, world.bundle(stable), state)
    _, _, legacy = world.publish("0.1.0", channel="legacy")
    state = ClientState.load(tmp_path / "state")
    with pytest.raises(PinningError, match="pinned to av/stable"):
        _verifier(world).verify(DIGEST, world.bundle(legacy), state)
    # Naming the channel is how an operator switches; the state then pins the new channel.
    _install(world, world.bundle(legacy), state, channel="legacy")
    assert ClientState.load(tmp_path / "state").pins == {"av": "legacy"}


def test_a_bundle_for_another_product_of_the_vendor_is_refused(
    world: World, tmp_path: Path
) -> None:
    state = ClientState.load(tmp_path / "state")
    _, _, av = world.publish("2.0.0")
    _install(world, world.bundle(av), state)
    _, _, other = world.publish("9.0.0", product="other-agent")
    with pytest.raises(PinningError, match="product 'other-agent'"):
        _verifier(world).verify(DIGEST, world.bundle(other), ClientState.load(tmp_path / "state"))


def test_a_named_product_or_channel_must_match_the_bundle(world: World) -> None:
    _, _, idx = world.publish("2.0.0")
    with pytest.raises(PinningError):
        _verifier(world).verify(DIGEST, world.bundle(idx), product="edr")
    with pytest.raises(PinningError):
        _verifier(world).verify(DIGEST, world.bundle(idx), channel="beta")


# -- case 7: a stolen vendor key freezes a channel; revocation and reset -------------------


def test_stolen_key_release_9999_revoked_and_channel_reset(world: World, tmp_path: Path) -> None:
    state = ClientState.load(tmp_path / "state")
    _, _, good = world.publish("2.0.0")
    _install(world, world.bundle(good), state)
    stolen, _, frozen = world.publish("9999")
    _install(world, world.bundle(frozen), state)  # the endpoint took it: the channel is frozen
    # The policy authority revokes the release and resets the channel to 2.0.0.
    world.append(
        revoke_release(stolen, "signed with a stolen vendor key", world.policy_key),
        reset_channel("av", "stable", "2.0.0", "undo the stolen 9999", world.policy_key),
    )
    with pytest.raises(ReleaseRevokedError):
        _verifier(world).verify(DIGEST, world.bundle(frozen), state)
    # The vendor's fix, 2.0.1, is below 9999 but above the floor: accepted in the new epoch.
    _, _, fixed = world.publish("2.0.1")
    result = _verifier(world).verify(DIGEST, world.bundle(fixed), state)
    assert (result.version, result.channel_epoch, result.channel_latest) == ("2.0.1", 1, "2.0.1")
    record_installation(state, result)
    assert ClientState.load(tmp_path / "state").epoch("av", "stable") == 1
    # Below the floor is still a rollback.
    _, _, old = world.publish("1.9.0", channel="stable")
    with pytest.raises((RollbackError, ReleaseRevokedError, IndexMissingError)):
        _verifier(world).verify(DIGEST, world.bundle(old), state)


def test_without_a_reset_an_older_release_stays_a_rollback(world: World, tmp_path: Path) -> None:
    state = ClientState.load(tmp_path / "state")
    _, _, low = world.publish("2.0.0")
    _, _, high = world.publish("9999")
    _install(world, world.bundle(high), state)
    # 2.0.0 is logged, approved and unrevoked, but the endpoint already has 9999 (epoch 0).
    with pytest.raises(RollbackError):
        _verifier(world).verify(DIGEST, world.bundle(low), state)


def test_a_revoked_inspector_key_no_longer_counts(world: World) -> None:
    _, _, idx = world.publish("1.0")
    world.append(revoke_key(world.inspectors[0].verifier, "key stolen", world.policy_key))
    # The index re-evaluates the release without the revoked key: one approval of two.
    with pytest.raises(NotApprovedInIndexError, match="pending"):
        _verifier(world).verify(DIGEST, world.bundle(idx))


def test_a_revocation_signed_by_the_vendor_changes_nothing(world: World) -> None:
    release, _, idx = world.publish("1.0")
    world.append(revoke_release(release, "vendor says so", world.vendor))
    assert _verifier(world).verify(DIGEST, world.bundle(idx)).version == "1.0"


# -- the verifier is pure ------------------------------------------------------------------------


def test_verify_writes_no_state_and_reads_only_its_clock(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, idx = world.publish("1.0")
    state = ClientState.load(tmp_path / "state")

    def no_wall_clock() -> float:
        raise AssertionError("the verifier read time.time()")

    monkeypatch.setattr(time, "time", no_wall_clock)
    result = _verifier(world).verify(DIGEST, world.bundle(idx), state)
    monkeypatch.undo()
    assert result.update is not None and result.update.version == "1.0"
    assert not (tmp_path / "state").exists()
    assert state.installed == {} and state.checkpoints == {}


def test_index_proof_values_are_base64_in_the_wire_form(world: World) -> None:
    _, _, idx = world.publish("1.0")
    wire = json.loads(world.bundle(idx).to_bytes())
    keys = [p["key"] for p in wire["index"]]
    assert keys[0].startswith("release/") and keys[2] == "meta"
    assert json.loads(base64.b64decode(wire["index"][0]["value"]))["state"] == "approved"

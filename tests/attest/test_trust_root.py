"""Trust root documents and TUF-style signed rotation."""

from __future__ import annotations

import pytest

from clearance.attest import (
    Role,
    RotationRefused,
    TrustRoot,
    TrustRootFormatError,
    accept_rotation,
    follow_rotations,
    rotation_envelope,
)
from clearance.keys import Signer


def _root(**overrides: object) -> tuple[TrustRoot, dict[str, Signer]]:
    keys = {n: Signer.generate(n) for n in ("log", "v1", "v2", "i1", "i2", "w1", "pol")}
    root = TrustRoot(
        log_origin="clearance.example/log",
        log_key=keys["log"].verifier,
        vendors=Role((keys["v1"].verifier, keys["v2"].verifier), 1),
        inspectors=Role((keys["i1"].verifier, keys["i2"].verifier), 2),
        witnesses=Role((keys["w1"].verifier,), 1),
        policy=Role((keys["pol"].verifier,), 1),
        **overrides,  # type: ignore[arg-type]
    )
    return root, keys


def test_round_trip_and_no_pooled_root_role() -> None:
    root, _ = _root()
    assert TrustRoot.from_bytes(root.to_json().encode()) == root
    assert TrustRoot.from_bytes(root.to_bytes()) == root
    # No pooled root role of vendor + inspector + policy keys any more.
    assert root.root is None and "root" not in root.to_dict()
    assert root.max_checkpoint_age == 86400


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(_type="x"),
        lambda d: d["vendors"].update(threshold=3),
        lambda d: d["inspectors"].update(keys=[], threshold=0),
        lambda d: d["log"].update(key="nope"),
        lambda d: d.update(maxCheckpointAgeSeconds="1d"),
        lambda d: d["witnesses"].update(keys=["a+00000000+AAAA"]),
    ],
)
def test_malformed_roots(mutate: object) -> None:
    root, _ = _root()
    data = root.to_dict()
    mutate(data)  # type: ignore[operator]
    import json

    with pytest.raises(TrustRootFormatError):
        TrustRoot.from_bytes(json.dumps(data).encode())


def test_rotation_signed_by_the_changed_party_and_the_policy_authority_is_accepted() -> None:
    root, keys = _root()
    new_inspector = Signer.generate("i3")
    new_root = root.next_version(inspectors=Role((keys["i1"].verifier, new_inspector.verifier), 2))
    # Current inspectors (2 of i1, i2), new inspectors (2 of i1, i3), and the regulator.
    envelope = rotation_envelope(new_root).with_signatures(
        [keys["i1"], keys["i2"], new_inspector, keys["pol"]]
    )
    accepted = accept_rotation(root, envelope)
    assert accepted == new_root
    assert accepted.version == 2
    # The envelope itself can be pinned and parses to the same root.
    assert TrustRoot.from_bytes(envelope.to_bytes()) == new_root
    assert follow_rotations(root, [envelope]) == new_root


def test_vendor_replacing_the_inspectors_is_refused() -> None:
    """Case 6: whatever its number of keys, the vendor cannot replace the inspectors."""
    root, keys = _root()
    mallory_inspector = Signer.generate("i-mallory")
    new_root = root.next_version(inspectors=Role((mallory_inspector.verifier,), 1))
    envelope = rotation_envelope(new_root).with_signatures(
        [keys["v1"], keys["v2"], mallory_inspector]
    )
    with pytest.raises(RotationRefused, match="current inspectors"):
        accept_rotation(root, envelope)


def test_vendor_and_regulator_replacing_the_inspectors_is_refused() -> None:
    root, keys = _root()
    mallory = Signer.generate("i-mallory")
    new_root = root.next_version(inspectors=Role((mallory.verifier,), 1))
    envelope = rotation_envelope(new_root).with_signatures([keys["v1"], keys["pol"], mallory])
    with pytest.raises(RotationRefused, match="current inspectors"):
        accept_rotation(root, envelope)


def test_vendor_replacing_the_witnesses_is_refused() -> None:
    root, keys = _root()
    fake = Signer.generate("w-fake")
    new_root = root.next_version(witnesses=Role((fake.verifier,), 1))
    envelope = rotation_envelope(new_root).with_signatures([keys["v1"], keys["v2"], fake])
    with pytest.raises(RotationRefused, match="current witnesses"):
        accept_rotation(root, envelope)


def test_vendor_replacing_the_log_key_is_refused() -> None:
    root, keys = _root()
    fake = Signer.generate("log-fake")
    new_root = root.next_version(log_key=fake.verifier)
    envelope = rotation_envelope(new_root).with_signatures([keys["v1"], keys["v2"], fake])
    with pytest.raises(RotationRefused, match="current log"):
        accept_rotation(root, envelope)


def test_stolen_vendor_key_rotating_out_the_vendor_is_refused_without_the_regulator() -> None:
    """The thief holds a valid vendor key (threshold 1) but not the policy authority's."""
    root, keys = _root()
    thief = Signer.generate("v-thief")
    new_root = root.next_version(vendors=Role((thief.verifier,), 1))
    envelope = rotation_envelope(new_root).with_signatures([keys["v1"], thief])
    with pytest.raises(RotationRefused, match="policy authority"):
        accept_rotation(root, envelope)
    # With the regulator's co-signature the vendor can rotate its own keys.
    fresh = Signer.generate("v3")
    recovered = root.next_version(vendors=Role((keys["v2"].verifier, fresh.verifier), 1))
    ok = rotation_envelope(recovered).with_signatures([keys["v2"], fresh, keys["pol"]])
    assert accept_rotation(root, ok) == recovered


def test_rotation_must_also_satisfy_the_new_keys() -> None:
    root, keys = _root()
    newcomer = Signer.generate("i-new")
    new_root = root.next_version(inspectors=Role((keys["i1"].verifier, newcomer.verifier), 2))
    envelope = rotation_envelope(new_root).with_signatures([keys["i1"], keys["i2"], keys["pol"]])
    with pytest.raises(RotationRefused, match="new inspectors"):
        accept_rotation(root, envelope)


def test_policy_authority_alone_cannot_replace_the_inspectors() -> None:
    root, keys = _root()
    other = Signer.generate("i-gov")
    new_root = root.next_version(inspectors=Role((other.verifier,), 1))
    envelope = rotation_envelope(new_root).with_signatures([keys["pol"], other])
    with pytest.raises(RotationRefused, match="current inspectors"):
        accept_rotation(root, envelope)


def test_a_version_bump_alone_needs_the_policy_authority() -> None:
    root, keys = _root()
    bump = root.next_version()
    with pytest.raises(RotationRefused, match="policy authority"):
        accept_rotation(root, rotation_envelope(bump).with_signatures([keys["v1"]]))
    assert accept_rotation(root, rotation_envelope(bump).with_signatures([keys["pol"]])) == bump


def test_one_key_in_two_roles_is_refused() -> None:
    """The vendor's key cannot also be an inspector key: roles are held by distinct parties."""
    keys = {n: Signer.generate(n) for n in ("log", "v1", "i1")}
    with pytest.raises(TrustRootFormatError, match="both in vendors and in inspectors"):
        TrustRoot(
            log_origin="o",
            log_key=keys["log"].verifier,
            vendors=Role((keys["v1"].verifier,), 1),
            inspectors=Role((keys["i1"].verifier, keys["v1"].verifier), 1),
        )


def test_explicit_root_role_is_an_extra_requirement() -> None:
    extra = Signer.generate("root-a")
    root, keys = _root(root=Role((extra.verifier,), 1))
    new_inspector = Signer.generate("i3")
    new_root = root.next_version(inspectors=Role((keys["i1"].verifier, new_inspector.verifier), 2))
    parties = [keys["i1"], keys["i2"], new_inspector, keys["pol"]]
    with pytest.raises(RotationRefused, match="current root"):
        accept_rotation(root, rotation_envelope(new_root).with_signatures(parties))
    signed = rotation_envelope(new_root).with_signatures([*parties, extra])
    assert accept_rotation(root, signed) == new_root


def test_rotation_must_increase_version_by_one() -> None:
    root, keys = _root()
    skipped = root.next_version().next_version()
    envelope = rotation_envelope(skipped).with_signatures([keys["v1"], keys["i1"], keys["pol"]])
    with pytest.raises(RotationRefused, match="does not follow"):
        accept_rotation(root, envelope)

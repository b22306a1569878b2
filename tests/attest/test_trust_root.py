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


def test_round_trip_and_default_root_role() -> None:
    root, _ = _root()
    assert TrustRoot.from_bytes(root.to_json().encode()) == root
    assert TrustRoot.from_bytes(root.to_bytes()) == root
    # Default root role: vendor + inspector + policy keys, majority of 5 = 3.
    assert len(root.root_role.keys) == 5
    assert root.root_role.threshold == 3
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


def test_rotation_signed_by_threshold_of_old_and_new_is_accepted() -> None:
    root, keys = _root()
    new_inspector = Signer.generate("i3")
    new_root = root.next_version(
        inspectors=Role((keys["i1"].verifier, new_inspector.verifier), 2), root=None
    )
    # New default root role: v1, v2, i1, i3, pol -> threshold 3.
    envelope = rotation_envelope(new_root).with_signatures([keys["v1"], keys["i1"], keys["pol"]])
    accepted = accept_rotation(root, envelope)
    assert accepted == new_root
    assert accepted.version == 2
    # The envelope itself can be pinned and parses to the same root.
    assert TrustRoot.from_bytes(envelope.to_bytes()) == new_root
    assert follow_rotations(root, [envelope]) == new_root


def test_rotation_by_too_few_old_keys_is_refused() -> None:
    root, keys = _root()
    mallory_inspector = Signer.generate("i-mallory")
    # The vendor alone tries to replace the inspectors with its own key.
    new_root = root.next_version(
        inspectors=Role((mallory_inspector.verifier,), 1),
        root=Role((keys["v1"].verifier, mallory_inspector.verifier), 1),
    )
    envelope = rotation_envelope(new_root).with_signatures(
        [keys["v1"], keys["v2"], mallory_inspector]
    )
    with pytest.raises(RotationRefused, match="current root keys"):
        accept_rotation(root, envelope)


def test_rotation_must_also_satisfy_the_new_root() -> None:
    root, keys = _root()
    newcomer = Signer.generate("newroot")
    new_root = root.next_version(root=Role((newcomer.verifier,), 1))
    envelope = rotation_envelope(new_root).with_signatures([keys["v1"], keys["i1"], keys["pol"]])
    with pytest.raises(RotationRefused, match="new root keys"):
        accept_rotation(root, envelope)


def test_rotation_must_increase_version_by_one() -> None:
    root, keys = _root()
    skipped = root.next_version().next_version()
    envelope = rotation_envelope(skipped).with_signatures([keys["v1"], keys["i1"], keys["pol"]])
    with pytest.raises(RotationRefused, match="does not follow"):
        accept_rotation(root, envelope)

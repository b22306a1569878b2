"""How the gateway writes a rollout transition: signed by a rollout key the trust root's
rollout role lists, refused at start when it does not, a plain record without a key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clearance.attest import Envelope, Role, TrustRoot
from clearance.gateway.config import GatewayConfig
from clearance.gateway.errors import GatewayInputError
from clearance.gateway.rollout import Transition
from clearance.gateway.transitions import TransitionSigner
from clearance.keys import Signer, generate_key_files, load_signer
from clearance.policy.rollout_statements import SignedTransition

TRANSITION = Transition(
    "ab" * 32, "advanced", "broad", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "soaked", {"n": 3}
)


def _root(rollout: Role) -> TrustRoot:
    log, vendor, inspector = (Signer.generate(n) for n in ("log", "vendor", "inspector"))
    return TrustRoot(
        log_origin="transitions.example/log",
        log_key=log.verifier,
        vendors=Role((vendor.verifier,), 1),
        inspectors=Role((inspector.verifier,), 1),
        rollout=rollout,
    )


def _key(tmp_path: Path) -> Signer:
    private, _ = generate_key_files("rollout", tmp_path / "keys")
    return load_signer(private)


def test_signed_transition_verifies_under_the_rollout_role(tmp_path: Path) -> None:
    key = _key(tmp_path)
    root = _root(Role((key.verifier,), 1))
    signer = TransitionSigner.from_config(
        tmp_path, GatewayConfig(rollout_key="keys/rollout.key"), root
    )
    envelope = Envelope.from_bytes(signer.entry(TRANSITION))
    assert envelope.verify(root.rollout.keys, root.rollout.threshold) == [key.verifier]
    logged = SignedTransition.from_envelope(envelope)
    assert (logged.release, logged.event, logged.ring, logged.at, logged.evidence) == (
        TRANSITION.release,
        TRANSITION.event,
        TRANSITION.ring,
        TRANSITION.at,
        TRANSITION.evidence,
    )


def test_rollout_key_outside_the_rollout_role_is_refused_at_start(tmp_path: Path) -> None:
    """Every transition such a key signed would be refused by endpoints: refuse the key."""
    _key(tmp_path)
    root = _root(Role((Signer.generate("other").verifier,), 1))
    with pytest.raises(GatewayInputError, match="not in the trust root's rollout role"):
        TransitionSigner.from_config(tmp_path, GatewayConfig(rollout_key="keys/rollout.key"), root)


def test_without_a_rollout_key_the_transition_is_a_plain_record(tmp_path: Path) -> None:
    signer = TransitionSigner.from_config(tmp_path, GatewayConfig(), _root(Role()))
    record = json.loads(signer.entry(TRANSITION))
    assert record == json.loads(json.dumps(TRANSITION.to_dict()))
    assert "payloadType" not in record

"""How a rollout transition the gateway decides becomes a log entry.

With a rollout key (``rollout_key`` in ``gateway.json``, a key of the trust
root's rollout role) every transition is a signed statement an endpoint can
check offline (``verify --customer``).  Without one (older setups, tests of
the legacy form) it is a plain canonical-JSON record, which proves nothing
to an endpoint and is left out of bundles.
"""

from __future__ import annotations

from pathlib import Path

from clearance.attest import canonical_json
from clearance.attest.trust_root import TrustRoot
from clearance.gateway.config import GatewayConfig
from clearance.gateway.errors import GatewayInputError
from clearance.gateway.rollout import Transition
from clearance.keys import Signer, load_signer
from clearance.policy.rollout_statements import SignedTransition


class TransitionSigner:
    """Turns a :class:`~clearance.gateway.rollout.Transition` into the bytes to log."""

    def __init__(self, signer: Signer | None) -> None:
        self.signer = signer

    @classmethod
    def from_config(
        cls, data_dir: Path, config: GatewayConfig, trust_root: TrustRoot
    ) -> TransitionSigner:
        """The gateway's rollout key, refused unless the trust root's rollout role (when it
        has one) lists it: endpoints would refuse every transition it signs."""
        if not config.rollout_key:
            return cls(None)
        signer = load_signer(data_dir / config.rollout_key)
        if trust_root.rollout.threshold and all(
            k.public_key != signer.public_key for k in trust_root.rollout.keys
        ):
            raise GatewayInputError(
                "the gateway's rollout key is not in the trust root's rollout role"
            )
        return cls(signer)

    def entry(self, transition: Transition) -> bytes:
        """The log entry of ``transition``: a signed statement, or the plain record."""
        if self.signer is None:
            return canonical_json(transition.to_dict())
        signed = SignedTransition(
            transition.release,
            transition.event,
            transition.ring,
            transition.at,
            transition.reason,
            transition.evidence,
        )
        return signed.sign([self.signer]).to_bytes()

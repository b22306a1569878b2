"""The bundles a gateway serves (``GET /api/v1/releases/{sha256}/bundle``).

:class:`ReleaseBundles` finds, in the metadata index, the log entries a
release's bundle carries (the release, its verdicts, the distribution
policy in force, its signed rollout transitions and, for a customer, the
committed entitlement and its opening) and hands them to the one bundle
builder, :func:`~clearance.gateway.bundles.build_bundle`.
"""

from __future__ import annotations

from collections.abc import Callable

from clearance.client.errors import MalformedBundleError
from clearance.gateway._log import GatewayLog
from clearance.gateway.bundles import build_bundle
from clearance.gateway.customers import Customers
from clearance.gateway.errors import GatewayNotFoundError, GatewayRefused
from clearance.gateway.states import ReleaseState
from clearance.gateway.store import MetadataStore
from clearance.policy import LoggedPolicy

#: Attempts at a bundle while other submissions keep growing the log.
ATTEMPTS = 20


class ReleaseBundles:
    """Bundles of a gateway's approved releases, under its latest checkpoint."""

    def __init__(
        self,
        log: GatewayLog,
        store: MetadataStore,
        customers: Customers,
        policy_in_force: Callable[[], LoggedPolicy | None],
    ) -> None:
        self._log = log
        self._store = store
        self._customers = customers
        self._policy_in_force = policy_in_force

    def build(self, release_sha256: str, customer: str | None = None) -> bytes:
        """The Clearance bundle of a release: envelope, verdicts, policy in force and signed
        rollout transitions, each with an inclusion proof under the latest (witness-cosigned)
        checkpoint; for ``customer`` (authenticated by the caller) also its entitlement
        commitment and opening."""
        row = self._store.release(release_sha256)
        if row is None:
            raise GatewayNotFoundError(f"no release with SHA-256 {release_sha256}")
        if row.state != ReleaseState.APPROVED:
            raise GatewayRefused(f"release {release_sha256} is {row.state}, not approved")
        verdicts = [v["log_index"] for v in self._store.verdicts(release_sha256)]
        policy = self._policy_in_force()
        entitlement_index = None
        opening = None
        if customer is not None:
            found = self._customers.opening(customer, row.product)
            if found is None:
                raise GatewayRefused(
                    f"no entitlement of {customer!r} for {row.product!r} is known here"
                )
            entitlement_index, opened = found
            opening = opened.to_dict()
        # The bundle carries the index proofs at its checkpoint's size (and every verdict the
        # index lists); if the log grows between reading the checkpoint and the index, retry.
        for _ in range(ATTEMPTS):
            self._log.sync_index()  # another replica may have appended
            checkpoint = self._log.checkpoint()
            size = self._log.checkpoint_size(checkpoint.to_bytes())
            rollout_indices = [  # signed transitions only (older plain records prove nothing)
                i
                for i, _ in self._store.transitions(release_sha256)
                if i < size and b"payloadType" in next(iter(self._log.entries(i, i + 1, size)))
            ]
            try:
                bundle = build_bundle(
                    self._log,
                    checkpoint,
                    row.log_index,
                    verdicts,
                    None if policy is None else policy.log_index,
                    index=self._log.index,
                    entitlement_index=entitlement_index,
                    entitlement_opening=opening,
                    rollout_indices=rollout_indices,
                )
            except MalformedBundleError:
                continue
            return bundle.to_bytes()
        raise GatewayRefused("the log kept growing while the bundle was built; try again")

"""Recovery on a live gateway (issue 10 cases 3 and 7): the policy authority revokes a
release logged with a stolen key and resets the channel; TUF follows the log, the
gateway offers the legitimate next version, and the revoked key can sign nothing more."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from clearance.attest.recovery import reset_channel, revoke_key, revoke_release
from clearance.gateway.errors import GatewayRefused

from .support import Live, device_client, entitle, make_release
from .test_flow import _approve
from .test_tuf import _updater, _wait_target


def _state(live: Live, sha: str) -> str:
    with live.client(None) as anyone:
        return str(anyone.status(sha)["release"]["state"])


def test_stolen_key_drill_on_the_gateway(live: Live, tmp_path: Path) -> None:
    product = live.world.product
    good = _approve(live, tmp_path, "1.0.0")
    evil = _approve(live, tmp_path, "9999")  # logged and approved with the stolen key
    path = f"{product}/9999/rules.yar"
    _wait_target(live, path)
    updater = _updater(live, tmp_path / "tuf-client")
    updater.refresh()
    assert updater.get_targetinfo(path) is not None
    env, _ = make_release(live.world, tmp_path, "1.0.1")
    with live.client("vendor") as vendor, pytest.raises(Exception, match="not higher"):
        vendor.submit(env.to_bytes())  # the channel is frozen at 9999

    # The thief (vendor token and key) cannot reset the channel itself.
    own_reset = reset_channel(product, "stable", "1.0.0", "mine", [live.world.vendor])
    with live.client("vendor") as vendor, pytest.raises(GatewayRefused):
        vendor.submit(own_reset.to_bytes())
    with live.client("policy") as authority, pytest.raises(GatewayRefused):
        authority.submit(own_reset.to_bytes())  # right token, wrong signer

    # The policy authority revokes 9999 and resets the channel to 1.0.0.
    evil_env = live.server.gateway.reads.log_entry(
        live.server.gateway.store.release(evil).log_index  # type: ignore[union-attr]
    )
    from clearance.attest import Envelope

    with live.client("policy") as authority:
        authority.submit(
            revoke_release(
                Envelope.from_bytes(evil_env), "stolen key", [live.world.policy]
            ).to_bytes()
        )
        authority.submit(
            reset_channel(product, "stable", "1.0.0", "undo 9999", [live.world.policy]).to_bytes()
        )
    assert _state(live, evil) == "revoked" and _state(live, good) == "approved"
    # TUF follows the log: the next targets version lacks 9999, a stock updater refuses it.
    assert path not in live.server.gateway.tuf.targets()
    updater = _updater(live, tmp_path / "tuf-client")
    updater.refresh()
    assert updater.get_targetinfo(path) is None
    with live.client(None) as anyone, pytest.raises(GatewayRefused, match="revoked"):
        anyone.bundle(evil)

    # The vendor's next real version is accepted after the reset and offered.
    fixed = _approve(live, tmp_path, "1.0.1")
    device = entitle(live, "de-city", "DE")
    deadline = time.monotonic() + 20
    with device_client(live, device) as endpoint:
        while time.monotonic() < deadline:
            latest = endpoint.latest(product, "stable", "de-city")
            if (latest["offered"] or {}).get("sha256") == fixed:
                break
            time.sleep(0.1)
        assert latest["offered"]["sha256"] == fixed
        assert latest["newest_approved"]["sha256"] == fixed  # 9999 is not approved any more

    # Revoking the key: a release signed by it is refused from now on.
    with live.client("policy") as authority:
        authority.submit(
            revoke_key(live.world.vendor.verifier, "stolen", [live.world.policy]).to_bytes()
        )
    later, _ = make_release(live.world, tmp_path, "1.0.2")
    with live.client("vendor") as vendor, pytest.raises(GatewayRefused):
        vendor.submit(later.to_bytes())

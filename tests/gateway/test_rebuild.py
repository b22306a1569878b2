"""The metadata index is a function of the log: deleting it and restarting rebuilds the same
state, without appending anything (no duplicate rollout transitions)."""

from __future__ import annotations

from pathlib import Path

from clearance.gateway.server import RunningGateway
from clearance.gateway.service import Gateway

from .support import device_client, entitle, start_live
from .test_flow import _approve
from .test_withholding import _complete


def test_index_rebuilt_from_the_log_matches(tmp_path: Path) -> None:
    with start_live(tmp_path / "w") as live:
        sha = _approve(live, tmp_path, "1.0.0")
        _complete(live, sha)
        device = entitle(live, "de-city", "DE")
        with live.client(None) as anyone:
            before = anyone.status(sha)
        with device_client(live, device) as client:
            offered_before = client.latest(live.world.product, "stable", "de-city")["offered"]
        data_dir = live.world.data_dir
        size_before = live.server.gateway.log.size
    for name in ("gateway.sqlite", "gateway.sqlite-wal", "gateway.sqlite-shm"):
        (data_dir / name).unlink(missing_ok=True)
    gateway = Gateway.open(data_dir)
    try:
        assert gateway.log.size == size_before  # replay appended nothing
        after = gateway.reads.status(sha)
        assert after["transitions"] == before["transitions"]
        assert after["rollout"] == before["rollout"]
        assert after["release"]["state"] == "approved"
        assert (
            gateway.reads.latest(gateway.store.release(sha).product, "stable", "de-city")[  # type: ignore[union-attr]
                "offered"
            ]["sha256"]
            == offered_before["sha256"]
        )
    finally:
        gateway.close()
    with RunningGateway(data_dir, workers=0) as again:  # and it serves again
        assert again.gateway.log.size == size_before

"""A stock ``tuf.ngclient.Updater`` against the live gateway on 127.0.0.1."""

from __future__ import annotations

import shutil
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from tuf.api import exceptions
from tuf.ngclient import Updater

from clearance.attest import Envelope, create_verdict
from clearance.gateway.tuf_repo import Expiry

from .support import Live
from .test_flow import _approve


def _wait_target(live: Live, path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path in live.server.gateway.tuf.targets():
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} never published")


def _updater(live: Live, client_dir: Path) -> Updater:
    meta = client_dir / "metadata"
    if not meta.exists():
        meta.mkdir(parents=True)
        # The root is pinned out of band (here: fetched once and trusted).
        (meta / "root.json").write_bytes(httpx.get(f"{live.url}/tuf/metadata/1.root.json").content)
    (client_dir / "downloads").mkdir(exist_ok=True)
    return Updater(
        metadata_dir=str(meta),
        metadata_base_url=f"{live.url}/tuf/metadata/",
        target_dir=str(client_dir / "downloads"),
        target_base_url=f"{live.url}/tuf/targets/",
        bootstrap=None,  # trust the root.json pinned in metadata_dir
    )


def test_updater_downloads_an_approved_release(live: Live, tmp_path: Path) -> None:
    sha = _approve(live, tmp_path, "1.0.0")
    path = f"{live.world.product}/1.0.0/rules.yar"
    _wait_target(live, path)
    updater = _updater(live, tmp_path / "client")
    updater.refresh()
    info = updater.get_targetinfo(path)
    assert info is not None
    assert info.custom["clearance"]["release_sha256"] == sha
    local = updater.download_target(info)
    assert b"demo_eicar_test_file" in Path(local).read_bytes()
    assert updater.get_targetinfo(f"{live.world.product}/9.9.9/rules.yar") is None


def test_updater_refuses_tampered_target(live: Live, tmp_path: Path) -> None:
    _approve(live, tmp_path, "1.0.0")
    path = f"{live.world.product}/1.0.0/rules.yar"
    _wait_target(live, path)
    stored = next((live.server.gateway.tuf.targets_dir).rglob("*.rules.yar"))
    data = bytearray(stored.read_bytes())
    data[10] ^= 0x01  # same length, one bit flipped
    stored.write_bytes(bytes(data))
    updater = _updater(live, tmp_path / "client")
    updater.refresh()
    info = updater.get_targetinfo(path)
    assert info is not None
    with pytest.raises(exceptions.LengthOrHashMismatchError):
        updater.download_target(info)


def test_updater_refuses_tampered_metadata(live: Live, tmp_path: Path) -> None:
    _approve(live, tmp_path, "1.0.0")
    _wait_target(live, f"{live.world.product}/1.0.0/rules.yar")
    meta_dir = live.server.gateway.tuf.metadata_dir
    targets = meta_dir / "2.targets.json"
    targets.write_text(targets.read_text().replace("1.0.0", "6.6.6"))
    with pytest.raises(exceptions.UnsignedMetadataError):
        _updater(live, tmp_path / "client").refresh()


def test_updater_refuses_rolled_back_metadata(live: Live, tmp_path: Path) -> None:
    _approve(live, tmp_path, "1.0.0")
    _wait_target(live, f"{live.world.product}/1.0.0/rules.yar")
    meta_dir = live.server.gateway.tuf.metadata_dir
    old_timestamp = tmp_path / "old-timestamp.json"
    shutil.copy(meta_dir / "timestamp.json", old_timestamp)
    _approve(live, tmp_path, "1.1.0")
    _wait_target(live, f"{live.world.product}/1.1.0/rules.yar")
    client = tmp_path / "client"
    _updater(live, client).refresh()  # the client has now seen the newer timestamp
    shutil.copy(old_timestamp, meta_dir / "timestamp.json")  # a replay of old metadata
    with pytest.raises(exceptions.BadVersionNumberError):
        _updater(live, client).refresh()


def test_updater_refuses_expired_metadata(live: Live, tmp_path: Path) -> None:
    _approve(live, tmp_path, "1.0.0")
    _wait_target(live, f"{live.world.product}/1.0.0/rules.yar")
    tuf = live.server.gateway.tuf
    tuf.expiry = Expiry(timestamp=timedelta(seconds=-60))  # a gateway that stopped refreshing
    tuf.refresh_timestamp()
    with pytest.raises(exceptions.ExpiredMetadataError):
        _updater(live, tmp_path / "client").refresh()


def test_rejected_release_is_refused_by_a_stock_tuf_client(live: Live, tmp_path: Path) -> None:
    """Case 3: a release approved, rolled out and published, then rejected by an inspector,
    leaves the targets metadata in its next version: a stock updater no longer finds it and
    cannot download it, while the previously seen version stays refused too."""
    sha = _approve(live, tmp_path, "1.0.0")
    path = f"{live.world.product}/1.0.0/rules.yar"
    _wait_target(live, path)
    client = tmp_path / "client"
    updater = _updater(live, client)
    updater.refresh()
    assert updater.get_targetinfo(path) is not None
    env = Envelope.from_bytes(live.server.gateway.reads.log_entry(0))
    assert env.sha256 == sha
    rejection = create_verdict(env, "rejected", signers=live.world.inspector, note="backdoor")
    with live.client("inspector") as inspector:
        inspector.submit(rejection.to_bytes())
    assert path not in live.server.gateway.tuf.targets()
    updater = _updater(live, client)  # the same client, next refresh
    updater.refresh()
    assert updater.get_targetinfo(path) is None
    fresh = _updater(live, tmp_path / "fresh-client")
    fresh.refresh()
    assert fresh.get_targetinfo(path) is None

"""kill -9 of ``clearance serve`` in the middle of concurrent submissions: nothing acknowledged
is lost, and the metadata index catches up with the log on restart."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from clearance.attest import Artifact, Envelope, create_release
from clearance.demo.world import build_world
from clearance.log import HttpTileSource, TiledLogClient

SERVE = "import sys; from clearance.cli import main; sys.exit(main(sys.argv[1:]))"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(data: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serve", "--data", str(data), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start: " + proc.stderr.read().decode()[-2000:])


def test_kill_9_mid_load_loses_no_acknowledged_submission(tmp_path: Path) -> None:
    world = build_world(tmp_path / "w", embedded_inspector=False)
    envelopes: list[Envelope] = []
    for n in range(400):
        content = f"rule r{n} {{ condition: false }}\n".encode()
        artifact = Artifact(
            "rules.yar", hashlib.sha256(content).hexdigest(), len(content), "content"
        )
        envelopes.append(
            create_release(
                product=world.product,
                version=f"1.0.{n}",
                channel="stable",
                artifacts=[artifact],
                signers=world.vendor,
            )
        )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start(world.data_dir, port)
    acknowledged: dict[str, int] = {}
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {world.token('vendor')}"}

    def vendor(batch: list[Envelope]) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
            for env in batch:
                try:
                    r = http.post("/api/v1/submissions", content=env.to_bytes())
                except httpx.HTTPError:
                    return  # the server died under us: this one was never acknowledged
                if r.status_code == 201:
                    with lock:
                        acknowledged[env.sha256] = r.json()["log_index"]

    threads = [threading.Thread(target=vendor, args=(envelopes[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    while len(acknowledged) < 60:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for t in threads:
        t.join()
    assert 60 <= len(acknowledged) < len(envelopes), "the kill came too late to test anything"

    proc = _start(world.data_dir, port)
    try:
        by_sha = {e.sha256: e for e in envelopes}
        tiles = TiledLogClient(HttpTileSource(f"{url}/log/"), world.log.verifier, world.origin)
        checkpoint, _ = tiles.checkpoint()
        assert checkpoint.size >= len(acknowledged)
        for sha, index in acknowledged.items():
            # In the public log (tiles authenticated against the signed checkpoint) ...
            (entry,) = list(tiles.entries(index, index + 1, checkpoint.size))
            assert entry == by_sha[sha].to_bytes()
            # ... and in the gateway's index, rebuilt from the log after the crash.
            status = httpx.get(f"{url}/api/v1/submissions/{sha}").json()
            assert status["log_index"] == index and status["kind"] == "release"
        # Every logged entry is indexed once: no hole, no duplicate.
        releases = httpx.get(f"{url}/api/v1/releases").json()["releases"]
        assert sorted(r["log_index"] for r in releases) == list(range(checkpoint.size))
    finally:
        proc.terminate()
        proc.wait(timeout=20)

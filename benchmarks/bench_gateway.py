"""The gateway under load on loopback, with nginx serving the same tiles folder as the reference.

One ``clearance serve`` process (uvicorn, embedded SQLite store) is started on
127.0.0.1 and pre-filled with releases so that the log has full tiles, and one
release is approved and rolled out so that there is an update to fetch.  Then,
for a fixed time each:

* **mixed**: concurrent vendors POST signed releases while concurrent clients GET
  the checkpoint, full tiles, entry bundles, ``/api/v1/updates/latest`` and the
  TUF timestamp;
* **tiles**: clients GET the same static tile paths from the gateway and from
  nginx (``nginx-light``, one worker, the same ``log/public`` folder, the same
  cache headers), same concurrency.

Load comes from a small asyncio HTTP/1.1 keep-alive client in this process (a
Python client, so its own cost caps the highest rates measured; the machine has
two cores shared by server and client).  After the run the server is stopped
and every acknowledged submission is checked in the log, entry by entry.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx

from clearance.attest import Artifact, Envelope, create_release, create_verdict
from clearance.demo.world import World, build_world
from clearance.gateway.rollout import Ring
from clearance.log import TransparencyLog

SERVE = "import sys; from clearance.cli import main; sys.exit(main(sys.argv[1:]))"
INSTANT_RINGS = (
    Ring("canary", 1.0, timedelta(0)),
    Ring("early", 10.0, timedelta(0)),
    Ring("broad", 100.0, timedelta(0)),
)
TARGET_TILE_RPS = 1000.0
TARGET_SUBMIT_RPS = 50.0
TARGET_P99_MS = 250.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url}: server did not start")


# -- a minimal keep-alive HTTP/1.1 client ---------------------------------------------------

Request = tuple[str, bytes]  # (kind, raw request bytes)


def _get(path: str, headers: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode()


def _post(path: str, body: bytes, headers: str = "") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{headers}\r\n"
    )
    return head.encode() + body


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    acknowledged: list[tuple[int, str]] = field(default_factory=list)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, body
            body += chunk[:-2]
    at = lower.find(b"content-length:")
    length = int(lower[at + 15 : lower.find(b"\r\n", at)]) if at >= 0 else 0
    return status, await reader.readexactly(length)


async def _worker(
    port: int, next_request: Callable[[], Request], deadline: float, stats: Stats
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            kind, raw = next_request()
            started = time.perf_counter()
            writer.write(raw)
            await writer.drain()
            status, body = await _read_response(reader)
            elapsed = time.perf_counter() - started
            if status >= 400:
                stats.errors[kind] += 1
                continue
            stats.latencies[kind].append(elapsed)
            if kind == "submit":
                import json

                receipt = json.loads(body)
                stats.acknowledged.append((receipt["log_index"], receipt["sha256"]))
    finally:
        writer.close()


def _load(
    port: int, groups: list[tuple[int, Callable[[], Request]]], seconds: float
) -> tuple[Stats, float]:
    stats = Stats()

    async def main() -> float:
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(
            *(_worker(port, make, deadline, stats) for count, make in groups for _ in range(count))
        )
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    return stats, elapsed


def _row(name: str, kind: str, samples: list[float], errors: int, elapsed: float) -> str:
    if not samples:
        return f"| {name} | {kind} | 0 | - | - | {errors} |"
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return f"| {name} | {kind} | {len(samples) / elapsed:,.0f} | {p50:.1f} | {p99:.1f} | {errors} |"


# -- setting up the parties ------------------------------------------------------------------


def _releases(world: World, count: int, start: int) -> list[Envelope]:
    out = []
    for n in range(start, start + count):
        content = f'rule bench_{n} {{ strings: $a = "bench-{n}" condition: $a }}\n'.encode()
        art = Artifact("rules.yar", hashlib.sha256(content).hexdigest(), len(content), "content")
        out.append(
            create_release(
                product=world.product,
                version=f"1.{n // 1000}.{n % 1000}",
                # One channel per release (release 0, the one approved, is "stable"): many
                # concurrent vendors without version-order conflicts, since a channel's
                # releases must be logged in increasing version.
                channel="stable" if n == 0 else f"c{n}",
                artifacts=[art],
                signers=world.vendor,
            )
        )
    return out


def _nginx_conf(prefix: Path, public: Path, port: int) -> Path:
    (prefix / "tmp").mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""daemon off;
user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    default_type application/octet-stream;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location = /log/checkpoint {{
            alias {public}/checkpoint;
            default_type "text/plain; charset=utf-8";
            add_header Cache-Control "public, max-age=5, must-revalidate";
        }}
        location ~ ^/log/(tile/.*\\.p/.*)$ {{
            alias {public}/$1;
            add_header Cache-Control "public, max-age=5, must-revalidate";
        }}
        location /log/ {{
            alias {public}/;
            add_header Cache-Control "public, max-age=31536000, immutable";
        }}
    }}
}}
"""
    )
    return conf


def run(quick: bool) -> str:
    load_before = os.getloadavg()[0]
    seconds = 4.0 if quick else 15.0
    prefill = 600 if quick else 2100
    vendors, clients = (16, 16) if quick else (32, 48)
    tmp = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        world = build_world(tmp / "w", embedded_inspector=False, rings=INSTANT_RINGS)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                SERVE,
                "serve",
                "--data",
                str(world.data_dir),
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(server)
        _wait_http(f"{url}/api/v1/health", server)
        vendor_auth = f"Authorization: Bearer {world.token('vendor')}\r\n"
        # Customers' devices sign their requests (one Ed25519 verification each); the load
        # test asks on their behalf with the operator token, which may name any customer.
        client_auth = f"Authorization: Bearer {world.token('operator')}\r\n"

        # Pre-fill: full tiles to serve, and one approved, rolled-out release to fetch.
        pre = _releases(world, prefill, 0)
        with httpx.Client(base_url=url, timeout=60) as http:

            def submit(env: Envelope, token: str) -> None:
                r = http.post(
                    "/api/v1/submissions",
                    content=env.to_bytes(),
                    headers={"Authorization": f"Bearer {token}"},
                )
                r.raise_for_status()

            for env in pre:
                submit(env, world.token("vendor"))
            approved = pre[0]
            content = b'rule bench_0 { strings: $a = "bench-0" condition: $a }\n'
            http.put(
                f"/api/v1/artifacts/{hashlib.sha256(content).hexdigest()}",
                content=content,
                headers={"Authorization": f"Bearer {world.token('vendor')}"},
            )
            submit(
                create_verdict(approved, "approved", signers=world.inspector),
                world.token("inspector"),
            )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                state = http.get(f"/api/v1/submissions/{approved.sha256}").json()
                if state.get("rollout") and state["rollout"]["status"] == "complete":
                    break
                time.sleep(0.2)

        size = prefill + 1 + 4  # releases + verdict + 4 rollout transitions
        full_tiles = size // 256
        tile_paths = [f"/log/tile/0/{n:03d}" for n in range(full_tiles)] + [
            f"/log/tile/entries/{n:03d}" for n in range(full_tiles)
        ]
        rng = random.Random(7)
        # Signed ahead of time, so that the load generator does not sign during the run.
        fresh = iter(_releases(world, 1500 if quick else 4000, prefill + 10))

        def vendor_request() -> Request:
            return ("submit", _post("/api/v1/submissions", next(fresh).to_bytes(), vendor_auth))

        client_cycle = itertools.cycle(["checkpoint", "tile", "entries", "latest", "tuf"])

        def client_request() -> Request:
            kind = next(client_cycle)
            if kind == "checkpoint":
                return kind, _get("/log/checkpoint")
            if kind == "tile":
                return kind, _get(f"/log/tile/0/{rng.randrange(full_tiles):03d}")
            if kind == "entries":
                return kind, _get(f"/log/tile/entries/{rng.randrange(full_tiles):03d}")
            if kind == "latest":
                return kind, _get(
                    f"/api/v1/updates/latest?product={world.product}&channel=stable"
                    f"&customer=site-{rng.randrange(10_000)}",
                    client_auth,
                )
            return kind, _get("/tuf/metadata/timestamp.json")

        mixed, mixed_elapsed = _load(
            port, [(vendors, vendor_request), (clients, client_request)], seconds
        )

        def static_request() -> Request:
            return "tile", _get(rng.choice(tile_paths))

        gw_tiles, gw_elapsed = _load(port, [(clients, static_request)], seconds)

        nginx_port = _free_port()
        prefix = tmp / "nginx"
        prefix.mkdir()
        conf = _nginx_conf(prefix, world.data_dir / "log" / "public", nginx_port)
        nginx = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(prefix)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        procs.append(nginx)
        _wait_http(f"http://127.0.0.1:{nginx_port}/log/checkpoint", nginx)
        same = (
            httpx.get(f"http://127.0.0.1:{nginx_port}{tile_paths[0]}").content
            == httpx.get(f"{url}{tile_paths[0]}").content
        )
        ng_tiles, ng_elapsed = _load(nginx_port, [(clients, static_request)], seconds)

        # Durability: every acknowledged submission is in the log, byte for byte.
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        log = TransparencyLog.open(world.data_dir / "log")
        lost = 0
        for index, sha in mixed.acknowledged:
            if index >= log.size or hashlib.sha256(log.entry(index)).hexdigest() != sha:
                lost += 1
        log_size = log.size
        log.close()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    rows = ["| run | request | req/s | p50 ms | p99 ms | errors |", "|---|---|---:|---:|---:|---:|"]
    for kind in ("submit", "checkpoint", "tile", "entries", "latest", "tuf"):
        rows.append(
            _row(
                "mixed (gateway)",
                kind,
                mixed.latencies.get(kind, []),
                mixed.errors.get(kind, 0),
                mixed_elapsed,
            )
        )
    all_mixed = [x for v in mixed.latencies.values() for x in v]
    rows.append(
        _row("mixed (gateway)", "**all**", all_mixed, sum(mixed.errors.values()), mixed_elapsed)
    )
    rows.append(
        _row(
            "tiles only",
            "gateway",
            gw_tiles.latencies["tile"],
            gw_tiles.errors.get("tile", 0),
            gw_elapsed,
        )
    )
    rows.append(
        _row(
            "tiles only",
            "nginx (reference)",
            ng_tiles.latencies["tile"],
            ng_tiles.errors.get("tile", 0),
            ng_elapsed,
        )
    )

    load_after = os.getloadavg()[0]
    submit_rps = len(mixed.latencies["submit"]) / mixed_elapsed
    tile_rps = len(gw_tiles.latencies["tile"]) / gw_elapsed
    nginx_rps = len(ng_tiles.latencies["tile"]) / ng_elapsed
    tile_p99 = (
        sorted(gw_tiles.latencies["tile"])[int(len(gw_tiles.latencies["tile"]) * 0.99)] * 1000
    )
    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    return "\n".join(
        [
            f"Loopback load, {seconds:.0f} s per run, {vendors} vendor connections and {clients} "
            f"client connections (keep-alive), one `clearance serve` process (uvicorn, SQLite) "
            f"pre-filled with {prefill} releases; log size after the run: {log_size}. "
            f"nginx-light with one worker serves the same `log/public` folder "
            f"(identical bytes checked: {same}). Machine load average (1 min) {load_before:.1f} "
            f"before and {load_after:.1f} after the run on 2 cores: other work shared the "
            "machine, so absolute figures are pessimistic; gateway and nginx ran back to back.",
            "",
            *rows,
            "",
            f"- Submissions acknowledged during the mixed run: {len(mixed.acknowledged)}; "
            f"lost after shutdown: **{lost}** (each checked byte for byte in the log).",
            f"- Static tiles: gateway {tile_rps:,.0f} req/s vs nginx {nginx_rps:,.0f} req/s "
            f"(gateway at {tile_rps / nginx_rps:.0%} of nginx). The load generator is Python on "
            "the same two cores, so nginx's figure is a lower bound of what nginx can do: in "
            "production the tiles are static files for nginx or a CDN, as C2SP tlog-tiles intends.",
            f"- Targets: signed submissions ≥ {TARGET_SUBMIT_RPS:.0f}/s under mixed load: "
            f"{submit_rps:,.0f}/s, {met(submit_rps >= TARGET_SUBMIT_RPS)}; gateway tile reads "
            f"≥ {TARGET_TILE_RPS:,.0f}/s: {met(tile_rps >= TARGET_TILE_RPS)}; tile p99 ≤ "
            f"{TARGET_P99_MS:.0f} ms: {tile_p99:.1f} ms, {met(tile_p99 <= TARGET_P99_MS)}; "
            f"no acknowledged submission lost: {met(lost == 0)}.",
        ]
    )

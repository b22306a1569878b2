"""Gateway replicas over one PostgreSQL: submissions, health reports, tiles, failover.

Measured in one run, on the same two cores:

* **raw Ed25519**: the DSSE verification the gateway does per submission
  (``Envelope.verify`` of pre-signed releases), in a process pool of one
  process per core, no HTTP: the reference the targets compare with;
* **signed submissions/s through HTTP** with 1 and then 2 ``clearance serve``
  replicas sharing one database (connections split evenly), p50/p99: two replicas
  with the follower forwarding to the leader (the default), and the same with
  ``forward_to_leader`` off, each replica integrating what it receives by turns;
* **health reports/s** through ``POST /api/v1/health-reports/bulk``, once all
  signed by one client key, then from a fleet: one key per device, each device
  reporting once, its customer registering its devices' keys over several
  entitlements (each report checked against its own device's key, each device
  a new entry of its window's tally);
* **tile reads** from a replica (served from PostgreSQL; immutable tiles are
  then kept in the replica's memory) vs nginx on a static export of the same
  log (``TransparencyLog.export``);
* **failover**: ``kill -9`` of the replica that integrated last, under load;
  time until the next entry is integrated, median and worst.

The load generator is the keep-alive client of ``bench_gateway`` in this
process (Python, on the same two cores as the servers and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
from psycopg.conninfo import make_conninfo

from benchmarks.bench_gateway import (
    INSTANT_RINGS,
    Request,
    Stats,
    _free_port,
    _get,
    _nginx_conf,
    _post,
    _releases,
    _wait_http,
    _worker,
)
from clearance.attest import Envelope, Statement, Subject, create_verdict
from clearance.attest.statement import HEALTH_V1
from clearance.demo.cluster import Replica
from clearance.demo.world import World, build_world
from clearance.gateway.rollout import customer_bucket
from clearance.keys import Signer
from clearance.log import TransparencyLog

PG_DSN = os.environ.get("CLEARANCE_PG_DSN", "dbname=postgres")
TARGET_SUBMIT_RPS = 2000.0
TARGET_RAW_FRACTION = 0.3
#: Client keys per entitlement: a log entry holds at most 60 KB.
KEYS_PER_ENTITLEMENT = 600
TARGET_HEALTH_RPS = 10_000.0
TARGET_TILE_FRACTION = 0.5


def _verify_chunk(args: tuple[list[bytes], str]) -> int:
    from clearance.keys import Verifier

    envelopes, key = args
    verifier = Verifier.parse(key)
    for raw in envelopes:
        Envelope.from_bytes(raw).verify([verifier], 1)
    return len(envelopes)


def _raw_rate(envelopes: list[bytes], key: str, workers: int) -> float:
    """Envelope parses + Ed25519 verifications per second, ``workers`` processes."""
    chunk = -(-len(envelopes) // workers)
    parts = [(envelopes[i : i + chunk], key) for i in range(0, len(envelopes), chunk)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_verify_chunk, [(p[0][:10], key) for p in parts]))  # warm up
        started = time.perf_counter()
        done = sum(pool.map(_verify_chunk, parts))
        return done / (time.perf_counter() - started)


def _load_many(
    targets: list[tuple[int, int, Callable[[], Request]]], seconds: float
) -> tuple[Stats, float]:
    """``(port, connections, make_request)`` groups at once, for ``seconds``."""
    stats = Stats()

    async def main() -> float:
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(
            *(
                _worker(port, make, deadline, stats)
                for port, count, make in targets
                for _ in range(count)
            )
        )
        return time.perf_counter() - started

    return stats, asyncio.run(main())


def _restart_two(world: World, replicas: list[Replica], forward: bool) -> list[Replica]:
    """``replicas`` stopped, and two started with ``forward_to_leader`` set to ``forward``
    in the gateway.json they start from."""
    for r in replicas:
        r.stop()
    path = world.data_dir / "gateway.json"
    config = json.loads(path.read_text())
    config["forward_to_leader"] = forward
    path.write_text(json.dumps(config, indent=2))
    return Replica.start_many(world.data_dir, 2)


def _shared_note(load_before: float) -> str:
    """Whether other work was running when the benchmark began: a load of a core or more."""
    if load_before < 1.0:
        return ""
    return ": other work was running on the machine, so absolute figures are pessimistic"


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 if ordered else 0.0


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _holder_pid(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT holder FROM clr_log_lease WHERE id = 1").fetchone()
    holder = str(row[0]) if row else ""
    # Replicas are named host/pid; another holder (the benchmark's own export) is no replica.
    return int(holder.rsplit("/", 1)[1]) if "/" in holder else -1


def _size(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT size FROM clr_log_head WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def _approve_and_entitle(
    world: World, url: str, customers: list[str], fleet: dict[str, list[str]]
) -> str:
    """Release 0 approved and rolled out to every ring; customers entitled with the client
    key, and with their fleet's device keys (``fleet``) over as many entitlements as needed."""
    from clearance.attest import canonical_json
    from clearance.policy import ENTITLEMENT_PREDICATE_TYPE, Entitlement

    (approved,) = _releases(world, 1, 0)
    content = b'rule bench_0 { strings: $a = "bench-0" condition: $a }\n'
    with httpx.Client(base_url=url, timeout=60) as http:

        def submit(raw: bytes, role: str) -> None:
            r = http.post(
                "/api/v1/submissions",
                content=raw,
                headers={"Authorization": f"Bearer {world.token(role)}"},
            )
            r.raise_for_status()

        submit(approved.to_bytes(), "vendor")
        http.put(
            f"/api/v1/artifacts/{hashlib.sha256(content).hexdigest()}",
            content=content,
            headers={"Authorization": f"Bearer {world.token('vendor')}"},
        ).raise_for_status()
        submit(
            create_verdict(approved, "approved", signers=world.inspector).to_bytes(), "inspector"
        )
        for customer in customers:
            keys = [world.client.verifier.to_string(), *fleet.get(customer, [])]
            # A log entry holds at most 60 KB: about 750 keys per entitlement.
            for start in range(0, len(keys), KEYS_PER_ENTITLEMENT):
                body = Entitlement.from_dict(
                    {
                        "customer": customer,
                        "jurisdiction": "DE",
                        "product": world.product,
                        "start": "2024-01-01",
                        "end": "2099-01-01",
                        "client_keys": keys[start : start + KEYS_PER_ENTITLEMENT],
                    }
                ).to_dict()
                subject = Subject(customer, hashlib.sha256(canonical_json(body)).hexdigest())
                env = Statement((subject,), ENTITLEMENT_PREDICATE_TYPE, body).sign([world.vendor])
                submit(env.to_bytes(), "vendor")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = http.get(f"/api/v1/submissions/{approved.sha256}").json()
            if state.get("rollout") and state["rollout"]["status"] == "complete":
                break
            time.sleep(0.2)
    return approved.sha256


def _health_reports(
    world: World,
    release: str,
    customers: list[str],
    count: int,
    first: int = 0,
    devices: list[Signer] | None = None,
) -> list[dict[str, object]]:
    """Signed reports, report ``n`` from customer ``n % len(customers)``; signed by the one
    client key, or by device ``n`` of ``devices`` (a fleet: one key per device)."""
    out = []
    for n in range(first, first + count):
        body = {
            "release": release,
            "customer": customers[n % len(customers)],
            "status": "ok",
            "nonce": str(n),
        }
        signer = world.client if devices is None else devices[n - first]
        env = Statement((Subject("release", release),), HEALTH_V1, body).sign([signer])
        out.append(json.loads(env.to_bytes()))
    return out


def _fleet(customers: list[str], count: int) -> tuple[list[Signer], dict[str, list[str]]]:
    """``count`` device keys, device ``n`` belonging to customer ``n % len(customers)``."""
    devices = [Signer.generate(f"device-{n}") for n in range(count)]
    keys: dict[str, list[str]] = {c: [] for c in customers}
    for n, device in enumerate(devices):
        keys[customers[n % len(customers)]].append(device.verifier.to_string())
    return devices, keys


def _send_health(
    replicas: list[Replica], reports: list[dict[str, object]], per_batch: int, token: str
) -> float:
    """Reports accepted per second: bulks of ``per_batch`` sent by one sender per replica
    at once, as a fleet's reports arrive at every replica."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    bodies = [
        json.dumps({"reports": reports[i : i + per_batch]}).encode()
        for i in range(0, len(reports), per_batch)
    ]

    def send(replica: Replica) -> int:
        mine = bodies[replicas.index(replica) :: len(replicas)]
        done = 0
        with httpx.Client(timeout=120) as http:
            for body in mine:
                r = http.post(
                    replica.url + "/api/v1/health-reports/bulk", content=body, headers=headers
                )
                r.raise_for_status()
                done += int(r.json()["accepted"])
        return done

    started = time.perf_counter()
    with ThreadPoolExecutor(len(replicas)) as senders:
        accepted = sum(senders.map(send, replicas))
    if accepted != len(reports):
        raise RuntimeError(f"{len(reports) - accepted} health reports refused")
    return accepted / (time.perf_counter() - started)


def run(quick: bool) -> str:
    load_before = os.getloadavg()[0]
    seconds = 4.0 if quick else 12.0
    vendors = 16 if quick else 32
    rounds = 3 if quick else 10
    health_batches = 4 if quick else 30
    cores = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    name = f"clr_i13_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = make_conninfo(PG_DSN, dbname=name)
    replicas: list[Replica] = []
    nginx: subprocess.Popen[bytes] | None = None
    try:
        world = build_world(
            tmp / "w", embedded_inspector=False, rings=INSTANT_RINGS, workers=0, database=dsn
        )
        # -- the reference: raw verification of the same envelopes on the same cores ----------
        # Enough for the three timed runs at about 2,500/s, the failover rounds included.
        pool = _releases(world, 30000 if quick else 100000, 100)
        raw = [e.to_bytes() for e in pool]
        key = world.vendor.verifier.to_string()
        # About a second of work per process: shorter runs are noise on a shared machine.
        raw_rate = _raw_rate(raw[: 3000 if quick else 12000], key, cores)
        raw_one = _raw_rate(raw[: 1500 if quick else 8000], key, 1)

        replicas = Replica.start_many(world.data_dir, 1)
        url = replicas[0].url
        customers = [f"site-{n}" for n in range(20000) if customer_bucket(f"site-{n}") < 1.0][:20]
        per_batch = 2000
        devices, fleet_keys = _fleet(customers, per_batch * health_batches)
        approved = _approve_and_entitle(world, url, customers, fleet_keys)

        remaining = iter(raw)
        taking = threading.Lock()

        def next_envelope() -> bytes:
            with taking:
                return next(remaining)

        ran_out: list[float] = []  # when the failover loaders used up the signed releases

        vendor_auth = f"Authorization: Bearer {world.token('vendor')}\r\n"

        def vendor_request() -> Request:
            return "submit", _post("/api/v1/submissions", next_envelope(), vendor_auth)

        one, one_elapsed = _load_many([(_port(url), vendors, vendor_request)], seconds)
        replicas += Replica.start_many(world.data_dir, 1)
        half = vendors // 2
        two, two_elapsed = _load_many(
            [(_port(r.url), half, vendor_request) for r in replicas], seconds
        )
        # The reference for forwarding: the same load on two replicas that each integrate
        # what they receive, taking turns at the log's lease (as replicas did before).
        replicas = _restart_two(world, replicas, forward=False)
        turns, turns_elapsed = _load_many(
            [(_port(r.url), half, vendor_request) for r in replicas], seconds
        )
        replicas = _restart_two(world, replicas, forward=True)

        # -- health reports in bulk ----------------------------------------------------------
        reports = _health_reports(world, approved, customers, per_batch * health_batches)
        fleet_reports = _health_reports(
            world, approved, customers, len(devices), first=10**8, devices=devices
        )
        client_headers = {"Authorization": f"Bearer {world.token('client')}"}
        with httpx.Client(timeout=120) as http:
            # Not timed: one small request per replica, so each has its process pool running.
            for r in replicas:
                warm = _health_reports(world, approved, customers, 100, first=10**9 + len(r.url))
                http.post(
                    r.url + "/api/v1/health-reports/bulk",
                    json={"reports": warm},
                    headers=client_headers,
                )
        health_rate = _send_health(replicas, reports, per_batch, world.token("client"))
        fleet_rate = _send_health(replicas, fleet_reports, per_batch, world.token("client"))
        # Not needed by the tile reads (the load generator runs in this process).  The
        # tile reads after the fleet were slow for another reason: the fleet's
        # entitlements (55 KB entries) fill entry bundles of megabytes, which the
        # replica's memory cache refused (4 MiB per file then) and read from
        # PostgreSQL at every request.
        fleet_size = len(devices)
        del devices, fleet_keys, fleet_reports, reports
        gc.collect()

        # -- tiles: a replica (PostgreSQL) vs nginx on a static export -----------------------
        # Full tiles to read: top the log up to two of them when the timed runs were short
        # (quick mode on a loaded machine), with the same signed submissions.
        topped_up = 0
        while _size(dsn) < 2 * 256 + 8 and topped_up < 20:
            _load_many([(_port(replicas[0].url), vendors, vendor_request)], 2.0)
            topped_up += 1
        export = tmp / "static"
        with TransparencyLog.open(world.data_dir / "log", name="bench") as log:
            size = log.export(export)
            # The database alone: point lookups of tiles, no HTTP, no cache, 8 threads.
            paths = [f"tile/0/{n:03d}" for n in range(size // 256)] or ["checkpoint"]
            reads = 4000 if quick else 20000
            with ThreadPoolExecutor(8) as threads:
                started = time.perf_counter()
                list(threads.map(log.read_public, (paths[n % len(paths)] for n in range(reads))))
                db_rate = reads / (time.perf_counter() - started)
        full = size // 256
        tile_paths = [f"/log/tile/0/{n:03d}" for n in range(full)]
        tile_paths += [f"/log/tile/entries/{n:03d}" for n in range(full)]
        tile_paths += [f"/log/tile/1/000.p/{full}"] if full else []
        rng = random.Random(7)

        def tile_request() -> Request:
            return "tile", _get(rng.choice(tile_paths))

        gw_tiles, gw_elapsed = _load_many([(_port(replicas[0].url), 16, tile_request)], seconds)
        nginx_port = _free_port()
        prefix = tmp / "nginx"
        prefix.mkdir()
        conf = _nginx_conf(prefix, export, nginx_port)
        nginx = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(prefix)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_http(f"http://127.0.0.1:{nginx_port}/log/checkpoint", nginx)
        same = all(
            httpx.get(f"http://127.0.0.1:{nginx_port}{p}").content
            == httpx.get(replicas[0].url + p).content
            for p in tile_paths[:4]
        )
        ng_tiles, ng_elapsed = _load_many([(nginx_port, 16, tile_request)], seconds)

        # -- failover: kill -9 the replica that integrated last, under load -------------------
        failovers: list[float] = []
        stop_load = False

        def background_load() -> None:
            # About 50 submissions/s per loader: steady load through every round without
            # using up the signed releases while replacement replicas start (each rebuilds
            # its verifiable index from the whole log first).  Not sparser: a survivor's
            # next entry waits for the next submission, and at 10/s per loader that wait
            # (after the submissions the killed leader had logged but not answered, which
            # come back as duplicates) was most of what was measured.
            with httpx.Client(timeout=30) as http:
                while not stop_load:
                    try:
                        envelope = next_envelope()
                    except StopIteration:
                        ran_out.append(time.monotonic())
                        return
                    target = random.choice([r for r in replicas if r.alive] or replicas)
                    with contextlib.suppress(httpx.HTTPError):  # a replica just killed
                        http.post(
                            target.url + "/api/v1/submissions",
                            content=envelope,
                            headers={"Authorization": f"Bearer {world.token('vendor')}"},
                        )
                    time.sleep(0.02)

        loaders = [threading.Thread(target=background_load) for _ in range(4)]
        for t in loaders:
            t.start()
        try:
            for _ in range(rounds):
                time.sleep(1.0)
                if ran_out:  # no load left to show the next integrated entry
                    break
                before = _size(dsn)
                pid = _holder_pid(dsn)
                victim = next((r for r in replicas if r.pid == pid and r.alive), replicas[0])
                victim.kill()
                killed = time.monotonic()
                while _size(dsn) <= before and time.monotonic() - killed < 60:
                    time.sleep(0.005)
                failovers.append(time.monotonic() - killed)
                replicas.remove(victim)
                replicas += Replica.start_many(world.data_dir, 1)
        finally:
            stop_load = True
            for t in loaders:
                t.join()

        # -- durability: every acknowledged submission of the measured runs is in the log -----
        lost = 0
        with TransparencyLog.open(world.data_dir / "log") as log:
            for index, sha in [*one.acknowledged, *two.acknowledged, *turns.acknowledged]:
                if index >= log.size or hashlib.sha256(log.entry(index)).hexdigest() != sha:
                    lost += 1
            log_size = log.size
    finally:
        for r in replicas:
            r.kill()
        if nginx is not None and nginx.poll() is None:
            nginx.terminate()
            nginx.wait(timeout=10)
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)

    def rate(stats: Stats, elapsed: float) -> float:
        return len(stats.latencies["submit"]) / elapsed

    one_rps, two_rps = rate(one, one_elapsed), rate(two, two_elapsed)
    turns_rps = rate(turns, turns_elapsed)
    best = max(one_rps, two_rps)
    tile_rps = len(gw_tiles.latencies["tile"]) / gw_elapsed
    nginx_rps = len(ng_tiles.latencies["tile"]) / ng_elapsed
    load_after = os.getloadavg()[0]
    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    rows = [
        "| measurement | rate /s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|",
        f"| raw Ed25519 DSSE verification, {cores} processes (reference) | {raw_rate:,.0f} | - | - | - |",
        f"| raw Ed25519 DSSE verification, 1 process | {raw_one:,.0f} | - | - | - |",
        f"| signed submissions, 1 replica ({vendors} connections) | {one_rps:,.0f} | "
        f"{statistics.median(one.latencies['submit']) * 1000:.1f} | "
        f"{_pct(one.latencies['submit'], 0.99):.1f} | {sum(one.errors.values())} |",
        f"| signed submissions, 2 replicas ({half}+{half} connections), the follower "
        f"forwarding to the leader | {two_rps:,.0f} | "
        f"{statistics.median(two.latencies['submit']) * 1000:.1f} | "
        f"{_pct(two.latencies['submit'], 0.99):.1f} | {sum(two.errors.values())} |",
        f"| signed submissions, 2 replicas ({half}+{half} connections), taking turns at "
        f"integrating (reference: `forward_to_leader` off) | {turns_rps:,.0f} | "
        f"{statistics.median(turns.latencies['submit']) * 1000:.1f} | "
        f"{_pct(turns.latencies['submit'], 0.99):.1f} | {sum(turns.errors.values())} |",
        f"| health reports, bulk of {per_batch}, {len(replicas)} replicas, one sender each, "
        f"all signed by one client key | {health_rate:,.0f} | - | - | - |",
        f"| health reports, the same, from a fleet: one key per device ({fleet_size:,} "
        f"devices, {fleet_size // len(customers):,} per customer) | {fleet_rate:,.0f} "
        "| - | - | - |",
        f"| tile reads, replica (PostgreSQL + memory cache of immutable tiles) | {tile_rps:,.0f} | "
        f"{statistics.median(gw_tiles.latencies['tile']) * 1000:.1f} | "
        f"{_pct(gw_tiles.latencies['tile'], 0.99):.1f} | {sum(gw_tiles.errors.values())} |",
        f"| tile reads from PostgreSQL in process (`read_public`, 8 threads, no cache, no HTTP) "
        f"| {db_rate:,.0f} | - | - | - |",
        f"| tile reads, nginx on the static export (reference) | {nginx_rps:,.0f} | "
        f"{statistics.median(ng_tiles.latencies['tile']) * 1000:.1f} | "
        f"{_pct(ng_tiles.latencies['tile'], 0.99):.1f} | {sum(ng_tiles.errors.values())} |",
    ]
    return "\n".join(
        [
            f"`clearance serve` replicas on loopback over one PostgreSQL 15 database (the log in "
            f"PostgreSQL, and with it the metadata index, health reports, artifacts and TUF files), {seconds:.0f} s per "
            f"load run, load generator in the same process as the benchmark on the same "
            f"{cores} cores; log size at the end {log_size}. Load average (1 min) "
            f"{load_before:.1f} before the run and {load_after:.1f} at its end (this "
            f"benchmark's own load){_shared_note(load_before)}.",
            "",
            *rows,
            "",
            f"- Failover (`kill -9` of the replica that integrated last, 4 loaders running): "
            f"time to the next integrated entry over {len(failovers)} rounds: median "
            f"{statistics.median(failovers) * 1000:.0f} ms, worst {max(failovers) * 1000:.0f} ms"
            + (
                f" (of {rounds} planned: the loaders used up the pre-signed releases)."
                if len(failovers) < rounds
                else "."
            ),
            f"- Acknowledged submissions checked in the log afterwards: "
            f"{len(one.acknowledged) + len(two.acknowledged) + len(turns.acknowledged)}, "
            f"lost: **{lost}**.",
            f"- Same tile bytes from the replica and nginx: {same}.",
            f"- Targets: ≥ {TARGET_SUBMIT_RPS:,.0f} signed submissions/s: {best:,.0f}/s, "
            f"{met(best >= TARGET_SUBMIT_RPS)}; ≥ {TARGET_RAW_FRACTION:.1f}x the raw "
            f"verification rate: {best / raw_rate:.3f}x, {met(best >= TARGET_RAW_FRACTION * raw_rate)}; "
            f"≥ {TARGET_HEALTH_RPS:,.0f} health reports/s: {health_rate:,.0f}/s from one key, "
            f"{fleet_rate:,.0f}/s from a fleet, {met(min(health_rate, fleet_rate) >= TARGET_HEALTH_RPS)}; tiles ≥ {TARGET_TILE_FRACTION:.1f}x nginx: "
            f"{tile_rps / nginx_rps:.2f}x, {met(tile_rps >= TARGET_TILE_FRACTION * nginx_rps)}.",
        ]
    )

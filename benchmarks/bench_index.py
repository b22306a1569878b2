"""The verifiable index: cost of keeping it on append, and of proving from it.

Measured: (1) one record update plus a new root in a sparse Merkle map holding N
records (what each appended statement costs the log writer), (2) a proof for one
record, (3) a whole index rebuilt from a log of real signed statements (releases
with two verdicts each: what a restarted writer or an auditor replays), and
(4) the log's append throughput of plain entries with and without the index
extension, in the same run.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

from clearance.attest import Artifact, Role, TrustRoot, create_release, create_verdict
from clearance.index import LogIndex, build_index
from clearance.index._smt import SparseMerkleMap
from clearance.keys import Signer
from clearance.log.store import TransparencyLog

ORIGIN = "bench.example/log"


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _map_costs(records: int, rounds: int) -> tuple[float, float, float]:
    smt = SparseMerkleMap()
    t0 = time.perf_counter()
    for i in range(records):
        smt.put(f"release/{i:064x}", b"r" * 400)
    smt.root()
    build = time.perf_counter() - t0
    updates, proofs = [], []
    for j in range(rounds):
        t1 = time.perf_counter()
        smt.put(f"release/{j % records:064x}", b"u%d" % j)
        smt.put("meta", b"m%d" % j)
        smt.root()
        t2 = time.perf_counter()
        smt.proof(f"release/{(j * 7) % records:064x}")
        t3 = time.perf_counter()
        updates.append((t2 - t1) * 1e6)
        proofs.append((t3 - t2) * 1e6)
    return build, _median(updates), _median(proofs)


def _statements(releases: int, tmp: Path) -> tuple[TrustRoot, list[bytes]]:
    log_key = Signer.generate(ORIGIN)
    vendor = Signer.generate("vendor")
    inspectors = [Signer.generate("inspector-a"), Signer.generate("inspector-b")]
    root = TrustRoot(
        log_origin=ORIGIN,
        log_key=log_key.verifier,
        vendors=Role((vendor.verifier,), 1),
        inspectors=Role(tuple(i.verifier for i in inspectors), 2),
        max_checkpoint_age=None,
    )
    entries: list[bytes] = []
    for n in range(releases):
        content = b"rule r%d { condition: true }" % n
        art = Artifact("rules.yar", hashlib.sha256(content).hexdigest(), len(content), "content")
        rel = create_release(
            product="av", version=f"1.{n}", channel="stable", artifacts=[art], signers=vendor
        )
        entries.append(rel.to_bytes())
        entries.extend(
            create_verdict(
                rel, "approved", signers=i, inspected_at="2026-11-22T03:00:00Z"
            ).to_bytes()
            for i in inspectors
        )
    return root, entries


def _append_rate(tmp: Path, root: TrustRoot | None, batches: int, batch: int) -> float:
    signer = Signer.generate(ORIGIN)
    index = None if root is None else LogIndex(root)
    log = TransparencyLog.create(tmp, ORIGIN, signer, index)
    t0 = time.perf_counter()
    for b in range(batches):
        log.append([b"entry %d %d" % (b, i) for i in range(batch)])
    seconds = time.perf_counter() - t0
    log.close()
    return batches * batch / seconds


def run(quick: bool) -> str:
    sizes = (1_000, 10_000) if quick else (1_000, 10_000, 100_000)
    rounds = 200 if quick else 1000
    releases = 100 if quick else 1000
    rows = []
    for n in sizes:
        build, update, proof = _map_costs(n, rounds)
        rows.append(f"| {n:,} | {build:.2f} s | {update:.0f} µs | {proof:.0f} µs |")
    with tempfile.TemporaryDirectory() as tmp:
        root, entries = _statements(releases, Path(tmp))
        t0 = time.perf_counter()
        index = build_index(root, entries)
        replay = time.perf_counter() - t0
        assert index.record(f"release/{hashlib.sha256(entries[0]).hexdigest()}") is not None
        # The log writer flushes the index at every group commit: one entry at a time here.
        one_by_one = LogIndex(root)
        t0 = time.perf_counter()
        for entry in entries:
            one_by_one.extend([entry])
        replay_flushing = time.perf_counter() - t0
        assert one_by_one.root() == index.root()
        # What each flush touching the channel used to do: scan the channel's releases for
        # its latest approved one (now kept as releases change; forced here to measure it).
        channel = index._channels[("av", "stable")]
        scans = []
        for _ in range(50):
            channel.stale = True
            t0 = time.perf_counter()
            index._channel_value(channel)
            scans.append(time.perf_counter() - t0)
        scan = _median(scans)
        batches, batch = (20, 100) if quick else (50, 1000)
        plain = _append_rate(Path(tmp) / "plain", None, batches, batch)
        indexed = _append_rate(Path(tmp) / "indexed", root, batches, batch)
    return f"""
Sparse Merkle map of the verifiable index (`clearance.index`), {rounds:,} rounds per size
(median): one record update plus the `meta` record and a new root — what each appended
statement costs the log writer — and one proof for a bundle.

| records | first root | update + root | proof |
| ---: | ---: | ---: | ---: |
{chr(10).join(rows)}

Replaying {len(entries):,} signed statements ({releases:,} releases with two verdicts each;
every signature checked by the admission rule) into a fresh index: {replay:.2f} s
({replay / len(entries) * 1e6:.0f} µs per entry); one entry at a time, with the flush the
log writer does at every group commit: {replay_flushing:.2f} s
({replay_flushing / len(entries) * 1e6:.0f} µs per entry). All {releases:,} releases are in one
channel: the scan of it for its latest approved release, which every flush touching the
channel ran before the latest was kept as releases change, takes {scan * 1e6:,.0f} µs at
that size (it grows with the channel). Log append throughput of plain
entries, batches of {batch:,}: {plain:,.0f} entries/s without the index extension,
{indexed:,.0f} entries/s with it (plain entries are not JSON objects: the index skips
them at the first byte). Quick runs and a machine shared with other test runs make
these figures noisy; the ratio with/without is the meaningful one.
"""

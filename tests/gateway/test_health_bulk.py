"""Health reports in bulk: checked one by one, stored, logged as one aggregate per ring and window."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from clearance.attest import Envelope, Statement, Subject, key_id
from clearance.attest.statement import HEALTH_V1
from clearance.gateway._health_bulk import ReadReport, read_health_reports
from clearance.gateway._sigpool import SignaturePool
from clearance.gateway.errors import GatewayInputError
from clearance.gateway.health_batch import HealthAggregate
from clearance.gateway.rollout import Ring, customer_bucket
from clearance.keys import Signer, Verifier
from clearance.log import merkle
from clearance.log.reader import read_entry
from clearance.report.served import fetch_from_server

from .support import Live, start_live
from .test_flow import _approve, _entitlement

RINGS = (
    Ring("canary", 1.0, timedelta(hours=1), failure_threshold=0.5, min_reports=1000),
    Ring("broad", 100.0, timedelta(0)),
)


def _report(release: str, customer: str, status: str, signer: Signer, n: int) -> dict[str, object]:
    body = {"release": release, "customer": customer, "status": status, "nonce": str(n)}
    envelope = Statement((Subject("release", release),), HEALTH_V1, body).sign([signer])
    return json.loads(envelope.to_bytes())  # type: ignore[no-any-return]


def _post(live: Live, reports: list[dict[str, object]], role: str = "client") -> httpx.Response:
    return httpx.post(
        f"{live.url}/api/v1/health-reports/bulk",
        json={"reports": reports},
        headers={"Authorization": f"Bearer {live.world.token(role)}"},
        timeout=60,
    )


def test_bulk_refuses_forged_and_foreign_reports_one_by_one_and_logs_one_aggregate(
    tmp_path: Path,
) -> None:
    with start_live(tmp_path / "world", RINGS) as live:
        sha = _approve(live, tmp_path, "1.0.0")
        canary = [f"site-{n}" for n in range(5000) if customer_bucket(f"site-{n}") < 1.0][:3]
        outside = next(f"far-{n}" for n in range(500) if customer_bucket(f"far-{n}") > 50)
        with live.client("vendor") as vendor:
            for customer in (*canary, outside):
                vendor.submit(_entitlement(live, customer, "DE", "2024-01-01", "2099-01-01"))
        client = live.world.client
        good = [_report(sha, canary[n % 3], "ok", client, n) for n in range(150)]
        good += [_report(sha, canary[0], "failed", client, 1000)]
        forged = _report(sha, canary[1], "ok", live.world.vendor, 2000)  # not the client's key
        tampered = _report(sha, canary[1], "ok", client, 2001)
        tampered["signatures"] = good[0]["signatures"]  # a signature lifted from another report
        foreign = _report(sha, outside, "ok", client, 2002)  # release not offered to them
        garbage = {"payloadType": "x"}
        batch = [*good, forged, tampered, foreign, garbage, good[0]]
        answer = _post(live, batch)
        assert answer.status_code == 201, answer.text
        result = answer.json()
        assert result["accepted"] == len(good) + 1  # the resent good[0] is accepted...
        assert result["new"] == len(good)  # ...but stored and counted once
        refused = {r["position"]: r["reason"] for r in result["refused"]}
        assert set(refused) == {len(good), len(good) + 1, len(good) + 2, len(good) + 3}
        assert "not offered" in refused[len(good) + 2]
        # Bad tokens and bodies are refused as a whole.
        assert _post(live, good[:1], role="vendor").status_code == 403
        assert _post(live, []).status_code == 400
        # The rollout counted the reports.
        gateway = live.server.gateway
        # The rollout ticker judges again (it used to count logged reports only and wiped
        # the bulk reports' tally): one rule counts both.
        gateway.rollouts.tick()
        state = gateway.store.rollout(sha)
        # The rollout counts one vote per device (issue 12 case 4): 151 reports signed by
        # one client key are one device, whatever they say; the aggregate keeps them all.
        assert state is not None
        assert state["health"][0]["ok"] + state["health"][0]["failed"] == 1
        # The window closes: one aggregate entry in the log, whatever the replica.  The
        # background ticker is stopped first: this test plays the leader's ticker itself.
        gateway.stopping.set()
        real_clock = gateway.health.clock
        gateway.health.clock = lambda: real_clock() + timedelta(seconds=2 * 300 + 10)
        try:
            (index,) = gateway.health.aggregate_health()
            assert gateway.health.aggregate_health() == []  # each report is in one aggregate only
        finally:
            gateway.health.clock = real_clock
        entry = read_entry(gateway.log, index, gateway.log.size)
        logged = HealthAggregate.from_dict(json.loads(entry))
        assert dict(logged.counts) == {"ok": 150, "failed": 1, "engine-crash": 0}
        assert (logged.reports, logged.ring) == (151, "canary")
        # The individual reports stay retrievable; their Merkle root is the logged one.
        fetched = httpx.get(f"{live.url}/api/v1/health-aggregates/{index}", timeout=30).json()
        envelopes = sorted(
            (Envelope.from_dict(r).sha256, Envelope.from_dict(r).to_bytes())
            for r in fetched["reports"]
        )
        assert len(envelopes) == 151
        leaves = [merkle.leaf_hash(e) for _, e in envelopes]
        assert merkle.root_from_leaf_hashes(leaves) == logged.merkle_root
        proof = merkle.inclusion_proof(7, len(leaves), lambda level, n: _node(leaves, level, n))
        merkle.verify_inclusion(7, len(leaves), leaves[7], proof, logged.merkle_root)
        assert httpx.get(f"{live.url}/api/v1/health-aggregates/0", timeout=30).status_code == 404
        _pages_of_an_aggregate(live, index, [sha for sha, _ in envelopes])


def _pages_of_an_aggregate(live: Live, index: int, digests: list[str]) -> None:
    """An aggregate of millions of reports is read a page at a time, in leaf order."""
    url = f"{live.url}/api/v1/health-aggregates/{index}"
    seen: list[str] = []
    after = ""
    while True:
        page = httpx.get(url, params={"limit": 40, "after": after}, timeout=30).json()
        assert len(page["reports"]) <= 40
        seen += [Envelope.from_dict(r).sha256 for r in page["reports"]]
        if page["next_after"] is None:
            break
        assert page["next_after"] == seen[-1]
        after = page["next_after"]
    assert seen == digests  # every report once, in the Merkle tree's leaf order
    for bad in ({"limit": 0}, {"limit": 10_001}, {"limit": 5, "after": "zz"}):
        answer = httpx.get(url, params=bad, timeout=30)
        assert answer.status_code == 400, bad
    # Asked for all at once when there are more than one answer holds: told to page.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("clearance.gateway._health_bulk.MAX_REPORTS_PER_PAGE", 100)
        answer = httpx.get(url, timeout=30)
        assert answer.status_code == 400 and "ask for pages" in answer.text
        patch.setattr("clearance.report.served.AGGREGATE_PAGE", 30)
        fetched = fetch_from_server(live.url)(index)
    assert [Envelope.from_dict(dict(r)).sha256 for r in fetched] == digests


def _node(leaves: list[bytes], level: int, n: int) -> bytes:
    return merkle.root_from_leaf_hashes(leaves[n << level : (n + 1) << level])


def test_signature_pool_checks_in_processes_like_inline() -> None:
    signer, other = Signer.generate("client"), Signer.generate("other")
    key = signer.verifier  # parsed and checked once by the gateway, pickled to the workers
    items: list[tuple[bytes, list[Verifier]]] = []
    for n in range(200):
        body = {"release": "r", "customer": "c", "status": "ok", "nonce": str(n)}
        env = Statement((Subject("release", "r"),), HEALTH_V1, body).sign(
            [other if n % 7 == 0 else signer]
        )
        items.append((env.to_bytes(), [key]))
    pool = SignaturePool(2)
    try:
        started = time.monotonic()
        results = pool.verify_many(items)
        assert time.monotonic() - started < 60
    finally:
        pool.close()
    assert [r is None for r in results] == [n % 7 != 0 for n in range(200)]


def test_reports_are_read_in_processes_like_inline_and_bad_ones_refused_alone() -> None:
    """Parsing moved into the pool: the same answers, in order, as in this process; a
    report with a control character (a NUL, which PostgreSQL refuses in text and so would
    fail the whole bulk) or an unknown status is refused by itself."""
    signer = Signer.generate("client")
    items: list[object] = []
    for n in range(150):
        customer = "site\x00-1" if n % 50 == 3 else "site-1"
        status = "melted" if n % 50 == 7 else "ok"
        items.append(_report("ab" * 32, customer, status, signer, n))
    items[10] = {"payloadType": "x", "payload": "not base64!", "signatures": []}
    items[11] = "not an envelope"
    inline = read_health_reports(items)
    pool = SignaturePool(2)
    try:
        assert pool.map_chunks(read_health_reports, items) == inline
    finally:
        pool.close()
    refused = {n: r for n, r in enumerate(inline) if isinstance(r, str)}
    assert sorted(refused) == [3, 7, 10, 11, 53, 57, 103, 107]
    assert "control characters" in refused[3]
    assert "melted" in refused[7]
    ok = inline[0]
    assert isinstance(ok, ReadReport)
    assert ok.sha256 == hashlib.sha256(ok.stored).hexdigest()
    assert ok.device == signer.verifier.name + f"+{signer.verifier.key_id:08x}"
    assert Envelope.from_bytes(ok.stored).to_bytes() == ok.stored  # canonical as stored


def test_an_aggregate_is_built_from_reports_streamed_in_digest_order_only() -> None:
    """The leader streams a window's reports from the store instead of holding them all:
    the streamed build must equal the one over the sorted rows, and rows out of digest
    order (which would give another root than the one readers recompute) are refused."""
    rows = [
        (hashlib.sha256(b"%d" % n).hexdigest(), "ok" if n % 4 else "failed", b"{%d}" % n)
        for n in range(300)
    ]
    built = HealthAggregate.build("r1", "canary", 600, 300, rows)
    streamed = HealthAggregate.from_ordered("r1", "canary", 600, 300, iter(sorted(rows)))
    assert streamed == built and built.reports == 300
    assert dict(built.counts)["failed"] == 75
    with pytest.raises(GatewayInputError, match="out of digest order"):
        HealthAggregate.from_ordered("r1", "canary", 600, 300, iter(rows))
    empty = HealthAggregate.from_ordered("r1", "canary", 600, 300, iter([]))
    assert empty.reports == 0 and empty.merkle_root == merkle.root_from_leaf_hashes([])


def test_a_fleet_with_a_key_per_device_is_checked_by_the_key_each_report_names(
    tmp_path: Path,
) -> None:
    """A customer registers one client key per device, over several entitlements (an
    entry holds about 750 keys).  Each report is checked against the registered key its
    signature names, not against every key of the fleet; a report signed by a key the
    customer did not register is refused, and one naming a registered key id over
    another key's signature is refused as forged."""
    with start_live(tmp_path / "world", RINGS) as live:
        sha = _approve(live, tmp_path, "1.0.0")
        customer = next(f"site-{n}" for n in range(5000) if customer_bucket(f"site-{n}") < 1.0)
        devices = [Signer.generate(f"device-{n}") for n in range(1800)]
        with live.client("vendor") as vendor:
            for part in range(3):
                keys = [d.verifier.to_string() for d in devices[part * 600 : (part + 1) * 600]]
                vendor.submit(
                    _entitlement(live, customer, "DE", "2024-01-01", "2099-01-01", client_keys=keys)
                )
        good = [
            _report(sha, customer, "failed" if n % 10 == 0 else "ok", devices[n], n)
            for n in range(0, 1800, 7)
        ]
        stranger = Signer.generate("device-3")  # a registered device's name, another key
        unregistered = _report(sha, customer, "ok", stranger, 10_001)
        forged = _report(sha, customer, "ok", stranger, 10_002)
        signatures = forged["signatures"]
        assert isinstance(signatures, list)
        signatures[0]["keyid"] = key_id(devices[3].verifier)
        answer = _post(live, [*good, unregistered, forged])
        assert answer.status_code == 201, answer.text
        result = answer.json()
        assert result["accepted"] == len(good) == 258
        refused = {r["position"]: r["reason"] for r in result["refused"]}
        assert "not signed by a client key registered" in refused[len(good)]
        assert "invalid signature" in refused[len(good) + 1]
        gateway = live.server.gateway
        gateway.rollouts.tick()
        state = gateway.store.rollout(sha)
        assert state is not None  # every device counts once
        assert (state["health"][0]["ok"], state["health"][0]["failed"]) == (232, 26)


def test_a_device_registered_after_its_fleet_was_read_is_accepted_at_once(
    tmp_path: Path,
) -> None:
    """The gateway keeps each customer's parsed keys between bulk requests; a new
    entitlement (a device added to the fleet) must not wait for that copy to expire."""
    with start_live(tmp_path / "world", RINGS) as live:
        sha = _approve(live, tmp_path, "1.0.0")
        customer = next(f"site-{n}" for n in range(5000) if customer_bucket(f"site-{n}") < 1.0)
        first, later = Signer.generate("device-1"), Signer.generate("device-2")

        def register(device: Signer) -> None:
            keys = [device.verifier.to_string()]
            with live.client("vendor") as vendor:
                vendor.submit(
                    _entitlement(live, customer, "DE", "2024-01-01", "2099-01-01", client_keys=keys)
                )

        register(first)
        answer = _post(
            live, [_report(sha, customer, "ok", first, 1), _report(sha, customer, "ok", later, 2)]
        )
        assert answer.json()["accepted"] == 1
        assert "not signed by a client key registered" in answer.json()["refused"][0]["reason"]
        register(later)
        answer = _post(live, [_report(sha, customer, "ok", later, 3)])
        assert answer.json()["accepted"] == 1, answer.text

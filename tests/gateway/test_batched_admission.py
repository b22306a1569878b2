"""Concurrent submissions are admitted in batches: every caller gets its own outcome, the
version order within one channel still holds, and an envelope sent twice at once is
logged once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from clearance.attest import Envelope, Release
from clearance.attest.version import Version
from clearance.demo.world import build_world
from clearance.errors import ClearanceError
from clearance.gateway._entries import KIND_RELEASE, parse_entry
from clearance.gateway.service import Gateway
from clearance.log import merkle
from gateway.support import FAST_RINGS, make_release


@pytest.fixture
def gateway(tmp_path: Path) -> Any:
    world = build_world(tmp_path / "world", rings=FAST_RINGS, embedded_inspector=False)
    gw = Gateway.open(world.data_dir)
    yield world, gw
    gw.close()


def _try(gw: Gateway, envelope: Envelope) -> dict[str, Any] | ClearanceError:
    try:
        return gw.submit(envelope.to_bytes(), "vendor")
    except ClearanceError as exc:
        return exc


def test_concurrent_submissions_each_get_their_own_outcome(gateway: Any, tmp_path: Path) -> None:
    world, gw = gateway
    releases = [
        make_release(world, tmp_path, f"2.0.{n}", f"rule r{n} {{ condition: true }}\n".encode())[0]
        for n in range(12)
    ]
    resent = releases[3]
    jobs = [*releases, resent, resent, resent]
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda env: _try(gw, env), jobs))

    # Every caller got a receipt or its own refusal, and only the version rule refuses here.
    refusals = [o for o in outcomes if isinstance(o, ClearanceError)]
    assert all("version" in str(e) for e in refusals), refusals
    receipts = [o for o in outcomes if isinstance(o, dict)]
    assert receipts, "at least the first release of the channel is logged"

    # The copies of one envelope share one log entry (or were all refused together).
    copies = [o for o, env in zip(outcomes, jobs, strict=True) if env is resent]
    assert all(isinstance(c, dict) for c in copies) or all(
        isinstance(c, ClearanceError) for c in copies
    )
    if isinstance(copies[0], dict):
        assert len({c["log_index"] for c in copies if isinstance(c, dict)}) == 1
        assert sum(1 for c in copies if isinstance(c, dict) and not c["duplicate"]) == 1

    # The logged releases of the channel increase in log order, each logged once.
    entries = [gw.reads.log_entry(i) for i in range(gw.log.size)]
    assert len(entries) == len(set(entries))
    versions = []
    for entry in entries:
        parsed = parse_entry(entry)
        if parsed.kind == KIND_RELEASE and parsed.statement is not None:
            versions.append(Version.parse(Release.from_statement(parsed.statement).version))
    assert len(versions) == len({r["sha256"] for r in receipts})
    assert versions == sorted(versions) and len(set(versions)) == len(versions)

    # Each receipt proves its entry under the checkpoint it carries.
    for receipt in receipts:
        index, size = receipt["log_index"], receipt["tree_size"]
        assert index < size
        root = merkle.root_from_inclusion_proof(
            index,
            size,
            merkle.leaf_hash(entries[index]),
            [bytes.fromhex(h) for h in receipt["inclusion_proof"]],
        )
        assert root == merkle.root_from_leaf_hashes([merkle.leaf_hash(e) for e in entries[:size]])
        assert f"\n{size}\n" in receipt["checkpoint"]


def test_a_refusal_in_a_batch_leaves_the_others_logged(gateway: Any, tmp_path: Path) -> None:
    world, gw = gateway
    good = make_release(world, tmp_path, "3.0.0", b"rule good { condition: true }\n")[0]
    forged = Envelope(good.payload_type, good.payload + b" ", good.signatures)
    with ThreadPoolExecutor(4) as pool:
        ok, bad = pool.map(lambda env: _try(gw, env), [good, forged])
    assert isinstance(ok, dict) and ok["sha256"] == good.sha256
    assert isinstance(bad, ClearanceError)


def test_attack_an_entry_another_replica_indexed_first_gets_no_second_reaction(
    gateway: Any, tmp_path: Path
) -> None:
    """The entries a batch appended are indexed without first looking for them among the
    indexed (a query per batch).  If another replica indexed one meanwhile (this one was
    presumed dead), the store refuses the second copy and no second reaction (a second
    inspection of the release) comes from it."""
    world, gw = gateway
    taken = make_release(world, tmp_path, "3.0.0", b"rule taken { condition: true }\n")[0]
    fresh = make_release(world, tmp_path, "3.0.1", b"rule fresh { condition: true }\n")[0]
    first, second = gw.log.append([taken.to_bytes(), fresh.to_bytes()])
    with gw._apply_lock:  # what another replica's follower did with the first
        gw._index_without_reacting([(first, taken.to_bytes())])
        kinds_before = gw.store.kinds()
        reactions = gw.indexer.index_many(
            [(first, taken.to_bytes(), None), (second, fresh.to_bytes(), None)],
            appended_here=True,
        )
    assert reactions[0] is None  # indexed elsewhere: no second reaction
    assert reactions[1] is not None and reactions[1].action == "enqueue"
    after = gw.store.kinds()
    assert after[KIND_RELEASE] == kinds_before[KIND_RELEASE] + 1  # the fresh one only


def test_a_release_logged_before_its_artifacts_names_the_ones_it_waits_for(
    gateway: Any, tmp_path: Path
) -> None:
    world, gw = gateway
    envelope = make_release(world, tmp_path, "4.0.0", b"rule waiting { condition: true }\n")[0]
    receipt = gw.submit(envelope.to_bytes(), "vendor")
    row = gw.store.release(receipt["sha256"])
    assert row is not None and row.state == "awaiting-artifacts"
    assert row.detail == "waiting for artifacts: rules.yar"

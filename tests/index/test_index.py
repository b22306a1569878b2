"""The verifiable index: deterministic records, sparse-Merkle proofs, the log extension."""

from __future__ import annotations

import hashlib
import itertools
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearance.attest import (
    Artifact,
    Role,
    TrustRoot,
    create_release,
    create_verdict,
    reset_channel,
    revoke_key,
    rotation_envelope,
)
from clearance.attest.dsse import key_id
from clearance.attest.release import Release
from clearance.attest.version import Version
from clearance.index import (
    META_KEY,
    IndexMissingError,
    IndexProof,
    IndexProofError,
    LogIndex,
    build_index,
    channel_key,
    index_root_of,
    release_key,
    verify_index_proof,
)
from clearance.index._smt import (
    EMPTY,
    SparseMerkleMap,
    key_path,
    leaf_hash,
    node_hash,
    root_from_proof,
)
from clearance.keys import Signer
from clearance.log import Checkpoint, TransparencyLog, open_checkpoint


class Keys:
    def __init__(self) -> None:
        self.log = Signer.generate("log.example")
        self.vendor = Signer.generate("vendor")
        self.inspectors = [Signer.generate("insp-a"), Signer.generate("insp-b")]
        self.policy = Signer.generate("regulator")

    def root(self) -> TrustRoot:
        return TrustRoot(
            log_origin="log.example",
            log_key=self.log.verifier,
            vendors=Role((self.vendor.verifier,), 1),
            inspectors=Role(tuple(i.verifier for i in self.inspectors), 2),
            policy=Role((self.policy.verifier,), 1),
            max_checkpoint_age=None,
        )


@pytest.fixture
def keys() -> Keys:
    return Keys()


def _release(keys: Keys, tmp: Path, version: str, channel: str = "stable") -> bytes:
    path = tmp / f"r{version}"
    path.write_bytes(version.encode())
    return create_release(
        product="av",
        version=version,
        channel=channel,
        artifacts=[Artifact.from_file(path, "content")],
        signers=keys.vendor,
    ).to_bytes()


def _history(keys: Keys, tmp: Path) -> list[bytes]:
    from clearance.attest import Envelope

    r1 = _release(keys, tmp, "1.0")
    r2 = _release(keys, tmp, "2.0")
    env1, env2 = Envelope.from_bytes(r1), Envelope.from_bytes(r2)
    return [
        r1,
        *(create_verdict(env1, "approved", signers=i).to_bytes() for i in keys.inspectors),
        b"not json",
        r2,
        create_verdict(env2, "approved", signers=keys.inspectors[0]).to_bytes(),
        create_verdict(env2, "rejected", signers=keys.inspectors[1]).to_bytes(),
    ]


def test_sparse_merkle_proofs_bind_one_value_per_key() -> None:
    rng = random.Random(7)
    smt = SparseMerkleMap()
    values = {f"k{i}": rng.randbytes(8) for i in range(300)}
    for k, v in values.items():
        smt.put(k, v)
    root = smt.root()
    for k in ("k0", "k17", "k299"):
        proof = smt.proof(k)
        assert root_from_proof(k, values[k], proof) == root
        assert root_from_proof(k, values[k] + b"x", proof) != root
        assert root_from_proof("k1000", values[k], proof) != root
    with pytest.raises(KeyError):
        smt.proof("absent")
    # Insertion order does not matter.
    other = SparseMerkleMap()
    for k in sorted(values, reverse=True):
        other.put(k, values[k])
    assert other.root() == root


def _root_by_definition(records: dict[str, bytes]) -> bytes:
    """The map's root computed from the module's definition alone, with no cache and no
    trie: the subtree at a depth is split on that bit of the paths, down to one record."""
    leaves = [(int.from_bytes(key_path(k), "big"), leaf_hash(key_path(k), v)) for k, v in records.items()]

    def subtree(items: list[tuple[int, bytes]], depth: int) -> bytes:
        if not items:
            return EMPTY
        if len(items) == 1:
            return items[0][1]
        left = [i for i in items if not (i[0] >> (255 - depth)) & 1]
        right = [i for i in items if (i[0] >> (255 - depth)) & 1]
        return node_hash(subtree(left, depth + 1), subtree(right, depth + 1))

    return subtree(leaves, 0)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.binary(max_size=3), st.booleans()),
        min_size=1,
        max_size=60,
    )
)
def test_the_sparse_merkle_root_is_its_definition_after_any_puts_and_reads(
    steps: list[tuple[int, bytes, bool]],
) -> None:
    """Inserts, updates and roots taken in between (each root keeps hashes that later puts
    must forget): the root and every proof are always those of the definition."""
    smt = SparseMerkleMap()
    records: dict[str, bytes] = {}
    for key_number, value, read_root in steps:
        key = f"k{key_number}"
        smt.put(key, value)
        records[key] = value
        if read_root:
            assert smt.root() == _root_by_definition(records)
    root = smt.root()
    assert root == _root_by_definition(records) and len(smt) == len(records)
    for key, value in records.items():
        assert root_from_proof(key, value, smt.proof(key)) == root


def test_the_sparse_merkle_hashes_are_those_logs_already_commit_to() -> None:
    """Checkpoints signed so far carry index roots: the hashes may never change."""
    smt = SparseMerkleMap()
    assert smt.root() == EMPTY
    smt.put("release/a", b"1")
    assert smt.root().hex().startswith("8c3d6b851048e047")
    smt.put("channel\np\nc", b"2")
    assert smt.root().hex().startswith("31036b0cd4f04213")
    for i in range(50):
        smt.put(f"k{i}", str(i).encode())
    smt.put("k7", b"changed")
    assert smt.root().hex() == "b64f07b6ee5053b862d36ec67fff529b0e7f51412bca6af4bb27e274ea1b67ad"
    assert [h.hex()[:16] for h in smt.proof("k7")] == [
        "f3c04cacfc8ad175", "89aef0358dead87d", "bf430cec1312ed50",
        "448b87ab4e528e6c", "07df5695eb7659b6", "df6490507861e6df",
    ]  # fmt: skip


def test_the_index_is_a_deterministic_function_of_the_log(keys: Keys, tmp_path: Path) -> None:
    entries = _history(keys, tmp_path)
    one = build_index(keys.root(), entries)
    two = LogIndex(keys.root())
    for e in entries:  # one at a time, as a log appending single entries would
        two.extend([e])
    assert one.root() == two.root() and one.lines() == two.lines()
    assert one.size == len(entries)
    sha1 = hashlib.sha256(entries[0]).hexdigest()
    sha2 = hashlib.sha256(entries[4]).hexdigest()
    rec1, rec2 = one.record(release_key(sha1)), one.record(release_key(sha2))
    assert rec1 is not None and rec2 is not None
    assert rec1["state"] == "approved" and rec1["approvers"] == sorted(
        key_id(i.verifier) for i in keys.inspectors
    )
    assert rec2["state"] == "rejected" and [v["decision"] for v in rec2["verdicts"]] == [
        "approved",
        "rejected",
    ]
    channel = one.record(channel_key("av", "stable"))
    assert channel is not None and channel["latest"]["version"] == "1.0"
    # Proofs verify against the root; a changed record does not.
    proof = one.proof(release_key(sha2))
    assert verify_index_proof(proof, one.root())["state"] == "rejected"
    with pytest.raises(IndexProofError):
        verify_index_proof(IndexProof(proof.key, proof.value + b" ", proof.siblings), one.root())


def test_unsigned_and_under_threshold_entries_change_nothing(
    keys: Keys, tmp_path: Path
) -> None:
    entries = _history(keys, tmp_path)
    base = build_index(keys.root(), entries)
    stranger = Signer.generate("insp-a")  # same name as a trusted inspector, another key
    from clearance.attest import Envelope

    env = Envelope.from_bytes(entries[0])
    noise = [
        create_verdict(env, "rejected", signers=stranger).to_bytes(),
        revoke_key(keys.inspectors[0].verifier, "by the vendor", keys.vendor).to_bytes(),
    ]
    assert build_index(keys.root(), entries + noise).root() == base.root()


def test_key_revocation_and_channel_reset(keys: Keys, tmp_path: Path) -> None:
    entries = _history(keys, tmp_path)
    high = _release(keys, tmp_path, "9999")
    entries += [high, _release(keys, tmp_path, "2.5")]  # 2.5 < 9999: refused by the version rule
    index = build_index(keys.root(), entries)
    assert index.record(release_key(hashlib.sha256(entries[-1]).hexdigest())) is None
    entries += [
        reset_channel("av", "stable", "2.0", "stolen key", keys.policy).to_bytes(),
        _release(keys, tmp_path, "2.5"),
        revoke_key(keys.inspectors[0].verifier, "stolen", keys.policy).to_bytes(),
    ]
    index = build_index(keys.root(), entries)
    rec = index.record(release_key(hashlib.sha256(high).hexdigest()))
    assert rec is not None and rec["revoked"]["by"] == "channel-reset"
    assert index.record(release_key(hashlib.sha256(entries[-2]).hexdigest())) is not None
    channel = index.record(channel_key("av", "stable"))
    assert channel is not None and (channel["epoch"], channel["floor"]) == (1, "2.0")
    # The revoked inspector key no longer counts: 1.0 falls to one approval of two.
    rec1 = index.record(release_key(hashlib.sha256(entries[0]).hexdigest()))
    assert rec1 is not None and rec1["state"] == "pending"
    meta = index.record(META_KEY)
    assert meta is not None and key_id(keys.inspectors[0].verifier) in meta["revokedKeys"]
    assert channel["latest"] is None


def test_a_logged_rotation_changes_the_rules(keys: Keys, tmp_path: Path) -> None:
    entries = _history(keys, tmp_path)[:3]  # 1.0 with two approvals
    root = keys.root()
    new = root.next_version(inspectors=Role((keys.inspectors[0].verifier,), 1))
    signers = [keys.vendor, *keys.inspectors, keys.policy]
    rotation = rotation_envelope(new).with_signatures(signers).to_bytes()
    index = build_index(root, [*entries, rotation])
    meta = index.record(META_KEY)
    assert meta is not None and meta["trustRootVersion"] == 2
    rec = index.record(release_key(hashlib.sha256(entries[0]).hexdigest()))
    assert rec is not None and rec["approvers"] == [key_id(keys.inspectors[0].verifier)]


def test_the_log_commits_to_the_index_and_rebuilds_it(keys: Keys, tmp_path: Path) -> None:
    entries = _history(keys, tmp_path)
    logdir = tmp_path / "log"
    log = TransparencyLog.create(logdir, "log.example", keys.log, LogIndex(keys.root()))
    empty, _ = open_checkpoint(log.checkpoint().to_bytes(), keys.log.verifier, "log.example")
    assert index_root_of(empty) == LogIndex(keys.root()).root()
    log.append(entries[:3])
    log.close()
    # Appended by someone without the index: that checkpoint has no index line...
    with TransparencyLog.open(logdir) as plain:
        plain.append(entries[3:5])
        bare = Checkpoint.from_note(plain.checkpoint())
    with pytest.raises(IndexMissingError):
        index_root_of(bare)
    # ...and the next writer with the index rebuilds it from the stored entries.
    with TransparencyLog.open(logdir, extension=LogIndex(keys.root())) as log:
        log.append(entries[5:])
        cp = Checkpoint.from_note(log.checkpoint())
    assert index_root_of(cp) == build_index(keys.root(), entries).root()


def test_writers_taking_turns_commit_the_index_of_the_whole_log(
    keys: Keys, tmp_path: Path
) -> None:
    """Two writers of one log (replicas), each with its own index, append in turn: each
    catches its index up on the other's entries only, and every checkpoint still commits
    to the index of the whole log up to its size (no stale or double-applied entries)."""
    entries = _history(keys, tmp_path)
    logdir = tmp_path / "log"
    TransparencyLog.create(logdir, "log.example", keys.log, LogIndex(keys.root())).close()
    writers = [TransparencyLog.open(logdir, extension=LogIndex(keys.root())) for _ in range(2)]
    try:
        for position, entry in enumerate(entries):
            writer = writers[position % 2]
            writer.append([entry])
            cp = Checkpoint.from_note(writer.checkpoint())
            assert cp.size == position + 1
            assert index_root_of(cp) == build_index(keys.root(), entries[: cp.size]).root()
    finally:
        for writer in writers:
            writer.close()


def _latest_from_release_records(index: LogIndex, shas: list[str]) -> str | None:
    """The channel's latest by definition: the greatest version among its approved,
    unrevoked releases (of equal versions, the first logged), read off their records."""
    best: dict[str, object] | None = None
    for sha in shas:
        rec = index.record(release_key(sha))
        if rec is None or rec["state"] != "approved" or rec["revoked"] is not None:
            continue
        version = Version.parse(rec["version"])
        if best is None or version > best["version"] or (
            version == best["version"] and rec["logIndex"] < best["logIndex"]  # type: ignore[operator]
        ):
            best = {"version": version, "logIndex": rec["logIndex"], "sha256": sha}
    return None if best is None else str(best["sha256"])


def test_channel_latest_kept_as_releases_change_equals_a_scan(keys: Keys, tmp_path: Path) -> None:
    """The channel record's latest release is kept as releases are approved, rejected,
    revoked and reset instead of being found by scanning the channel at every flush:
    after every entry of a random history it must name the release a scan would."""
    from clearance.attest import Envelope, revoke_release

    rng = random.Random(13)
    index = LogIndex(keys.root())
    entries: list[bytes] = []
    logged: list[Envelope] = []
    shas: list[str] = []
    major = 1
    revoked_any = reset_any = False
    seen: list[str | None] = []

    def append(data: bytes) -> None:
        entries.append(data)
        index.extend([data])
        channel = index.record(channel_key("av", "stable"))
        latest = None if channel is None or channel["latest"] is None else channel["latest"]
        expected = _latest_from_release_records(index, shas)
        assert (None if latest is None else latest["sha256"]) == expected, len(entries)
        seen.append(expected)

    for step in range(90):
        roll = rng.random()
        if roll < 0.35 or not logged:
            data = _release(keys, tmp_path, f"{major}.{step}")
            major += rng.random() < 0.3
            logged.append(Envelope.from_bytes(data))
            shas.append(hashlib.sha256(data).hexdigest())
            append(data)
        elif roll < 0.8:
            target = rng.choice(logged[-4:])
            if rng.random() < 0.8:  # both inspectors approve: the threshold is two
                for inspector in keys.inspectors:
                    append(create_verdict(target, "approved", signers=inspector).to_bytes())
            else:
                rejecter = rng.choice(keys.inspectors)
                append(create_verdict(target, "rejected", signers=rejecter).to_bytes())
        elif roll < 0.9:
            target = rng.choice(logged)
            append(revoke_release(target, "withdrawn", keys.policy).to_bytes())
            revoked_any = True
        elif roll < 0.94:
            floor = Release.from_envelope(rng.choice(logged)).version
            append(reset_channel("av", "stable", floor, "rolled back", keys.policy).to_bytes())
            reset_any = True
    assert revoked_any and reset_any
    states = [index.record(release_key(sha)) for sha in shas]
    assert any(s is not None and s["revoked"] is not None for s in states)
    # The history moved the latest often, and back to an older release or to none.
    changes = [b for a, b in itertools.pairwise(seen) if a != b]
    assert len(changes) > 5 and None in changes
    # A key revocation re-evaluates every release: the latest is found by a scan again.
    append(revoke_key(keys.inspectors[1].verifier, "stolen", keys.policy).to_bytes())
    assert build_index(keys.root(), entries).root() == index.root()


def test_entries_handed_over_parsed_give_the_index_a_replay_gives(
    keys: Keys, tmp_path: Path
) -> None:
    """The gateway's admission hands the index the statements it parsed, so that the
    log's commit does not parse them again.  Only the parsing is skipped: an entry whose
    signer the index's own rule refuses at its position (a vendor key revoked by an
    entry just before it in the same batch, after the admission checked it) changes
    nothing, exactly as when the log is replayed from its bytes."""
    from clearance.attest import Envelope, statement_of

    entries = _history(keys, tmp_path)
    entries += [
        revoke_key(keys.vendor.verifier, "stolen", keys.policy).to_bytes(),
        _release(keys, tmp_path, "3.0"),  # signed by the key revoked just before it
    ]
    replayed = build_index(keys.root(), entries)
    handed = LogIndex(keys.root())
    for entry in entries:
        try:
            envelope = Envelope.from_bytes(entry)
        except Exception:  # "not json": nothing to hand over
            continue
        handed.prepare(entry, envelope, statement_of(envelope))
    handed.extend(entries)
    assert handed.root() == replayed.root() and handed.lines() == replayed.lines()
    assert handed.record(release_key(hashlib.sha256(entries[-1]).hexdigest())) is None
    assert handed._prepared == {}  # every prepared entry was applied, none kept

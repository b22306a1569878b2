"""tlog-tiles paths and bundles, and the tile client proving from static files alone."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearance.keys import Signer
from clearance.log import (
    CheckpointSignatureError,
    DirectoryTileSource,
    HttpTileSource,
    LogCorruptedError,
    ProofRequestError,
    TiledLogClient,
    TransparencyLog,
    entries_path,
    merkle,
    tile_path,
)
from clearance.log._tilemath import TILE_WIDTH, TileTreeCache, hash_reader
from clearance.log.tiles import TileNotFoundError, decode_bundle, encode_bundle


@pytest.mark.parametrize(
    ("level", "index", "width", "path"),
    [
        (0, 0, 256, "tile/0/000"),
        (0, 1234, 256, "tile/0/x001/234"),
        (0, 1234067, 256, "tile/0/x001/x234/067"),
        (1, 17, 3, "tile/1/017.p/3"),
        (5, 1000, 255, "tile/5/x001/000.p/255"),
    ],
)
def test_tile_paths(level: int, index: int, width: int, path: str) -> None:
    assert tile_path(level, index, width) == path


def test_entries_paths_and_bad_widths() -> None:
    assert entries_path(1234067) == "tile/entries/x001/x234/067"
    assert entries_path(0, 1) == "tile/entries/000.p/1"
    for bad in (0, 257):
        with pytest.raises(ValueError):
            tile_path(0, 0, bad)
    with pytest.raises(ValueError):
        tile_path(0, -1)


def test_bundle_codec() -> None:
    entries = [b"", b"a", b"x" * 65535, bytes(range(256))]
    data = encode_bundle(entries)
    assert data[:2] == b"\x00\x00"
    assert decode_bundle(data) == entries
    assert decode_bundle(data, 2) == entries[:2]
    with pytest.raises(LogCorruptedError):
        decode_bundle(data[:-1])
    with pytest.raises(LogCorruptedError):
        decode_bundle(data, 5)


def _log(tmp_path: Path, sizes: list[int]) -> tuple[TransparencyLog, list[bytes]]:
    log = TransparencyLog.create(
        tmp_path / "log", "example.com/log", Signer.generate("example.com/log")
    )
    entries: list[bytes] = []
    for n in sizes:
        batch = [f"e{len(entries) + i}".encode() for i in range(n)]
        log.append(batch)
        entries += batch
    return log, entries


def _client(log: TransparencyLog) -> TiledLogClient:
    return TiledLogClient(DirectoryTileSource(log.public_dir), log.verifier, log.origin)


def test_client_proofs_equal_the_store_and_verify(tmp_path: Path) -> None:
    log, entries = _log(tmp_path, [1, 300, 255, 70000 - 556])
    # The tlog-tiles spec's own example: a tree of size 70,000 has 273 full level-0
    # tiles, a partial one of width 112, a full level-1 tile, a partial level-1
    # tile of width 17 and a partial level-2 tile of width 1.
    public = log.public_dir
    assert len([p for p in (public / "tile/0").rglob("*") if p.is_file()]) == 273 + 1
    assert (public / "tile/0/273.p/112").is_file()
    assert (public / "tile/1/000").is_file()
    assert (public / "tile/1/001.p/17").is_file()
    assert (public / "tile/2/000.p/1").is_file()
    assert not (public / "tile/3").exists()
    assert (public / "tile/entries/273.p/112").is_file()
    client = _client(log)
    cp, _ = client.checkpoint()
    assert cp.size == 70000 == len(entries)
    for index in (0, 255, 256, 65535, 65536, 69999):
        for size in (index + 1, 65536, 70000):
            if size <= index:
                continue
            proof = client.inclusion_proof(index, size)
            assert proof == log.inclusion_proof(index, size)
            merkle.verify_inclusion(
                index, size, merkle.leaf_hash(entries[index]), proof, log.root(size)
            )
            assert client.leaf_hash(index, size) == merkle.leaf_hash(entries[index])
    for old, new in ((1, 70000), (257, 556), (65536, 70000), (69999, 70000)):
        proof = client.consistency_proof(old, new)
        assert proof == log.consistency_proof(old, new)
        merkle.verify_consistency(old, new, log.root(old), log.root(new), proof)
    assert list(client.entries(250, 800, 70000)) == entries[250:800]
    assert list(client.entries(69990, 70000, 70000)) == entries[69990:]


def test_old_checkpoint_still_provable_after_partials_are_removed(tmp_path: Path) -> None:
    log, entries = _log(tmp_path, [100])
    client = _client(log)
    old_cp, _ = client.checkpoint()
    assert (log.public_dir / "tile/0/000.p/100").is_file()
    log.append([b"more"] * 200)  # tile 0/0 is now full: its partials go away
    assert not (log.public_dir / "tile/0/000.p").exists()
    proof = client.inclusion_proof(42, old_cp.size)
    merkle.verify_inclusion(42, 100, merkle.leaf_hash(entries[42]), proof, old_cp.root_hash)
    assert list(client.entries(98, 100, 100)) == entries[98:100]


def test_tampered_full_tile_is_refused(tmp_path: Path) -> None:
    log, _ = _log(tmp_path, [600])
    full = log.public_dir / tile_path(0, 0)
    data = bytearray(full.read_bytes())
    data[0] ^= 1
    full.write_bytes(bytes(data))
    client = _client(log)
    client.checkpoint()
    with pytest.raises(LogCorruptedError, match="does not match its hash"):
        client.inclusion_proof(3, 600)


def test_tampered_partial_tile_is_refused(tmp_path: Path) -> None:
    log, _ = _log(tmp_path, [600])
    edge = log.public_dir / tile_path(0, 2, 600 - 512)
    data = bytearray(edge.read_bytes())
    data[-1] ^= 1
    edge.write_bytes(bytes(data))
    client = _client(log)
    client.checkpoint()
    with pytest.raises(LogCorruptedError, match="do not hash to the root"):
        client.inclusion_proof(599, 600)


def test_tampered_entry_bundle_is_refused(tmp_path: Path) -> None:
    log, _ = _log(tmp_path, [300])
    bundle = log.public_dir / entries_path(0)
    bundle.write_bytes(bundle.read_bytes().replace(b"e17", b"e71"))
    client = _client(log)
    client.checkpoint()
    with pytest.raises(LogCorruptedError, match="entry 17 does not match"):
        list(client.entries(0, 300, 300))


def test_checkpoint_by_another_key_is_refused(tmp_path: Path) -> None:
    log, _ = _log(tmp_path, [3])
    other = Signer.generate("example.com/log")
    client = TiledLogClient(DirectoryTileSource(log.public_dir), other.verifier, log.origin)
    with pytest.raises(CheckpointSignatureError):
        client.checkpoint()


def test_requests_past_the_size_are_bad_input(tmp_path: Path) -> None:
    log, _ = _log(tmp_path, [10])
    client = _client(log)
    client.checkpoint()
    with pytest.raises(ProofRequestError):
        client.inclusion_proof(10, 10)
    with pytest.raises(ProofRequestError):
        client.inclusion_proof(3, 11)  # no verified checkpoint that large
    with pytest.raises(ProofRequestError, match="backwards"):
        client.consistency_proof(8, 4)
    with pytest.raises(ProofRequestError):
        list(client.entries(5, 11, 10))


def test_directory_source_stays_inside_its_root(tmp_path: Path) -> None:
    log, _ = _log(tmp_path, [1])
    source = DirectoryTileSource(log.public_dir)
    with pytest.raises(Exception, match="leaves"):
        source.read("../log.key")
    with pytest.raises(TileNotFoundError):
        source.read("tile/9/000")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TransparencyLog, list[bytes], str]]:
    log, entries = _log(tmp_path, [700])
    handler = functools.partial(_Quiet, directory=str(log.public_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield log, entries, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_http_tile_source_against_a_real_static_server(
    served: tuple[TransparencyLog, list[bytes], str],
) -> None:
    log, entries, url = served
    with httpx.Client() as http:
        client = TiledLogClient(HttpTileSource(url, http), log.verifier, log.origin)
        cp, _ = client.checkpoint()
        proof = client.inclusion_proof(650, cp.size)
        merkle.verify_inclusion(650, cp.size, merkle.leaf_hash(entries[650]), proof, cp.root_hash)
        assert list(client.entries(690, 700, 700)) == entries[690:]
        with pytest.raises(TileNotFoundError):
            HttpTileSource(url, http).read("tile/7/000")


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.integers(1, 700), min_size=1, max_size=4), data=st.data())
def test_client_matches_store_for_random_trees(
    tmp_path_factory: pytest.TempPathFactory, batches: list[int], data: st.DataObject
) -> None:
    log, entries = _log(tmp_path_factory.mktemp("tiles"), [])
    client = _client(log)
    checkpoints = []
    for n in batches:
        start = len(entries)
        batch = [f"r{start + i}".encode() for i in range(n)]
        log.append(batch)
        entries += batch
        checkpoints.append(client.checkpoint()[0])  # an older, still-trusted tree each time
    size = len(entries)
    for cp in checkpoints:
        index = data.draw(st.integers(0, cp.size - 1))
        proof = client.inclusion_proof(index, cp.size)
        assert proof == log.inclusion_proof(index, cp.size)
        merkle.verify_inclusion(
            index, cp.size, merkle.leaf_hash(entries[index]), proof, cp.root_hash
        )
        if cp.size < size:
            cproof = client.consistency_proof(cp.size, size)
            merkle.verify_consistency(cp.size, size, cp.root_hash, log.root(), cproof)
    lo = data.draw(st.integers(0, size - 1))
    hi = data.draw(st.integers(lo, size))
    assert list(client.entries(lo, hi, size)) == entries[lo:hi]


def _tiles_of(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    """Every tile (full and the partial right edge) of the tree over ``leaves``."""
    tiles: dict[tuple[int, int], bytes] = {}
    level_hashes, level = leaves, 0
    while level_hashes:
        for index in range(0, len(level_hashes), TILE_WIDTH):
            tiles[(level, index // TILE_WIDTH)] = b"".join(level_hashes[index : index + TILE_WIDTH])
        level_hashes = [
            merkle.root_from_leaf_hashes(level_hashes[i : i + TILE_WIDTH])
            for i in range(0, len(level_hashes) - TILE_WIDTH + 1, TILE_WIDTH)
        ]
        level += 1
    return tiles


@pytest.mark.parametrize("size", [1, 2, 3, 255, 256, 257, 1000, 65536 + 300])
def test_cached_tile_trees_give_the_same_proofs_for_partial_tiles(size: int) -> None:
    """Receipts of one batch share the partial right-edge tile's inner tree: with the cache,
    every inclusion proof and root is what the leaves give."""
    leaves = [merkle.leaf_hash(b"entry %d" % n) for n in range(size)]
    tiles = _tiles_of(leaves)

    def fetch(level: int, index: int, width: int) -> bytes:
        return tiles[(level, index)][: width * merkle.HASH_SIZE]

    trees = TileTreeCache(limit=8)
    cached, plain = hash_reader(size, fetch, trees), hash_reader(size, fetch)
    root = merkle.root_from_leaf_hashes(leaves)
    assert merkle.tree_root(size, cached) == root
    for index in sorted({0, size // 2, size - 2, size - 1} - {-1}):
        proof = merkle.inclusion_proof(index, size, cached)
        assert proof == merkle.inclusion_proof(index, size, plain)
        merkle.verify_inclusion(index, size, leaves[index], proof, root)


def test_tile_tree_cache_does_not_answer_for_other_hashes() -> None:
    """A tile fetched, hashed and then refused as forged must not be answered from the
    cache when the genuine tile of the same position and width arrives."""
    genuine = b"".join(merkle.leaf_hash(b"%d" % n) for n in range(5))
    forged = b"\x00" * len(genuine)
    trees = TileTreeCache()
    assert trees.get(0, 7, forged)[0] == forged
    tree = trees.get(0, 7, genuine)
    assert tree[0] == genuine
    assert tree[2] == merkle.root_from_leaf_hashes(
        [genuine[i : i + 32] for i in range(0, 128, 32)]
    )

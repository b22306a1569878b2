"""One way to read a log: the store and the tile client speak the same LogReader and agree."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from clearance.attest import Artifact, create_release, create_verdict
from clearance.gateway.bundles import (
    PolicyNotInLogError,
    ReleaseNotInLogError,
    build_bundle,
    find_entries,
)
from clearance.keys import Signer
from clearance.log import (
    DirectoryTileSource,
    LogReader,
    ProofRequestError,
    TiledLogClient,
    TransparencyLog,
    read_entry,
)

ORIGIN = "reader.example/log"


def _log(tmp: Path, count: int) -> tuple[TransparencyLog, list[bytes]]:
    log = TransparencyLog.create(tmp / "log", ORIGIN, Signer.generate(ORIGIN))
    entries = [b"entry %d" % i for i in range(count)]
    log.append(entries)
    return log, entries


def test_store_and_tiles_read_the_same_ranges_across_bundle_edges(tmp_path: Path) -> None:
    log, entries = _log(tmp_path, 600)
    tiled = TiledLogClient(DirectoryTileSource(log.public_dir), log.verifier, ORIGIN)
    tiled.checkpoint()
    readers: list[LogReader] = [log, tiled]
    for reader in readers:
        assert isinstance(reader, LogReader)
        for start, end, size in ((0, 600, 600), (250, 515, 600), (255, 257, 300), (7, 7, 10)):
            assert list(reader.entries(start, end, size)) == entries[start:end]
        assert read_entry(reader, 599, 600) == entries[599]
        with pytest.raises(ProofRequestError):
            list(reader.entries(590, 601, 600))  # past the tree
        with pytest.raises(ProofRequestError):
            list(reader.entries(5, 3, 600))
    assert log.inclusion_proof(300, 500) == tiled.inclusion_proof(300, 500)
    assert log.consistency_proof(256, 600) == tiled.consistency_proof(256, 600)
    log.close()


def test_a_reader_cannot_be_asked_past_the_log(tmp_path: Path) -> None:
    log, _ = _log(tmp_path, 3)
    with pytest.raises(ProofRequestError):
        list(log.entries(0, 4, 4))
    log.close()


def test_bundle_finds_only_verdicts_on_its_release(tmp_path: Path) -> None:
    """The attack: a verdict on another release (or a forged-looking entry) must not ride
    along in this release's bundle; a policy asked for but not logged is refused."""
    keys = {n: Signer.generate(n) for n in ("vendor", "insp")}
    art = tmp_path / "a.yar"
    art.write_bytes(b"rule a { condition: false }")
    artifact = Artifact.from_file(art, "content")
    one = create_release(
        product="p", version="1.0", channel="s", artifacts=[artifact], signers=keys["vendor"]
    )
    two = create_release(
        product="p", version="2.0", channel="s", artifacts=[artifact], signers=keys["vendor"]
    )
    log = TransparencyLog.create(tmp_path / "log", ORIGIN, Signer.generate(ORIGIN))
    log.append(
        [
            one.to_bytes(),
            two.to_bytes(),
            create_verdict(two, "approved", signers=keys["insp"]).to_bytes(),
            b"not json at all",
            create_verdict(one, "approved", signers=keys["insp"]).to_bytes(),
        ]
    )
    found = find_entries(log, one.sha256, log.size)
    assert (found.release, found.verdicts, found.policy) == (0, (4,), None)
    bundle = build_bundle(log, log.checkpoint(), found.release, found.verdicts)
    assert [v.index for v in bundle.verdicts] == [4]
    assert hashlib.sha256(bundle.release.envelope).hexdigest() == one.sha256
    with pytest.raises(ReleaseNotInLogError):
        find_entries(log, "0" * 64, log.size)
    with pytest.raises(PolicyNotInLogError):
        find_entries(log, one.sha256, log.size, policy_sha256="1" * 64)
    # At an older tree size the later verdict is not there yet.
    assert find_entries(log, one.sha256, 4).verdicts == ()
    log.close()

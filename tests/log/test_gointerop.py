"""Interop with Go's golang.org/x/mod/sumdb/note and sumdb/tlog (built offline from Debian)."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from clearance.keys import Note, Signer, verify_note
from clearance.log import (
    Checkpoint,
    DirectoryTileSource,
    TiledLogClient,
    TransparencyLog,
    entries_path,
    merkle,
    open_checkpoint,
    sign_checkpoint,
    tile_path,
)

pytestmark = pytest.mark.go


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _run(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=120, check=False
    )


def _proofs(log: TransparencyLog) -> dict[str, list[dict[str, object]]]:
    """Our own proofs, from the store and from the tile client, for Go to check."""
    size = log.size
    client = TiledLogClient(DirectoryTileSource(log.public_dir), log.verifier, log.origin)
    client.checkpoint()
    inclusion: list[dict[str, object]] = []
    consistency: list[dict[str, object]] = []
    for index, tree in [(0, 1), (0, size), (255, 256), (256, size), (size - 1, size), (300, 513)]:
        if not index < tree <= size:
            continue
        proof = log.inclusion_proof(index, tree)
        assert proof == client.inclusion_proof(index, tree)
        inclusion.append(
            {
                "index": index,
                "size": tree,
                "leaf_hash": _b64(merkle.leaf_hash(log.entry(index))),
                "root": _b64(log.root(tree)),
                "proof": [_b64(p) for p in proof],
            }
        )
    for old, new in [(1, size), (256, size), (300, 513), (size - 1, size), (7, 8)]:
        if not 0 < old < new <= size:
            continue
        proof = log.consistency_proof(old, new)
        assert proof == client.consistency_proof(old, new)
        consistency.append(
            {
                "old": old,
                "new": new,
                "old_root": _b64(log.root(old)),
                "new_root": _b64(log.root(new)),
                "proof": [_b64(p) for p in proof],
            }
        )
    return {"inclusion": inclusion, "consistency": consistency}


@pytest.fixture
def interop_log(tmp_path: Path) -> TransparencyLog:
    # Go's tlog-checkpoint convention: the origin is the log key's name.
    signer = Signer.generate("example.com/interop")
    log = TransparencyLog.create(tmp_path / "log", "example.com/interop", signer)
    # Batches that end inside tiles, on tile boundaries and across them.
    for batch in (1, 2, 253, 256, 1, 600):
        start = log.size
        log.append([f"entry {start + i}".encode() * (1 + i % 5) for i in range(batch)])
    return log


def test_go_accepts_our_checkpoint_tiles_entries_and_proofs(
    gointerop: Path, interop_log: TransparencyLog, tmp_path: Path
) -> None:
    proofs = tmp_path / "proofs.json"
    proofs.write_text(json.dumps(_proofs(interop_log)))
    result = _run(
        gointerop,
        "verify",
        str(interop_log.public_dir),
        interop_log.verifier.to_string(),
        str(proofs),
    )
    assert result.returncode == 0, result.stderr
    assert f"size={interop_log.size} entries={interop_log.size}" in result.stdout
    assert "inclusion=6 consistency=5" in result.stdout


def test_go_rejects_a_tampered_tile(
    gointerop: Path, interop_log: TransparencyLog, tmp_path: Path
) -> None:
    proofs = tmp_path / "proofs.json"
    proofs.write_text(json.dumps({"inclusion": [], "consistency": []}))
    tile = interop_log.public_dir / tile_path(0, 1)
    data = bytearray(tile.read_bytes())
    data[40] ^= 1
    tile.write_bytes(bytes(data))
    result = _run(
        gointerop,
        "verify",
        str(interop_log.public_dir),
        interop_log.verifier.to_string(),
        str(proofs),
    )
    assert result.returncode == 1
    assert "gointerop:" in result.stderr


def test_go_rejects_a_checkpoint_signed_by_another_key(
    gointerop: Path, interop_log: TransparencyLog, tmp_path: Path
) -> None:
    proofs = tmp_path / "proofs.json"
    proofs.write_text(json.dumps({"inclusion": [], "consistency": []}))
    impostor = Signer.generate("example.com/interop")
    result = _run(
        gointerop, "verify", str(interop_log.public_dir), impostor.verifier.to_string(), str(proofs)
    )
    assert result.returncode == 1
    assert "note.Open rejected" in result.stderr


def test_we_accept_a_note_and_checkpoint_signed_by_go(gointerop: Path, tmp_path: Path) -> None:
    signer = Signer.generate("example.com/golog")
    body = Checkpoint("example.com/golog", 5, merkle.leaf_hash(b"root"))
    text = tmp_path / "checkpoint.txt"
    text.write_text(body.to_text())
    result = _run(gointerop, "sign", signer.to_string(), str(text))
    assert result.returncode == 0, result.stderr
    signed = result.stdout.encode()
    assert verify_note(Note.from_bytes(signed), [signer.verifier]) == [signer.verifier]
    checkpoint, _ = open_checkpoint(signed, signer.verifier)
    assert checkpoint == body
    # Ed25519 is deterministic: Go's signature is byte-for-byte ours.
    assert Note.from_bytes(signed).to_bytes() == signed
    assert sign_checkpoint(body, signer).to_bytes() == signed


def test_tile_paths_match_go(gointerop: Path) -> None:
    result = _run(gointerop, "paths")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 6
    for line in lines:
        level, index, width, path = line.split()
        ours = (
            entries_path(int(index), int(width))
            if level == "-1"
            else tile_path(int(level), int(index), int(width))
        )
        assert ours == path


def test_go_hashes_the_same_entries_to_our_root(gointerop: Path, tmp_path: Path) -> None:
    entries = [bytes([i % 251]) * (i % 300) for i in range(1000)]
    blob = b"".join(len(e).to_bytes(2, "big") + e for e in entries)
    path = tmp_path / "entries.bin"
    path.write_bytes(blob)
    result = _run(gointerop, "hash", str(path))
    assert result.returncode == 0, result.stderr
    count, _seconds, root = result.stdout.split()
    assert int(count) == 1000
    ours = merkle.root_from_leaf_hashes([merkle.leaf_hash(e) for e in entries])
    assert base64.b64decode(root) == ours


def test_go_accepts_a_checkpoint_with_the_index_extension_line(
    gointerop: Path, tmp_path: Path
) -> None:
    """The verifiable index root rides in an extension line: note.Open still accepts it."""
    from clearance.attest import Role, TrustRoot
    from clearance.index import INDEX_LINE_PREFIX, LogIndex

    signer = Signer.generate("example.com/interop")
    vendor = Signer.generate("vendor")
    root = TrustRoot(
        log_origin="example.com/interop",
        log_key=signer.verifier,
        vendors=Role((vendor.verifier,), 1),
        inspectors=Role((Signer.generate("inspector").verifier,), 1),
        max_checkpoint_age=None,
    )
    log = TransparencyLog.create(tmp_path / "log", "example.com/interop", signer, LogIndex(root))
    log.append([b"entry %d" % i for i in range(300)])
    checkpoint, _ = open_checkpoint(log.checkpoint().to_bytes(), signer.verifier)
    assert [x[: len(INDEX_LINE_PREFIX)] for x in checkpoint.extensions] == [INDEX_LINE_PREFIX]
    proofs = tmp_path / "proofs.json"
    proofs.write_text(json.dumps(_proofs(log)))
    result = _run(gointerop, "verify", str(log.public_dir), log.verifier.to_string(), str(proofs))
    log.close()
    assert result.returncode == 0, result.stderr
    assert "size=300 entries=300" in result.stdout

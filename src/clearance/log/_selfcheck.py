"""The log's self-check (``clearance log verify``): storage and ``public/`` against the tree.

Memory stays flat: the tree is recomputed one entry bundle at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from clearance.keys import Verifier
from clearance.log import merkle
from clearance.log._edge import RightEdge
from clearance.log._publish import Publisher
from clearance.log._tilemath import TILE_WIDTH, level_count, tile_levels
from clearance.log.checkpoint import Checkpoint, open_checkpoint
from clearance.log.errors import (
    CheckpointFormatError,
    CheckpointSignatureError,
    LogCorruptedError,
    LogInputError,
)
from clearance.log.storage import LogStorage
from clearance.log.tiles import DirectoryTileSource, TiledLogClient, decode_bundle

#: ``progress(done, total)`` entries checked so far.
Progress = Callable[[int, int], None]


def check_storage(database: LogStorage, checkpoint: Checkpoint, progress: Progress | None) -> None:
    """Recompute the tree from the stored entries and check every stored tile, the signed
    root (``checkpoint``, already verified) and that no stray rows exist."""
    where = database.location
    size = checkpoint.size
    rebuilt = RightEdge(0, [], b"")
    expected_bundle = 0
    for index, data in database.iter_bundles():
        width = min(TILE_WIDTH, size - index * TILE_WIDTH)
        if width <= 0:
            raise LogCorruptedError(f"{where}: stray entry bundle {index} past the log size")
        if index != expected_bundle:
            raise LogCorruptedError(f"{where}: entry bundle {expected_bundle} is missing")
        entries = decode_bundle(data, width)
        if len(b"".join(len(e).to_bytes(2, "big") + e for e in entries)) != len(data):
            raise LogCorruptedError(f"{where}: entry bundle {index} has trailing bytes")
        for w in rebuilt.append(entries):
            if w.is_bundle:
                continue
            stored = database.tile(w.level, w.index)
            if stored is None or stored[: len(w.data)] != w.data:
                raise LogCorruptedError(
                    f"{where}: tile {w.level}/{w.index} does not match the entries"
                )
        expected_bundle += 1
        if progress is not None:
            progress(rebuilt.size, size)
    if rebuilt.size != size:
        raise LogCorruptedError(
            f"{where}: holds {rebuilt.size} entries but its checkpoint says {size}"
        )
    if rebuilt.root() != checkpoint.root_hash:
        raise LogCorruptedError(f"{where}: the entries do not hash to the signed root")
    expected_tiles = sum(
        (level_count(size, level) + TILE_WIDTH - 1) // TILE_WIDTH
        for level in range(tile_levels(size))
    )
    tile_rows, bundle_rows = database.counts()
    if tile_rows != expected_tiles or bundle_rows != expected_bundle:
        raise LogCorruptedError(f"{where}: holds stray tiles or bundles")
    for level, data in enumerate(rebuilt.partial_tiles()):
        index = level_count(size, level) // TILE_WIDTH
        if data and database.tile(level, index) != data:
            raise LogCorruptedError(f"{where}: tile {level}/{index} has extra hashes")


def check_public(
    publisher: Publisher,
    public_dir: Path,
    verifier: Verifier,
    origin: str,
    checkpoint: Checkpoint,
) -> None:
    """``public/`` serves the same checkpoint, and its tiles alone prove the last entry."""
    size = checkpoint.size
    published = publisher.read_checkpoint()
    if published is None:
        raise LogCorruptedError(f"{public_dir / 'checkpoint'}: missing")
    try:
        public_cp, _ = open_checkpoint(published, verifier, origin)
    except (CheckpointFormatError, CheckpointSignatureError) as exc:
        raise LogCorruptedError(f"{public_dir / 'checkpoint'}: {exc}") from None
    if public_cp != checkpoint:
        raise LogCorruptedError(
            f"{public_dir / 'checkpoint'}: is for size {public_cp.size}, "
            f"the database holds size {size}"
        )
    if size == 0:
        return
    # The public tiles must prove, on their own, the last entry under the checkpoint.
    client = TiledLogClient(DirectoryTileSource(public_dir), verifier, origin)
    client.trust(checkpoint)
    last = size - 1
    try:
        proof = client.inclusion_proof(last, size)
        (entry,) = list(client.entries(last, size, size))
        merkle.verify_inclusion(last, size, merkle.leaf_hash(entry), proof, checkpoint.root_hash)
    except (merkle.ProofError, LogInputError, LogCorruptedError) as exc:
        raise LogCorruptedError(f"{public_dir}: {exc}") from None

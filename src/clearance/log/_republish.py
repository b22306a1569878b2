"""Bringing a folder of public tlog-tiles files up to date with the log's storage."""

from __future__ import annotations

from clearance.keys import Verifier
from clearance.log._publish import Publisher
from clearance.log._tilemath import TILE_WIDTH, tiles_touched
from clearance.log.checkpoint import open_checkpoint
from clearance.log.errors import CheckpointFormatError, CheckpointSignatureError, LogCorruptedError
from clearance.log.merkle import HASH_SIZE
from clearance.log.storage import LogStorage
from clearance.log.tiles import entries_path, tile_path


def published_size(publisher: Publisher, verifier: Verifier, origin: str) -> int | None:
    """The size of the checkpoint already in ``publisher``'s folder (``None``: none, or
    unreadable)."""
    data = publisher.read_checkpoint()
    if data is None:
        return None
    try:
        checkpoint, _ = open_checkpoint(data, verifier, origin)
    except (CheckpointFormatError, CheckpointSignatureError):
        return None  # unreadable: republish everything
    return checkpoint.size


def republish(
    storage: LogStorage, publisher: Publisher, start: int, size: int, note: bytes
) -> None:
    """Write every tile and bundle that differs between sizes ``start`` and ``size``."""
    pending: list[tuple[str, bytes]] = []
    full: list[str] = []
    for level, index, width in tiles_touched(start, size):
        data = storage.tile(level, index)
        bundle = storage.bundle(index) if level == 0 else None
        if data is None or len(data) < width * HASH_SIZE or (level == 0 and bundle is None):
            raise LogCorruptedError(f"{storage.location}: tile {level}/{index} is missing")
        pending.append((tile_path(level, index, width), data[: width * HASH_SIZE]))
        if bundle is not None:
            pending.append((entries_path(index, width), bundle))
        if width == TILE_WIDTH:
            full.append(tile_path(level, index))
            if level == 0:
                full.append(entries_path(index))
        if len(pending) >= 256:  # bounded memory when republishing a whole log
            publisher.write_files(pending)
            pending = []
    publisher.write_files(pending)
    publisher.write_checkpoint(note)
    for path in full:
        publisher.remove_partials(path)


def catch_up(
    storage: LogStorage,
    publisher: Publisher,
    verifier: Verifier,
    origin: str,
    head: tuple[int, bytes],
) -> int | None:
    """Bring ``publisher``'s folder from its own checkpoint to ``head`` (size, note).

    Returns ``None`` when the folder is up to date (now); when the folder's
    checkpoint is ahead of ``head``, nothing is written and its size is
    returned, for the caller to refuse in its own terms.
    """
    size, note = head
    published = published_size(publisher, verifier, origin)
    if published is not None and published > size:
        return published
    start = 0 if published is None else published
    if start < size or publisher.read_checkpoint() != note:
        republish(storage, publisher, start, size, note)
    return None

"""The append-only transparency log: RFC 9162 Merkle tree, C2SP checkpoints and tiles.

Public API:

* :mod:`clearance.log.merkle` - hashing and proofs (standalone verification);
* :mod:`clearance.log.checkpoint` - :class:`Checkpoint`, :func:`sign_checkpoint`,
  :func:`open_checkpoint`, :class:`CheckpointExtension` (extra checkpoint lines);
* :mod:`clearance.log.consistency` - :func:`check_consistent` (is this checkpoint
  consistent with the last one seen) and :func:`cosignatures` (valid witness
  cosignatures; a forged one refuses), used by the verifier, witness and auditor;
* :mod:`clearance.log.reader` - :class:`LogReader`, the one way to read a log (entries
  by range, inclusion and consistency proofs), spoken by the store and the tile client;
* :mod:`clearance.log.store` - :class:`TransparencyLog`, over SQLite or PostgreSQL;
* :mod:`clearance.log.storage` - :class:`LogStorage`, the interface of its backends;
* :mod:`clearance.log.tiles` - tlog-tiles paths and :class:`TiledLogClient`.
"""

from clearance.log.checkpoint import (
    Checkpoint,
    CheckpointExtension,
    open_checkpoint,
    sign_checkpoint,
)
from clearance.log.consistency import check_consistent, cosignatures
from clearance.log.errors import (
    CheckpointForkError,
    CheckpointFormatError,
    CheckpointRollbackError,
    CheckpointSignatureError,
    CheckpointSupersededError,
    ConsistencyUnprovenError,
    EntryTooLargeError,
    ForgedCosignatureError,
    LogCorruptedError,
    LogInputError,
    LogUnavailableError,
)
from clearance.log.merkle import ProofError, ProofRequestError
from clearance.log.reader import LogReader, read_entry
from clearance.log.storage import LogStorage
from clearance.log.store import AppendResult, TransparencyLog
from clearance.log.tiles import (
    MAX_ENTRY_SIZE,
    DirectoryTileSource,
    HttpTileSource,
    TiledLogClient,
    TileSource,
    entries_path,
    parse_tile_path,
    tile_path,
)

__all__ = [
    "MAX_ENTRY_SIZE",
    "AppendResult",
    "Checkpoint",
    "CheckpointExtension",
    "CheckpointForkError",
    "CheckpointFormatError",
    "CheckpointRollbackError",
    "CheckpointSignatureError",
    "CheckpointSupersededError",
    "ConsistencyUnprovenError",
    "DirectoryTileSource",
    "EntryTooLargeError",
    "ForgedCosignatureError",
    "HttpTileSource",
    "LogCorruptedError",
    "LogInputError",
    "LogReader",
    "LogStorage",
    "LogUnavailableError",
    "ProofError",
    "ProofRequestError",
    "TileSource",
    "TiledLogClient",
    "TransparencyLog",
    "check_consistent",
    "cosignatures",
    "entries_path",
    "open_checkpoint",
    "parse_tile_path",
    "read_entry",
    "sign_checkpoint",
    "tile_path",
]

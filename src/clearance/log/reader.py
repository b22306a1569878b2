"""One way to read a log: :class:`LogReader`.

Every reader of a log speaks it: the embedded
:class:`~clearance.log.store.TransparencyLog`, the
:class:`~clearance.log.tiles.TiledLogClient` over a directory or over HTTP
(:class:`~clearance.log.tiles.HttpTileSource`, what the gateway serves
at ``/log/``), and the gateway's own view of its log.  Bundle building,
scans and audits take a :class:`LogReader` and do not care which.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable


@runtime_checkable
class LogReader(Protocol):
    """Entries by range and proofs, all for an explicit tree size."""

    def entries(self, start: int, end: int, size: int) -> Iterator[bytes]:
        """Entries ``[start, end)`` of the tree of ``size`` leaves, in order, streamed."""
        ...

    def inclusion_proof(self, index: int, size: int) -> list[bytes]: ...

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]: ...


def read_entry(log: LogReader, index: int, size: int) -> bytes:
    """Entry ``index`` of the tree of ``size`` leaves."""
    return next(iter(log.entries(index, index + 1, size)))

"""Where a log keeps its durable state: one interface, a SQLite and a PostgreSQL backend.

:class:`TransparencyLog` never writes SQL itself; it talks to a
:class:`LogStorage`, which owns the tables of one backend:

* :class:`clearance.log._sqlite.Database` - ``LOGDIR/log.db``, the embedded
  default; writers of separate processes are serialised by ``flock`` on
  ``LOGDIR/lock``;
* :class:`clearance.log._postgres.PostgresStorage` - a PostgreSQL database
  named by ``LOGDIR/log.dsn``, shared by any number of replicas; one
  integrator at a time holds a PostgreSQL advisory lock and a fencing token
  that the integrating transaction re-checks.

The state is the same in both (the layout Tessera's MySQL driver uses): one
row per hash tile and per entry bundle, rewritten until the tile is full and
then immutable, plus the signed head checkpoint.  Every read is one point
lookup, so any replica can serve tiles straight from the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from clearance.log._edge import TileWrite


class LogStorage(Protocol):
    """The durable state of one log.  Every method is safe to call from several threads."""

    @property
    def location(self) -> str:
        """What to name in error messages (a path or a DSN without its password)."""

    @property
    def meta(self) -> dict[str, str]:
        """``format``, ``origin`` and ``verifier`` (the log's verifier key line)."""

    def head(self) -> tuple[int, bytes]:
        """The integrated tree size and its signed checkpoint (with cosignatures)."""

    def tile(self, level: int, index: int) -> bytes | None:
        """The latest contents of hash tile (level, index), or ``None``."""

    def bundle(self, index: int) -> bytes | None:
        """The latest contents of entry bundle ``index``, or ``None``."""

    def iter_bundles(self) -> Iterator[tuple[int, bytes]]:
        """Every stored bundle, in index order (for the full self-check)."""

    def counts(self) -> tuple[int, int]:
        """How many tile rows and bundle rows are stored (a self-check looks for strays)."""

    def sequencing(self, wait: bool = True) -> AbstractContextManager[bool]:
        """Be the only integrator of this log (across threads, processes and replicas).

        Yields whether the lock is held: always ``True`` when ``wait``; without
        ``wait``, ``False`` when another integrator holds it right now.
        """

    def sequenced_size(self) -> int:
        """Inside :meth:`sequencing`: the integrated tree size, as read once the lock was
        taken or as this holder's last commit left it (only the holder moves it)."""

    def commit_batch(
        self, writes: Iterable[TileWrite], old_size: int, size: int, root: bytes, note: bytes
    ) -> None:
        """Store one integrated batch atomically, inside :meth:`sequencing`.

        Refused (:class:`~clearance.log.errors.LogCorruptedError`) when the head
        is no longer ``old_size`` or the caller lost its integrator lease, so a
        stale integrator can never overwrite a newer tree.
        """

    def set_note(self, size: int, old_note: bytes, note: bytes) -> None:
        """Replace the head checkpoint (same tree, more cosignatures) if it is unchanged."""

    def close(self) -> None: ...

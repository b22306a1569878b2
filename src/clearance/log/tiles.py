"""C2SP tlog-tiles: paths, entry bundles, and a client that proves from tiles alone.

:class:`TiledLogClient` needs nothing but a :class:`TileSource` (a directory
or an HTTP base URL), the log's verifier key and origin.  Every tile it uses
is authenticated against the signed checkpoint: the partial tiles on the
right edge must hash to the checkpoint's root, and each full tile must hash
to its entry in the tile above, so a tampered tile or entry is refused.
"""

from __future__ import annotations

import re
import struct
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from clearance.keys import Note, Verifier
from clearance.log import merkle
from clearance.log._tilemath import TILE_WIDTH as TILE_WIDTH  # entries per full bundle
from clearance.log._tilemath import (
    TileTreeCache,
    hash_reader,
    hashes_root,
    level_count,
    tile_levels,
    tile_width,
)
from clearance.log.checkpoint import Checkpoint, open_checkpoint
from clearance.log.errors import LogCorruptedError, LogInputError, LogUnreachableError
from clearance.log.merkle import HASH_SIZE, HashReader, ProofRequestError

if TYPE_CHECKING:  # httpx is only needed by HttpTileSource; keep CLI start-up quick
    import httpx

MAX_ENTRY_SIZE = 0xFFFF
CHECKPOINT_PATH = "checkpoint"


class TileNotFoundError(LogInputError):
    """The tile source has no file at the requested path."""


def _encode_index(index: int) -> str:
    """``1234067`` -> ``x001/x234/067``: three-digit groups, all but the last prefixed ``x``."""
    if index < 0:
        raise ValueError(f"tile index {index} is negative")
    groups = []
    while True:
        index, rest = divmod(index, 1000)
        groups.append(f"{rest:03d}")
        if index == 0:
            break
    groups.reverse()
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """The path of a hash tile, e.g. ``tile/0/x001/234`` or ``tile/1/005.p/17``."""
    if not 0 <= level <= 63:
        raise ValueError(f"tile level {level} is out of range")
    return _with_width(f"tile/{level}/{_encode_index(index)}", width)


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """The path of an entry bundle, e.g. ``tile/entries/x001/234`` or ``.../234.p/17``."""
    return _with_width(f"tile/entries/{_encode_index(index)}", width)


def _with_width(path: str, width: int) -> str:
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"tile width {width} is out of range")
    return path if width == TILE_WIDTH else f"{path}.p/{width}"


_TILE_PATH = re.compile(
    r"tile/(?P<level>entries|\d{1,2})/(?P<index>(?:x\d{3}/)*\d{3})(?:\.p/(?P<width>\d{1,3}))?"
)


def parse_tile_path(path: str) -> tuple[int, int, int]:
    """``tile/1/x002/005.p/17`` -> (level, index, width); entry bundles have level -1.

    Only the canonical spelling :func:`tile_path` / :func:`entries_path`
    produce is accepted (no leading zeros lost, no ``.p/256``), so one tile has
    exactly one path and caches cannot be filled twice.
    """
    match = _TILE_PATH.fullmatch(path)
    if match is None:
        raise TileNotFoundError(f"{path}: not a tlog-tiles path")
    level = -1 if match["level"] == "entries" else int(match["level"])
    index = int(match["index"].replace("x", "").replace("/", ""))
    width = int(match["width"]) if match["width"] is not None else TILE_WIDTH
    try:
        canonical = entries_path(index, width) if level < 0 else tile_path(level, index, width)
    except ValueError:
        canonical = ""
    if canonical != path:
        raise TileNotFoundError(f"{path}: not a canonical tlog-tiles path")
    return level, index, width


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian uint16 length and its bytes."""
    parts = []
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise LogInputError(f"entry of {len(entry)} bytes exceeds {MAX_ENTRY_SIZE}")
        parts.append(struct.pack(">H", len(entry)))
        parts.append(entry)
    return b"".join(parts)


def decode_bundle(data: bytes, count: int | None = None) -> list[bytes]:
    """Split an entry bundle; with ``count``, read exactly that many entries from its start."""
    entries: list[bytes] = []
    pos = 0
    while pos < len(data) and (count is None or len(entries) < count):
        if pos + 2 > len(data):
            raise LogCorruptedError("entry bundle ends inside a length prefix")
        (length,) = struct.unpack_from(">H", data, pos)
        pos += 2
        if pos + length > len(data):
            raise LogCorruptedError("entry bundle ends inside an entry")
        entries.append(data[pos : pos + length])
        pos += length
    if count is not None and len(entries) != count:
        raise LogCorruptedError(f"entry bundle holds {len(entries)} entries, expected {count}")
    return entries


class TileSource(Protocol):
    """Reads a file of the published log, by path relative to its public root."""

    def read(self, path: str) -> bytes: ...


class DirectoryTileSource:
    """Tiles from a local directory (a log's ``public/`` or a mirror of it)."""

    def __init__(self, public_dir: Path) -> None:
        self._root = Path(public_dir).resolve()

    def read(self, path: str) -> bytes:
        target = (self._root / path).resolve()
        if not target.is_relative_to(self._root):
            raise LogInputError(f"tile path {path!r} leaves {self._root}")
        try:
            return target.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise TileNotFoundError(f"{target}: not found") from None
        except OSError as exc:
            raise LogInputError(f"{target}: cannot read: {exc.strerror}") from None


class HttpTileSource:
    """Tiles from a static web server, e.g. ``http://127.0.0.1:8000/log/``."""

    def __init__(self, base_url: str, client: httpx.Client | None = None) -> None:
        import httpx

        self._base = base_url.rstrip("/") + "/"
        self._client = client or httpx.Client(timeout=30.0)

    def read(self, path: str) -> bytes:
        import httpx

        url = self._base + path
        try:
            response = self._client.get(url)
        except httpx.HTTPError as exc:
            raise LogUnreachableError(f"{url}: cannot reach the log server ({exc})") from None
        if response.status_code == 404:
            raise TileNotFoundError(f"{url}: not found (404)")
        if response.status_code >= 500 or response.status_code in (401, 403):
            raise LogUnreachableError(f"{url}: HTTP status {response.status_code}")
        if response.status_code != 200:
            raise LogInputError(f"{url}: HTTP status {response.status_code}")
        return response.content


class TiledLogClient:
    """Reads and proves a tlog-tiles log from its static files alone."""

    def __init__(
        self, source: TileSource, log_verifier: Verifier, origin: str, cache_tiles: int = 256
    ) -> None:
        self._source = source
        self._verifier = log_verifier
        self._origin = origin
        self._cache_limit = cache_tiles
        # Only verified data is cached: full tiles by (level, index), right edges by size.
        self._full_tiles: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._edges: dict[int, dict[tuple[int, int], bytes]] = {}
        self._trees = TileTreeCache(cache_tiles)
        self._roots: dict[int, bytes] = {}

    def checkpoint(self) -> tuple[Checkpoint, Note]:
        """Fetch and verify the latest checkpoint; later calls can prove up to its size."""
        checkpoint, note = open_checkpoint(
            self._source.read(CHECKPOINT_PATH), self._verifier, self._origin
        )
        self.trust(checkpoint)
        return checkpoint, note

    def trust(self, checkpoint: Checkpoint) -> None:
        """Accept ``checkpoint`` (already verified by the caller) as a tree to prove against."""
        if checkpoint.origin != self._origin:
            raise LogInputError(f"checkpoint is for {checkpoint.origin!r}, not {self._origin!r}")
        known = self._roots.get(checkpoint.size)
        if known is not None and known != checkpoint.root_hash:
            raise LogCorruptedError(f"two different roots for tree size {checkpoint.size}")
        self._roots[checkpoint.size] = checkpoint.root_hash

    def _base(self, size: int) -> int:
        larger = [s for s in self._roots if s >= size]
        if size <= 0 or not larger:
            raise ProofRequestError(
                f"no verified checkpoint covers tree size {size}; call checkpoint() first"
            )
        return min(larger)

    def _reader(self, size: int) -> HashReader:
        """Hashes of the tree of ``size`` leaves, read from the smallest trusted tree containing it.

        Tiles of the trusted tree are authenticated against its signed root;
        a smaller tree's hashes are prefixes of them (append-only), and the
        caller's own checkpoint for ``size`` is what the resulting proof is
        finally checked against.
        """
        base = self._base(size)

        def fetch(level: int, index: int, width: int) -> bytes:
            full = tile_width(base, level, index)
            if not 0 < width <= full:
                raise ProofRequestError(f"tile ({level}, {index}) is not part of tree size {base}")
            return self._tile(base, level, index, full)[: width * HASH_SIZE]

        return hash_reader(size, fetch, self._trees)

    def _fetch(self, path: str, full_path: str, width: int) -> bytes:
        """A partial tile, or the full tile cut down when the partial was removed."""
        try:
            return self._source.read(path)
        except TileNotFoundError:
            if width == TILE_WIDTH:
                raise
        return self._source.read(full_path)

    def _raw_tile(self, level: int, index: int, width: int) -> bytes:
        path = tile_path(level, index, width)
        data = self._fetch(path, tile_path(level, index), width)
        if len(data) < width * HASH_SIZE:
            raise LogCorruptedError(
                f"tile {path} has {len(data)} bytes, expected {width * HASH_SIZE}"
            )
        return data[: width * HASH_SIZE]

    def _tile(self, size: int, level: int, index: int, width: int) -> bytes:
        if width == 0 or width != tile_width(size, level, index):
            raise ProofRequestError(f"tile ({level}, {index}) is not part of tree size {size}")
        if width < TILE_WIDTH:
            # Partial tiles sit on the right edge: the checkpoint's root vouches for them.
            return self._right_edge(size)[(level, index)]
        key = (level, index)
        cached = self._full_tiles.get(key)
        if cached is not None:
            self._full_tiles.move_to_end(key)
            return cached
        data = self._raw_tile(level, index, width)
        # A full tile is vouched for by its hash in the (authenticated) tile above;
        # the topmost tile is never full, so this recursion ends at the right edge.
        parent_index, slot = divmod(index, TILE_WIDTH)
        parent = self._tile(
            size, level + 1, parent_index, tile_width(size, level + 1, parent_index)
        )
        if hashes_root(data) != parent[slot * HASH_SIZE : (slot + 1) * HASH_SIZE]:
            raise LogCorruptedError(
                f"tile {level}/{index} does not match its hash in the tile above"
            )
        # Full tiles never change, so one verified copy serves every tree size.
        self._full_tiles[key] = data
        while len(self._full_tiles) > self._cache_limit:
            self._full_tiles.popitem(last=False)
        return data

    def _right_edge(self, size: int) -> dict[tuple[int, int], bytes]:
        """The partial tiles of tree ``size``, checked together against its trusted root."""
        edge = self._edges.get(size)
        if edge is not None:
            return edge
        root = self._roots.get(size)
        if root is None:
            raise ProofRequestError(f"no verified checkpoint for tree size {size}")
        edge = {}
        for level in range(tile_levels(size)):
            if level_count(size, level) % TILE_WIDTH:
                index = level_count(size, level) // TILE_WIDTH
                edge[(level, index)] = self._raw_tile(level, index, tile_width(size, level, index))

        def from_edge(level: int, index: int, width: int) -> bytes:
            data = edge.get((level, index))
            if data is None:  # pragma: no cover - tree_root only reads right-edge tiles
                raise LogCorruptedError(f"tile {level}/{index} is not on the right edge")
            return data

        if merkle.tree_root(size, hash_reader(size, from_edge)) != root:
            raise LogCorruptedError(f"published tiles do not hash to the root of size {size}")
        if len(self._edges) >= 64:
            self._edges.pop(next(iter(self._edges)))
        self._edges[size] = edge
        return edge

    def leaf_hash(self, index: int, size: int) -> bytes:
        """The authenticated leaf hash of entry ``index`` in the tree of ``size`` leaves."""
        self._check_index(index, size)
        return self._reader(size)(0, index)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        self._check_index(index, size)
        return merkle.inclusion_proof(index, size, self._reader(size))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        if not 0 <= old_size <= new_size:
            raise ProofRequestError(
                f"no consistency proof from size {old_size} to size {new_size} "
                "(a tree size cannot go backwards)"
            )
        if new_size == 0:
            return []
        return merkle.consistency_proof(old_size, new_size, self._reader(new_size))

    def entries(self, start: int, end: int, size: int) -> Iterator[bytes]:
        """Entries ``[start, end)`` of the tree of ``size`` leaves, each checked against its leaf hash."""
        if not 0 <= start <= end <= size:
            raise ProofRequestError(f"entries [{start}, {end}) are not in a tree of size {size}")
        read = self._reader(size) if start < end else None
        position = start
        while position < end:
            bundle_index, offset = divmod(position, TILE_WIDTH)
            width = tile_width(self._base(size), 0, bundle_index)
            full, partial = entries_path(bundle_index), entries_path(bundle_index, width)
            bundle = decode_bundle(self._fetch(partial, full, width), width)
            stop = min(end - bundle_index * TILE_WIDTH, width)
            for slot in range(offset, stop):
                entry = bundle[slot]
                assert read is not None
                if merkle.leaf_hash(entry) != read(0, bundle_index * TILE_WIDTH + slot):
                    raise LogCorruptedError(
                        f"entry {bundle_index * TILE_WIDTH + slot} does not match its leaf hash"
                    )
                yield entry
            position = bundle_index * TILE_WIDTH + stop

    @staticmethod
    def _check_index(index: int, size: int) -> None:
        if not 0 <= index < size:
            raise ProofRequestError(f"no entry {index} in a tree of size {size}")

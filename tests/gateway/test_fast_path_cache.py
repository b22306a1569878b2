"""The replica's memory cache of immutable log files (tiles, entry bundles, TUF files)."""

from __future__ import annotations

from clearance.gateway._fast_path import LARGEST_IMMUTABLE, ImmutableCache
from clearance.log.tiles import MAX_ENTRY_SIZE, TILE_WIDTH, encode_bundle


def test_a_full_bundle_of_the_largest_entries_is_kept_not_read_again_at_every_request() -> None:
    """A bundle of 256 entries of 65,535 bytes (a stretch of large entitlements) was over
    the old per-file cap: every request for it read megabytes from PostgreSQL again."""
    bundle = encode_bundle([bytes([n]) * MAX_ENTRY_SIZE for n in range(TILE_WIDTH)])
    assert len(bundle) == LARGEST_IMMUTABLE
    cache = ImmutableCache()
    cache.put("/log/tile/entries/000", bundle)
    assert cache.get("/log/tile/entries/000") == bundle


def test_the_least_recently_read_files_go_first_and_the_total_stays_bounded() -> None:
    cache = ImmutableCache(limit=300, item_limit=100)
    for name in "abc":
        cache.put(name, name.encode() * 100)
    assert cache.get("a") == b"a" * 100  # read: now the most recent
    cache.put("d", b"d" * 100)
    assert cache.get("b") is None and cache.get("a") is not None
    cache.put("e", b"e" * 101)  # over the per-file limit: not kept
    assert cache.get("e") is None
    assert [cache.get(n) is not None for n in "acd"] == [True, True, True]

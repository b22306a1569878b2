"""The version comparison rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearance.attest import Version, VersionFormatError, compare_versions


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("1.9", "1.10"),
        ("1.0-rc.1", "1.0"),
        ("1.0-alpha", "1.0-alpha.1"),
        ("1.0-alpha.1", "1.0-alpha.beta"),
        ("1.0-beta.2", "1.0-beta.11"),
        ("1.0-rc.1", "1.0.1"),
        ("0.9.9", "1"),
    ],
)
def test_order(low: str, high: str) -> None:
    assert compare_versions(low, high) == -1
    assert compare_versions(high, low) == 1


def test_trailing_zeros_are_equal() -> None:
    assert Version.parse("1.2") == Version.parse("1.2.0.0")
    assert compare_versions("1.2", "1.2.0") == 0


@pytest.mark.parametrize(
    "bad", ["", "v1", "1.", ".1", "01", "1.02", "1.0+build", "1..2", "1.0-", "a" * 70, "1 .0"]
)
def test_garbage_is_refused(bad: str) -> None:
    with pytest.raises(VersionFormatError):
        Version.parse(bad)


@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=5),
    st.lists(st.integers(0, 10**6), min_size=1, max_size=5),
)
def test_numeric_order_matches_tuples(a: list[int], b: list[int]) -> None:
    def pad(x: list[int]) -> list[int]:
        return x + [0] * (6 - len(x))

    va = Version.parse(".".join(map(str, a)))
    vb = Version.parse(".".join(map(str, b)))
    assert (va < vb) == (pad(a) < pad(b))

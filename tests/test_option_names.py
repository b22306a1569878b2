"""``--policy`` meant a verdict policy in ``inspect`` (and ``verdict sign``) and a distribution
policy in ``bundle``:
each now has a name that says which, and the old name still works."""

from __future__ import annotations

import pytest

from clearance.cli import build_parser


@pytest.mark.parametrize(
    ("command", "new"),
    [
        (
            ["inspect", "r.json", "--artifacts", "a", "--key", "k", "--out", "v.json"],
            "--verdict-policy",
        ),
        (
            ["bundle", "a.bin", "--release", "r.json", "--log", "L", "--out", "b.json"],
            "--distribution-policy",
        ),
        (
            ["verdict", "sign", "r.json", "--decision", "approved", "--key", "k", "--out", "v"],
            "--verdict-policy",
        ),
    ],
)
def test_clear_name_and_old_alias_set_the_same_option(command: list[str], new: str) -> None:
    parser = build_parser()
    by_new = parser.parse_args([*command, new, "p"])
    by_old = parser.parse_args([*command, "--policy", "p"])
    assert str(by_new.policy) == str(by_old.policy) == "p"
    assert parser.parse_args(command).policy is None

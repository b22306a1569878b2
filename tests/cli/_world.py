"""A small, real world built through the command line: keys, trust root, log, a release."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clearance.cli import main

RULES = b'rule demo { strings: $a = "EICAR" condition: $a }\n'


def run(*argv: str | Path) -> int:
    return main([str(a) for a in argv])


@dataclass
class CliWorld:
    root: Path

    def __getattr__(self, name: str) -> Path:  # keys/vendor.key -> world.vendor_key
        if name.endswith(("_key", "_pub")):
            base, _, suffix = name.rpartition("_")
            return (
                self.root
                / "keys"
                / f"{base.replace('_', '-')}.{'key' if suffix == 'key' else 'pub'}"
            )
        raise AttributeError(name)

    @property
    def trust_root(self) -> Path:
        return self.root / "trust-root.json"

    @property
    def logdir(self) -> Path:
        return self.root / "logdir"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def artifact(self) -> Path:
        return self.artifacts / "rules.yar"

    @property
    def release(self) -> Path:
        return self.root / "release.json"


def build(root: Path, *, approved: bool = False) -> CliWorld:
    """Keys, a trust root without witnesses, a log holding one release (and its approval)."""
    world = CliWorld(root)
    for name in ("log", "vendor", "inspector", "policy", "outsider"):
        assert run("keys", "generate", name, "--dir", root / "keys") == 0
    assert (
        run(
            "trust", "init", "--origin", "example.org/log", "--log-key", world.log_pub,
            "--vendor-key", world.vendor_pub, "--inspector-key", world.inspector_pub,
            "--policy-key", world.policy_pub, "--out", world.trust_root,
        )
        == 0
    )  # fmt: skip
    assert (
        run("log", "init", world.logdir, "--origin", "example.org/log", "--key", world.log_key) == 0
    )
    world.artifacts.mkdir()
    world.artifact.write_bytes(RULES)
    assert (
        run(
            "release", "create", "--product", "endpoint-antivirus", "--version", "1.0.0",
            "--channel", "stable", "--content", world.artifact, "--key", world.vendor_key,
            "--out", world.release,
        )
        == 0
    )  # fmt: skip
    assert (
        run("submit", world.release, "--log", world.logdir, "--trust-root", world.trust_root) == 0
    )
    if approved:
        verdict = root / "verdict.json"
        assert (
            run(
                "verdict", "sign", world.release, "--decision", "approved",
                "--key", world.inspector_key, "--out", verdict,
            )
            == 0
        )  # fmt: skip
        assert run("submit", verdict, "--log", world.logdir, "--trust-root", world.trust_root) == 0
    return world

"""The stolen-key drill, end to end on the command line (case 7).

The vendor has two release keys (threshold 1); one is stolen.  The thief logs
version 9999 of the stable channel, which freezes it: the vendor's next real
version (2.0.1) is refused by the log's version rule.  Recovery, all signed:

1. the policy authority revokes the stolen key and release 9999 and resets the
   channel to the last good version (``clearance revoke``, ``clearance channel
   reset``, logged with ``clearance submit``); the thief can sign none of these;
2. the vendor rotates the trust root to drop the stolen key, co-signed by the
   policy authority (the thief cannot rotate the legitimate key out alone);
3. the vendor logs 2.0.1, the inspectors approve it; endpoints that follow the
   rotation accept 2.0.1 and refuse 9999.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client.test_cli_flow import ORIGIN, _approve, _cosign_log, run, setup

__all__ = ["setup"]


def _submit(capsys: pytest.CaptureFixture[str], s: dict[str, Path], envelope: Path) -> int:
    code, _, _ = run(capsys, "submit", str(envelope), "--log", str(s["log"]))
    return code


def _release(
    capsys: pytest.CaptureFixture[str], s: dict[str, Path], version: str, key: str
) -> Path:
    out = s["tmp"] / f"release-{version}.json"
    code, _, err = run(
        capsys, "release", "create", "--product", "av", "--version", version, "--channel", "stable",
        "--key", str(s["keys"] / f"{key}.key"), "--content", str(s["artifact"]), "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    return out


def _bundle(capsys: pytest.CaptureFixture[str], s: dict[str, Path], release: Path) -> Path:
    out = s["tmp"] / f"bundle-{release.stem}.json"
    code, _, err = run(
        capsys, "bundle", str(s["artifact"]), "--release", str(release), "--log", str(s["log"]),
        "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    return out


def test_stolen_vendor_key_drill(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    s = setup
    keys = s["keys"]
    assert run(capsys, "keys", "generate", "vendor-2", "--dir", str(keys))[0] == 0
    # The pinned root: two vendor keys, threshold 1 ("vendor" will be stolen).
    root = s["tmp"] / "root-1.json"
    init = (
        "trust", "init", "--origin", ORIGIN, "--log-key", str(keys / "log.pub"),
        "--inspector-key", str(keys / "insp-a.pub"), str(keys / "insp-b.pub"),
        "--inspector-threshold", "2",
        "--witness-key", str(keys / "wit-a.pub"), str(keys / "wit-b.pub"), "--witness-threshold", "2",
        "--policy-key", str(keys / "regulator.pub"),
    )  # fmt: skip
    code, _, err = run(
        capsys, *init, "--vendor-key", str(keys / "vendor.pub"), str(keys / "vendor-2.pub"),
        "--out", str(root),
    )  # fmt: skip
    assert code == 0, err
    (s["log"] / "trust-root.json").write_bytes(root.read_bytes())

    good = _release(capsys, s, "2.0.0", "vendor-2")
    assert _submit(capsys, s, good) == 0
    _approve(capsys, s, good)

    # The thief, with the stolen "vendor" key, logs 9999 and gets it approved (it looked fine).
    evil = _release(capsys, s, "9999", "vendor")
    assert _submit(capsys, s, evil) == 0
    _approve(capsys, s, evil)
    _cosign_log(s["log"], keys, ["wit-a", "wit-b"])
    early_evil_bundle = _bundle(capsys, s, evil)  # what the thief holds before the recovery
    # The channel is frozen: the vendor's next real version is refused by the log.
    fixed = _release(capsys, s, "2.0.1", "vendor-2")
    code, _, err = run(capsys, "submit", str(fixed), "--log", str(s["log"]))
    assert code == 1 and "not higher" in err

    # The thief cannot sign recovery statements: they need the policy authority.
    stolen_reset = s["tmp"] / "thief-reset.json"
    reset_args = ("channel", "reset", "--product", "av", "--channel", "stable", "--floor", "2.0.0")
    code, _, err = run(
        capsys, *reset_args, "--key", str(keys / "vendor.key"), "--reason", "x",
        "--out", str(stolen_reset),
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run(capsys, "submit", str(stolen_reset), "--log", str(s["log"]))
    assert code == 1 and "policy authority" in err

    # 1. The policy authority revokes the key and the release and resets the channel.
    revoke_key = s["tmp"] / "revoke-key.json"
    revoke_release = s["tmp"] / "revoke-9999.json"
    reset = s["tmp"] / "reset.json"
    regulator = ("--key", str(keys / "regulator.key"))
    assert run(
        capsys, "revoke", "key", str(keys / "vendor.pub"), *regulator,
        "--reason", "vendor key stolen", "--out", str(revoke_key),
    )[0] == 0  # fmt: skip
    assert run(
        capsys, "revoke", "release", str(evil), *regulator,
        "--reason", "logged with a stolen key", "--out", str(revoke_release),
    )[0] == 0  # fmt: skip
    assert (
        run(capsys, *reset_args, *regulator, "--reason", "undo 9999", "--out", str(reset))[0] == 0
    )
    for envelope in (revoke_key, revoke_release, reset):
        code, out, err = run(capsys, "submit", str(envelope), "--log", str(s["log"]), "--json")
        assert code == 0, err
        assert json.loads(out)["kind"] in ("revocation", "channel-reset")

    # 2. Rotate the trust root to drop the stolen key: the thief alone cannot, nor can the
    #    vendor without the policy authority; the remaining vendor key and the regulator can.
    body = s["tmp"] / "root-2-body.json"
    code, _, err = run(
        capsys, *init, "--vendor-key", str(keys / "vendor-2.pub"), "--root-version", "2",
        "--out", str(body),
    )  # fmt: skip
    assert code == 0, err
    rotation = s["tmp"] / "rotation-2.json"
    rotate = ("trust", "rotate", "--current", str(root), "--rotation", str(rotation))
    root2 = s["tmp"] / "root-2.json"
    assert run(capsys, "trust", "sign", str(body), "--key", str(keys / "vendor-2.key"),
               "--out", str(rotation))[0] == 0  # fmt: skip
    code, _, err = run(capsys, *rotate, "--out", str(root2))
    assert code == 1 and "policy authority" in err
    assert run(capsys, "trust", "sign", str(rotation), "--key", str(keys / "regulator.key"),
               "--out", str(rotation))[0] == 0  # fmt: skip
    code, _, err = run(capsys, *rotate, "--out", str(root2))
    assert code == 0, err
    (s["log"] / "trust-root.json").write_bytes(root2.read_bytes())

    # 3. The vendor's next version is accepted after the reset and approved.
    assert _submit(capsys, s, fixed) == 0
    _approve(capsys, s, fixed)
    # The stolen key cannot log a release any more.
    evil2 = _release(capsys, s, "10000", "vendor")
    code, _, err = run(capsys, "submit", str(evil2), "--log", str(s["log"]))
    assert code == 1, err

    _cosign_log(s["log"], keys, ["wit-a", "wit-b"])
    verify = ("verify", str(s["artifact"]), "--trust-root", str(root), "--rotation", str(rotation))
    code, out, err = run(capsys, *verify, "--bundle", str(_bundle(capsys, s, fixed)), "--json")
    assert code == 0, err
    assert json.loads(out)["version"] == "2.0.1"
    # Release 9999 is revoked and signed only by the revoked key: the log's verifiable index
    # no longer lists it, so no honest bundle can be built for it at all ...
    evil_bundle = s["tmp"] / "bundle-evil.json"
    code, _, err = run(
        capsys, "bundle", str(s["artifact"]), "--release", str(evil), "--log", str(s["log"]),
        "--out", str(evil_bundle),
    )  # fmt: skip
    assert code == 1 and "not in the index" in err, err
    # ... and a bundle the thief made before the recovery is refused by endpoints that follow
    # the rotation (its only signature is by the key the rotation dropped).
    code, _, err = run(capsys, *verify, "--bundle", str(early_evil_bundle))
    assert code == 1 and "[release-signature]" in err, err

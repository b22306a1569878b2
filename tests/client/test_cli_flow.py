"""The command-line flow end to end on a real log: keys, trust root, release, verdicts, bundle, verify."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from clearance.cli import main
from clearance.keys import Note, cosign, load_signer
from clearance.log.store import TransparencyLog

ORIGIN = "clearance.test/cli-log"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _cosign_log(logdir: Path, keys: Path, witnesses: list[str]) -> None:
    with TransparencyLog.open(logdir) as log:
        note = log.checkpoint()
        sigs = [
            cosign(note.text, load_signer(keys / f"{w}.key"), int(time.time())) for w in witnesses
        ]
        log.add_cosignatures(sigs, for_text=note.text)


@pytest.fixture
def setup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Path]:
    keys = tmp_path / "keys"
    for name in ("log", "vendor", "insp-a", "insp-b", "wit-a", "wit-b", "regulator"):
        assert run(capsys, "keys", "generate", name, "--dir", str(keys))[0] == 0
    logdir = tmp_path / "log"
    assert (
        run(capsys, "log", "init", str(logdir), "--origin", ORIGIN, "--key", str(keys / "log.key"))[
            0
        ]
        == 0
    )
    root = tmp_path / "trust-root.json"
    code, _, err = run(
        capsys,
        "trust", "init", "--origin", ORIGIN, "--log-key", str(keys / "log.pub"),
        "--vendor-key", str(keys / "vendor.pub"),
        "--inspector-key", str(keys / "insp-a.pub"), str(keys / "insp-b.pub"), "--inspector-threshold", "2",
        "--witness-key", str(keys / "wit-a.pub"), str(keys / "wit-b.pub"), "--witness-threshold", "2",
        "--policy-key", str(keys / "regulator.pub"), "--out", str(root),
    )  # fmt: skip
    assert code == 0, err
    (logdir / "trust-root.json").write_bytes(root.read_bytes())
    artifact = tmp_path / "rules.yar"
    artifact.write_text("rule a { condition: true }\n")
    return {"keys": keys, "log": logdir, "root": root, "artifact": artifact, "tmp": tmp_path}


def _release(
    capsys: pytest.CaptureFixture[str], s: dict[str, Path], version: str, *extra: str
) -> Path:
    out = s["tmp"] / f"release-{version}.json"
    code, _, err = run(
        capsys, "release", "create", "--product", "av", "--version", version, "--channel", "stable",
        "--key", str(s["keys"] / "vendor.key"), "--content", str(s["artifact"]),
        "--endpoint", "updates.example.com", "--out", str(out), *extra,
    )  # fmt: skip
    assert code == 0, err
    return out


def _approve(
    capsys: pytest.CaptureFixture[str],
    s: dict[str, Path],
    release: Path,
    decision: str = "approved",
) -> None:
    for inspector in ("insp-a", "insp-b"):
        verdict = s["tmp"] / f"verdict-{release.stem}-{inspector}.json"
        code, _, err = run(
            capsys, "verdict", "sign", str(release), "--decision", decision,
            "--key", str(s["keys"] / f"{inspector}.key"), "--note", "reviewed", "--out", str(verdict),
        )  # fmt: skip
        assert code == 0, err
        assert run(capsys, "submit", str(verdict), "--log", str(s["log"]))[0] == 0


def test_full_flow(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    s = setup
    release = _release(capsys, s, "1.0")
    code, out, err = run(capsys, "submit", str(release), "--log", str(s["log"]), "--json")
    assert code == 0, err
    receipt = json.loads(out)
    assert receipt["log_index"] == 0 and receipt["kind"] == "release" and not receipt["duplicate"]
    assert Note.from_bytes(receipt["checkpoint"].encode()).signatures
    _approve(capsys, s, release)
    _cosign_log(s["log"], s["keys"], ["wit-a", "wit-b"])
    bundle = s["tmp"] / "bundle.json"
    code, _, err = run(
        capsys,
        "bundle",
        str(s["artifact"]),
        "--release",
        str(release),
        "--log",
        str(s["log"]),
        "--out",
        str(bundle),
    )
    assert code == 0, err
    state = s["tmp"] / "state"
    code, out, err = run(
        capsys, "verify", str(s["artifact"]), "--bundle", str(bundle), "--trust-root", str(s["root"]),
        "--state", str(state), "--json",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert (
        result["ok"] and result["version"] == "1.0" and result["inspectors"] == ["insp-a", "insp-b"]
    )

    # Tampered artifact: exit 1 naming the check.
    s["artifact"].write_text("rule a { condition: false }\n")
    code, _, err = run(
        capsys,
        "verify",
        str(s["artifact"]),
        "--bundle",
        str(bundle),
        "--trust-root",
        str(s["root"]),
    )
    assert code == 1 and "[artifact-digest]" in err


def test_submit_refusals(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    s = setup
    release = _release(capsys, s, "2.0")
    assert run(capsys, "submit", str(release), "--log", str(s["log"]))[0] == 0
    # The very same envelope again: its existing receipt, nothing appended.
    code, out, _ = run(capsys, "submit", str(release), "--log", str(s["log"]), "--json")
    assert code == 0 and json.loads(out)["duplicate"] and json.loads(out)["log_index"] == 0
    # Same version again, and a lower one: refused, nothing appended.
    again = _release(capsys, s, "2.0", "--notes", "again")
    code, _, err = run(capsys, "submit", str(again), "--log", str(s["log"]))
    assert code == 1 and "not higher" in err
    lower = _release(capsys, s, "1.5")
    assert run(capsys, "submit", str(lower), "--log", str(s["log"]))[0] == 1
    # Signed by a key the trust root does not know.
    forged = s["tmp"] / "forged.json"
    code, _, err = run(
        capsys, "release", "create", "--product", "av", "--version", "3.0", "--channel", "stable",
        "--key", str(s["keys"] / "insp-a.key"), "--content", str(s["artifact"]), "--out", str(forged),
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run(capsys, "submit", str(forged), "--log", str(s["log"]))
    assert code == 1 and "vendor signature" in err
    with TransparencyLog.open(s["log"]) as log:
        assert log.size == 1
    # A verdict on a release that was never logged.
    verdict = s["tmp"] / "orphan-verdict.json"
    assert (
        run(
            capsys,
            "verdict",
            "sign",
            str(lower),
            "--decision",
            "approved",
            "--key",
            str(s["keys"] / "insp-a.key"),
            "--out",
            str(verdict),
        )[0]
        == 0
    )
    code, _, err = run(capsys, "submit", str(verdict), "--log", str(s["log"]))
    assert code == 1 and "not in the log" in err
    # Bad input: missing file, garbage envelope.
    assert run(capsys, "submit", str(s["tmp"] / "nope.json"), "--log", str(s["log"]))[0] == 2
    garbage = s["tmp"] / "garbage.json"
    garbage.write_text("{not json")
    code, _, err = run(capsys, "submit", str(garbage), "--log", str(s["log"]))
    assert code == 2 and "garbage.json" in err and "Traceback" not in err


def test_verify_bad_inputs(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    s = setup
    bundle = s["tmp"] / "bundle.json"
    bundle.write_text('{"mediaType": "nope"}')
    code, _, err = run(
        capsys,
        "verify",
        str(s["artifact"]),
        "--bundle",
        str(bundle),
        "--trust-root",
        str(s["root"]),
    )
    assert code == 1 and "[bundle]" in err
    code, _, err = run(
        capsys,
        "verify",
        str(s["artifact"]),
        "--bundle",
        str(s["tmp"] / "missing"),
        "--trust-root",
        str(s["root"]),
    )
    assert code == 2 and "not found" in err


def test_version_rollback_via_cli(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    s = setup
    bundles = {}
    for version in ("1.0", "1.1"):
        release = _release(capsys, s, version)
        assert run(capsys, "submit", str(release), "--log", str(s["log"]))[0] == 0
        _approve(capsys, s, release)
    _cosign_log(s["log"], s["keys"], ["wit-a", "wit-b"])
    for version in ("1.0", "1.1"):
        out = s["tmp"] / f"bundle-{version}.json"
        rel = s["tmp"] / f"release-{version}.json"
        assert (
            run(
                capsys,
                "bundle",
                str(s["artifact"]),
                "--release",
                str(rel),
                "--log",
                str(s["log"]),
                "--out",
                str(out),
            )[0]
            == 0
        )
        bundles[version] = out
    state = s["tmp"] / "state"
    base = ["verify", str(s["artifact"]), "--trust-root", str(s["root"]), "--state", str(state)]
    assert run(capsys, *base, "--bundle", str(bundles["1.1"]))[0] == 0
    code, _, err = run(capsys, *base, "--bundle", str(bundles["1.0"]))
    assert code == 1 and "[version]" in err


def test_trust_rotation_via_cli(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    s = setup
    keys = s["keys"]
    assert run(capsys, "keys", "generate", "insp-c", "--dir", str(keys))[0] == 0
    new_body = s["tmp"] / "new-root.json"
    code, _, err = run(
        capsys,
        "trust", "init", "--origin", ORIGIN, "--log-key", str(keys / "log.pub"),
        "--vendor-key", str(keys / "vendor.pub"),
        "--inspector-key", str(keys / "insp-a.pub"), str(keys / "insp-c.pub"), "--inspector-threshold", "2",
        "--witness-key", str(keys / "wit-a.pub"), str(keys / "wit-b.pub"), "--witness-threshold", "2",
        "--policy-key", str(keys / "regulator.pub"), "--root-version", "2", "--out", str(new_body),
    )  # fmt: skip
    assert code == 0, err
    rotation = s["tmp"] / "rotation.json"
    # Only the vendor signs: refused (the inspectors change: their own threshold and the
    # regulator's are needed).
    code, _, err = run(
        capsys, "trust", "sign", str(new_body), "--key", str(keys / "vendor.key"),
        "--out", str(rotation),
    )  # fmt: skip
    assert code == 0, err
    out = s["tmp"] / "trust-root-2.json"
    rotate = ("trust", "rotate", "--current", str(s["root"]), "--rotation", str(rotation))
    code, _, err = run(capsys, *rotate, "--out", str(out))
    assert code == 1 and "current inspectors" in err and not out.exists()
    # The current inspectors (2 of 2), the new ones (insp-a, insp-c) and the regulator sign.
    code, _, err = run(
        capsys, "trust", "sign", str(rotation), "--key", str(keys / "insp-a.key"),
        "--key", str(keys / "insp-b.key"), "--key", str(keys / "insp-c.key"),
        "--key", str(keys / "regulator.key"), "--out", str(rotation),
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run(capsys, *rotate, "--out", str(out))
    assert code == 0, err
    assert json.loads(out.read_text())["version"] == 2


def test_vendor_signed_rotation_replacing_the_inspector_is_refused_by_verify(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Case 6: the vendor signs a rotation that makes its own key pair the only inspector and
    approves its release with it; ``verify --rotation`` refuses the rotation."""
    s = setup
    keys = s["keys"]
    assert run(capsys, "keys", "generate", "vendor-insp", "--dir", str(keys))[0] == 0
    new_body = s["tmp"] / "evil-root.json"
    code, _, err = run(
        capsys,
        "trust", "init", "--origin", ORIGIN, "--log-key", str(keys / "log.pub"),
        "--vendor-key", str(keys / "vendor.pub"),
        "--inspector-key", str(keys / "vendor-insp.pub"),
        "--witness-key", str(keys / "wit-a.pub"), str(keys / "wit-b.pub"), "--witness-threshold", "2",
        "--policy-key", str(keys / "regulator.pub"), "--root-version", "2", "--out", str(new_body),
    )  # fmt: skip
    assert code == 0, err
    rotation = s["tmp"] / "evil-rotation.json"
    code, _, err = run(
        capsys, "trust", "sign", str(new_body), "--key", str(keys / "vendor.key"),
        "--key", str(keys / "vendor-insp.key"), "--out", str(rotation),
    )  # fmt: skip
    assert code == 0, err
    release = _release(capsys, s, "1.0")
    assert run(capsys, "submit", str(release), "--log", str(s["log"]))[0] == 0
    verdict = s["tmp"] / "self-verdict.json"
    code, _, err = run(
        capsys, "verdict", "sign", str(release), "--decision", "approved",
        "--key", str(keys / "vendor-insp.key"), "--out", str(verdict),
    )  # fmt: skip
    assert code == 0, err
    # The log's own trust root refuses the vendor's inspector; log it with the evil root.
    code, _, err = run(
        capsys, "submit", str(verdict), "--log", str(s["log"]), "--trust-root", str(new_body)
    )
    assert code == 0, err
    _cosign_log(s["log"], keys, ["wit-a", "wit-b"])
    bundle = s["tmp"] / "bundle.json"
    code, _, err = run(
        capsys, "bundle", str(s["artifact"]), "--release", str(release), "--log", str(s["log"]),
        "--out", str(bundle),
    )  # fmt: skip
    assert code == 0, err
    verify = ("verify", str(s["artifact"]), "--bundle", str(bundle))
    # Even pinned to the evil root directly it is refused now: the log's verifiable index is
    # computed under the log's own trust root, where the vendor's inspector approves nothing.
    assert run(capsys, *verify, "--trust-root", str(new_body))[0] == 1
    code, _, err = run(capsys, *verify, "--trust-root", str(s["root"]), "--rotation", str(rotation))
    assert code == 1, err
    assert "current inspectors" in err


def test_library_bundle_from_store_and_tiles(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """build_bundle and find_entries on a TransparencyLog and on its static tiles agree and verify."""
    import hashlib

    from clearance.attest import TrustRoot
    from clearance.client import BundleVerifier
    from clearance.gateway.bundles import build_bundle, find_entries
    from clearance.index import build_index
    from clearance.log.tiles import DirectoryTileSource, TiledLogClient

    s = setup
    release = _release(capsys, s, "1.0")
    assert run(capsys, "submit", str(release), "--log", str(s["log"]))[0] == 0
    _approve(capsys, s, release)
    _cosign_log(s["log"], s["keys"], ["wit-a", "wit-b"])
    release_sha = hashlib.sha256(release.read_bytes()).hexdigest()
    digest = hashlib.sha256(s["artifact"].read_bytes()).hexdigest()
    root = TrustRoot.from_bytes(s["root"].read_bytes())
    verifier = BundleVerifier(root)
    with TransparencyLog.open(s["log"]) as log:
        note = log.checkpoint()
        size = log.size
        found = find_entries(log, release_sha, size)
        index = build_index(root, [log.entry(i) for i in range(size)])
        from_store = build_bundle(log, note, found.release, found.verdicts, index=index)
        tiled = TiledLogClient(DirectoryTileSource(log.public_dir), log.verifier, log.origin)
    tiled.checkpoint()
    assert find_entries(tiled, release_sha, size) == found
    from_tiles = build_bundle(tiled, note, found.release, found.verdicts, index=index)
    assert from_store == from_tiles
    assert verifier.verify(digest, from_tiles).inspectors == ("insp-a", "insp-b")


def test_flow_without_witnesses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The bare contract (no witness keys): no age limit is pinned, and verification passes."""
    keys = tmp_path / "keys"
    for name in ("log", "vendor", "insp"):
        assert run(capsys, "keys", "generate", name, "--dir", str(keys))[0] == 0
    logdir = tmp_path / "log"
    assert (
        run(capsys, "log", "init", str(logdir), "--origin", ORIGIN, "--key", str(keys / "log.key"))[
            0
        ]
        == 0
    )
    root = logdir / "trust-root.json"
    code, _, err = run(
        capsys, "trust", "init", "--origin", ORIGIN, "--log-key", str(keys / "log.pub"),
        "--vendor-key", str(keys / "vendor.pub"), "--inspector-key", str(keys / "insp.pub"), "--out", str(root),
    )  # fmt: skip
    assert code == 0 and "freshness" in err
    assert json.loads(root.read_text())["maxCheckpointAgeSeconds"] is None
    artifact = tmp_path / "feed.json"
    artifact.write_text('{"iocs": []}')
    release, verdict, bundle = tmp_path / "r.json", tmp_path / "v.json", tmp_path / "b.json"
    steps = [
        ["release", "create", "--product", "feed", "--version", "1", "--channel", "daily",
         "--key", str(keys / "vendor.key"), "--content", str(artifact), "--out", str(release)],
        ["submit", str(release), "--log", str(logdir)],
        ["verdict", "sign", str(release), "--decision", "approved", "--key", str(keys / "insp.key"), "--out", str(verdict)],
        ["submit", str(verdict), "--log", str(logdir)],
        ["bundle", str(artifact), "--release", str(release), "--log", str(logdir), "--out", str(bundle)],
        ["verify", str(artifact), "--bundle", str(bundle), "--trust-root", str(root), "--state", str(tmp_path / "st")],
    ]  # fmt: skip
    for argv in steps:
        code, out, err = run(capsys, *argv)
        assert code == 0, (argv[0], err)
    assert out.startswith("OK feed 1 (daily)")


def test_verify_follows_a_rotation(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """After a rotation that replaces inspector insp-b, its approval no longer counts."""
    s = setup
    keys = s["keys"]
    release = _release(capsys, s, "1.0")
    assert run(capsys, "submit", str(release), "--log", str(s["log"]))[0] == 0
    _approve(capsys, s, release)
    _cosign_log(s["log"], keys, ["wit-a", "wit-b"])
    bundle = s["tmp"] / "bundle.json"
    assert (
        run(
            capsys,
            "bundle",
            str(s["artifact"]),
            "--release",
            str(release),
            "--log",
            str(s["log"]),
            "--out",
            str(bundle),
        )[0]
        == 0
    )
    assert run(capsys, "keys", "generate", "insp-c", "--dir", str(keys))[0] == 0
    new_body = s["tmp"] / "new-root.json"
    assert run(
        capsys,
        "trust", "init", "--origin", ORIGIN, "--log-key", str(keys / "log.pub"),
        "--vendor-key", str(keys / "vendor.pub"),
        "--inspector-key", str(keys / "insp-a.pub"), str(keys / "insp-c.pub"), "--inspector-threshold", "2",
        "--witness-key", str(keys / "wit-a.pub"), str(keys / "wit-b.pub"), "--witness-threshold", "2",
        "--policy-key", str(keys / "regulator.pub"), "--root-version", "2", "--out", str(new_body),
    )[0] == 0  # fmt: skip
    rotation = s["tmp"] / "rotation.json"
    signers = [
        *("--key", str(keys / "insp-a.key"), "--key", str(keys / "insp-b.key")),
        *("--key", str(keys / "insp-c.key"), "--key", str(keys / "regulator.key")),
    ]
    assert run(capsys, "trust", "sign", str(new_body), *signers, "--out", str(rotation))[0] == 0
    base = ["verify", str(s["artifact"]), "--bundle", str(bundle), "--trust-root", str(s["root"])]
    assert run(capsys, *base)[0] == 0
    code, _, err = run(capsys, *base, "--rotation", str(rotation))
    assert code == 1 and "[verdict-threshold]" in err


def test_verify_refuses_another_channel_unless_named(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Case 4: after installing stable 2.0, a bundle of legacy 0.1 is refused by `verify
    --state` unless the command names the channel; the state is written only on success."""
    s = setup
    stable = _release(capsys, s, "2.0")
    legacy = _release(capsys, s, "0.1", "--channel", "legacy")
    for release in (stable, legacy):
        assert run(capsys, "submit", str(release), "--log", str(s["log"]))[0] == 0
        _approve(capsys, s, release)
    _cosign_log(s["log"], s["keys"], ["wit-a", "wit-b"])
    bundles = {}
    for name, release in (("stable", stable), ("legacy", legacy)):
        out = s["tmp"] / f"bundle-{name}.json"
        code, _, err = run(
            capsys, "bundle", str(s["artifact"]), "--release", str(release),
            "--log", str(s["log"]), "--out", str(out),
        )  # fmt: skip
        assert code == 0, err
        bundles[name] = out
    state = s["tmp"] / "state"
    base = ["verify", str(s["artifact"]), "--trust-root", str(s["root"]), "--state", str(state)]
    assert run(capsys, *base, "--bundle", str(bundles["stable"]))[0] == 0
    before = (state / "state.json").read_bytes()
    code, _, err = run(capsys, *base, "--bundle", str(bundles["legacy"]))
    assert code == 1 and "[pinning]" in err
    assert (state / "state.json").read_bytes() == before
    code, _, err = run(capsys, *base, "--bundle", str(bundles["legacy"]), "--channel", "legacy")
    assert code == 0, err
    assert json.loads((state / "state.json").read_text())["pins"] == {"av": "legacy"}

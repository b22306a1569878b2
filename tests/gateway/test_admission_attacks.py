"""Issue 10, case 2, at the gateway: who must sign is counted by distinct key, never by name.
The gateway admits through the one rule of clearance.attest.admission, and its bundles carry
the verifiable index, so an endpoint refuses what the whole log does not approve."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from clearance.attest import (
    Artifact,
    Role,
    Statement,
    Subject,
    TrustRoot,
    create_release,
    create_verdict,
    reset_channel,
    revoke_release,
)
from clearance.attest.statement import REPORT_V1
from clearance.gateway.errors import GatewayRefused
from clearance.gateway.service import Gateway
from clearance.gateway.setup import init_gateway
from clearance.index import release_key
from clearance.keys import Signer

NAMES = ("log", "vendor", "vendor2", "inspector", "inspector2", "inspector3", "regulator")


def _gateway(tmp: Path, vendor_threshold: int = 1) -> tuple[Path, dict[str, Signer]]:
    keys = {n: Signer.generate(n) for n in NAMES}
    root = TrustRoot(
        log_origin="attacks.example/log",
        log_key=keys["log"].verifier,
        vendors=Role((keys["vendor"].verifier, keys["vendor2"].verifier), vendor_threshold),
        inspectors=Role(
            tuple(keys[n].verifier for n in ("inspector", "inspector2", "inspector3")), 3
        ),
        policy=Role((keys["regulator"].verifier,), 1),
    )
    data = tmp / "gw"
    init_gateway(
        data,
        trust_root=root,
        log_signer=keys["log"],
        vendor_products={"vendor": ("agent",), "vendor2": ("agent",)},
    )
    return data, keys


def _release(tmp: Path, signers: list[Signer], version: str = "1.0.0"):  # type: ignore[no-untyped-def]
    f = tmp / f"r{version}.yar"
    f.write_text(f"rule r{version.replace('.', '_')} {{ condition: false }}\n")
    return create_release(
        product="agent",
        version=version,
        channel="stable",
        artifacts=[Artifact.from_file(f, "content")],
        signers=signers,
    )


def test_gateway_refuses_one_of_two_vendor_signatures(tmp_path: Path) -> None:
    data, keys = _gateway(tmp_path, vendor_threshold=2)
    gateway = Gateway.open(data)
    try:
        with pytest.raises(GatewayRefused, match="vendor signatures by 1 distinct key"):
            gateway.submit(_release(tmp_path, [keys["vendor"]]).to_bytes(), "vendor")
        assert gateway.log.size == 0
        both = _release(tmp_path, [keys["vendor"], keys["vendor2"]])
        assert gateway.submit(both.to_bytes(), "vendor")["log_index"] == 0
    finally:
        gateway.close()


def test_gateway_counts_signer_names_as_keys_not_thrice(tmp_path: Path) -> None:
    """Verdicts by A, by B and one by A and B are two inspectors of the three required."""
    data, keys = _gateway(tmp_path)
    gateway = Gateway.open(data)
    try:
        release = _release(tmp_path, [keys["vendor"]])
        gateway.submit(release.to_bytes(), "vendor")
        a, b = keys["inspector"], keys["inspector2"]
        for signers in ([a], [b], [a, b]):
            verdict = create_verdict(release, "approved", signers=signers)
            gateway.submit(verdict.to_bytes(), "inspector")
        row = gateway.store.release(release.sha256)
        assert row is not None and row.state == "awaiting-verdict", row
        assert "2 of 3" in row.detail
        assert gateway.store.rollout(release.sha256) is None
        assert not gateway.tuf.targets()
        with pytest.raises(GatewayRefused):
            gateway.bundles.build(release.sha256)
        record = gateway.log.index.record(release_key(release.sha256))  # type: ignore[union-attr]
        assert record is not None and record["state"] == "pending"
    finally:
        gateway.close()


def test_gateway_checkpoints_commit_to_the_index_and_honour_a_reset(tmp_path: Path) -> None:
    data, keys = _gateway(tmp_path)
    gateway = Gateway.open(data)
    try:
        high = _release(tmp_path, [keys["vendor"]], "9999")
        gateway.submit(high.to_bytes(), "vendor")
        with pytest.raises(Exception, match="not higher"):
            gateway.submit(_release(tmp_path, [keys["vendor"]], "2.0.1").to_bytes(), "vendor")
        # A reset by the vendor is refused (policy authority only), by the regulator admitted.
        by_vendor = reset_channel("agent", "stable", "2.0.0", "undo", keys["vendor"])
        with pytest.raises(GatewayRefused):
            gateway.submit(by_vendor.to_bytes(), "policy")
        gateway.submit(
            revoke_release(high, "stolen key", keys["regulator"]).to_bytes(), "policy"
        )
        gateway.submit(
            reset_channel("agent", "stable", "2.0.0", "undo", keys["regulator"]).to_bytes(),
            "policy",
        )
        gateway.submit(_release(tmp_path, [keys["vendor"]], "2.0.1").to_bytes(), "vendor")
        record = gateway.log.index.record(release_key(high.sha256))  # type: ignore[union-attr]
        assert record is not None and record["revoked"]["by"] == "release"
        from clearance.index import index_root_of
        from clearance.log import Checkpoint

        checkpoint = Checkpoint.from_note(gateway.log.checkpoint())
        assert index_root_of(checkpoint) == gateway.log.index.root()  # type: ignore[union-attr]
    finally:
        gateway.close()
    # Reopened: the index is rebuilt from the log and still matches the last checkpoint.
    again = Gateway.open(data)
    try:
        from clearance.index import index_root_of
        from clearance.log import Checkpoint

        checkpoint = Checkpoint.from_note(again.log.checkpoint())
        assert index_root_of(checkpoint) == again.log.index.root()  # type: ignore[union-attr]
    finally:
        again.close()


def _report(signer: Signer, origin: str = "attacks.example/log") -> bytes:
    predicate = {
        "origin": origin,
        "from": "2026-01-01T00:00:00Z",
        "to": "2026-01-31T23:59:59Z",
        "jurisdiction": None,
        "treeSize": 0,
        "rootHash": hashlib.sha256(b"").hexdigest(),
        "producer": signer.name,
    }
    subject = Subject("report.html", hashlib.sha256(b"<html></html>").hexdigest())
    return Statement((subject,), REPORT_V1, predicate).sign([signer]).to_bytes()


def test_attack_report_signed_by_a_key_outside_its_role_is_refused(tmp_path: Path) -> None:
    """A vendor may not log a report (it is the party a report judges); the regulator and
    the inspectors may, and the gateway indexes what they log."""
    data, keys = _gateway(tmp_path)
    gateway = Gateway.open(data)
    try:
        with pytest.raises(GatewayRefused, match="report must be submitted with"):
            gateway.submit(_report(keys["vendor"]), "vendor")
        with pytest.raises(GatewayRefused, match="inspector or policy authority"):
            gateway.submit(_report(keys["vendor"]), "policy")
        with pytest.raises(GatewayRefused, match=r"covers log 'elsewhere\.example'"):
            gateway.submit(_report(keys["regulator"], "elsewhere.example"), "policy")
        assert gateway.log.size == 0
        receipt = gateway.submit(_report(keys["regulator"]), "policy")
        assert receipt["kind"] == "report" and receipt["log_index"] == 0
        assert gateway.submit(_report(keys["inspector2"]), "inspector")["log_index"] == 1
        assert gateway.reads.entries_of("report") == [0, 1]
    finally:
        gateway.close()

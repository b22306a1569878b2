"""k-of-n inspectors: a release is approved only when the trust root's threshold of distinct
inspector keys approved it; one rejection rejects it."""

from __future__ import annotations

from pathlib import Path

from clearance.attest import Artifact, Role, TrustRoot, create_release, create_verdict
from clearance.gateway.service import Gateway
from clearance.gateway.setup import init_gateway
from clearance.keys import Signer


def _world(tmp: Path) -> tuple[Path, dict[str, Signer], dict[str, str]]:
    keys = {n: Signer.generate(n) for n in ("log", "vendor", "insp-a", "insp-b", "insp-c")}
    root = TrustRoot(
        log_origin="k-of-n.example/log",
        log_key=keys["log"].verifier,
        vendors=Role((keys["vendor"].verifier,), 1),
        inspectors=Role(tuple(keys[n].verifier for n in ("insp-a", "insp-b", "insp-c")), 2),
    )
    data = tmp / "gw"
    tokens = init_gateway(
        data, trust_root=root, log_signer=keys["log"], vendor_products={"vendor": ("agent",)}
    )
    return data, keys, tokens


def _release(tmp: Path, vendor: Signer, version: str):  # type: ignore[no-untyped-def]
    f = tmp / f"r{version}.yar"
    f.write_text(f"rule r{version.replace('.', '_')} {{ condition: false }}\n")
    return create_release(
        product="agent",
        version=version,
        channel="stable",
        artifacts=[Artifact.from_file(f, "content")],
        signers=vendor,
    )


def test_two_of_three_inspectors(tmp_path: Path) -> None:
    data, keys, _ = _world(tmp_path)
    gateway = Gateway.open(data)
    try:
        good = _release(tmp_path, keys["vendor"], "1.0.0")
        gateway.submit(good.to_bytes(), "vendor")
        gateway.submit(
            create_verdict(good, "approved", signers=keys["insp-a"]).to_bytes(), "inspector"
        )
        row = gateway.store.release(good.sha256)
        assert row is not None and row.state == "awaiting-verdict" and "1 of 2" in row.detail
        assert gateway.store.rollout(good.sha256) is None
        # The same inspector approving twice (a new verdict) still counts once.
        again = create_verdict(good, "approved", signers=keys["insp-a"], note="again")
        gateway.submit(again.to_bytes(), "inspector")
        assert gateway.store.release(good.sha256).state == "awaiting-verdict"  # type: ignore[union-attr]
        gateway.submit(
            create_verdict(good, "approved", signers=keys["insp-b"]).to_bytes(), "inspector"
        )
        assert gateway.store.release(good.sha256).state == "approved"  # type: ignore[union-attr]
        assert gateway.store.rollout(good.sha256) is not None

        bad = _release(tmp_path, keys["vendor"], "1.1.0")
        gateway.submit(bad.to_bytes(), "vendor")
        for name, decision in (
            ("insp-a", "approved"),
            ("insp-b", "approved"),
            ("insp-c", "rejected"),
        ):
            gateway.submit(
                create_verdict(bad, decision, signers=keys[name]).to_bytes(), "inspector"
            )
        row = gateway.store.release(bad.sha256)
        assert row is not None and row.state == "rejected" and "insp-c" in row.detail
        # It had reached the approval threshold first: the rollout under way is halted, logged.
        assert gateway.store.rollout(bad.sha256)["status"] == "halted"  # type: ignore[index]
        events = [t["event"] for _, t in gateway.store.transitions(bad.sha256)]
        assert events == ["started", "halted"]
    finally:
        gateway.close()

"""End to end over HTTP: submit, roles, receipts, verdict, rollout, policy, withholding."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from clearance.attest import Statement, Subject, create_policy, create_verdict
from clearance.errors import BadInput, Refused
from clearance.gateway.errors import GatewayRefused
from clearance.keys import Note, Signer
from clearance.log import open_checkpoint
from clearance.log.merkle import leaf_hash, verify_inclusion
from clearance.policy import ENTITLEMENT_PREDICATE_TYPE, Entitlement
from clearance.policy.example import us_restriction_policy

from .support import Live, device_client, entitle, make_release


def _wait(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def _entitlement(
    live: Live,
    customer: str,
    jurisdiction: str,
    start: str,
    end: str,
    signer: Signer | None = None,
    client_keys: Sequence[str] | None = None,
) -> bytes:
    ent = Entitlement.from_dict(
        {
            "customer": customer,
            "jurisdiction": jurisdiction,
            "product": live.world.product,
            "start": start,
            "end": end,
            "client_keys": list(client_keys or [live.world.client.verifier.to_string()]),
        }
    )
    body = ent.to_dict()
    import hashlib

    from clearance.attest import canonical_json

    subject = Subject(customer, hashlib.sha256(canonical_json(body)).hexdigest())
    return (
        Statement((subject,), ENTITLEMENT_PREDICATE_TYPE, body)
        .sign([signer or live.world.vendor])
        .to_bytes()
    )


def _approve(live: Live, tmp_path: Path, version: str) -> str:
    env, content = make_release(live.world, tmp_path, version)
    with live.client("vendor") as vendor:
        vendor.submit(env.to_bytes())
        r = httpx.put(
            f"{live.url}/api/v1/artifacts/{receipt_artifact(env)}",
            content=content,
            headers={"Authorization": f"Bearer {live.world.token('vendor')}"},
        )
        assert r.status_code == 201, r.text
    verdict = create_verdict(env, "approved", signers=live.world.inspector)
    with live.client("inspector") as inspector:
        inspector.submit(verdict.to_bytes())
    return env.sha256


def receipt_artifact(env: Any) -> str:
    from clearance.attest import Release

    return Release.from_envelope(env).artifacts[0].sha256


def test_submission_receipt_proves_inclusion(live: Live, tmp_path: Path) -> None:
    env, _ = make_release(live.world, tmp_path, "1.0.0")
    with live.client("vendor") as vendor:
        receipt = vendor.submit(env.to_bytes())
        again = vendor.submit(env.to_bytes())
    assert receipt["kind"] == "release" and receipt["sha256"] == env.sha256
    assert again["duplicate"] and again["log_index"] == receipt["log_index"]
    checkpoint, _ = open_checkpoint(
        receipt["checkpoint"].encode(), live.world.log.verifier, live.world.origin
    )
    verify_inclusion(
        receipt["log_index"],
        checkpoint.size,
        leaf_hash(env.to_bytes()),
        [bytes.fromhex(h) for h in receipt["inclusion_proof"]],
        checkpoint.root_hash,
    )
    # The same checkpoint is served as a static, short-lived file.
    r = httpx.get(f"{live.url}/log/checkpoint")
    assert r.status_code == 200 and "max-age=5" in r.headers["cache-control"]
    Note.from_bytes(r.content)


def test_roles_and_signatures_are_enforced(live: Live, tmp_path: Path) -> None:
    env, _ = make_release(live.world, tmp_path, "1.0.0")
    with live.client(None) as anonymous, pytest.raises(GatewayRefused, match="token"):
        anonymous.submit(env.to_bytes())
    with live.client("inspector") as inspector, pytest.raises(GatewayRefused, match="vendor"):
        inspector.submit(env.to_bytes())
    # Signed by a key the trust root does not know (the policy key) -> refused.
    from clearance.attest import Artifact, create_release

    art = tmp_path / "x.yar"
    art.write_bytes(b"rule x { condition: false }")
    forged = create_release(
        product=live.world.product,
        version="9.9.9",
        channel="stable",
        artifacts=[Artifact.from_file(art, "content")],
        signers=live.world.policy,
    )
    with live.client("vendor") as vendor:
        with pytest.raises(GatewayRefused):
            vendor.submit(forged.to_bytes())
        other, _ = make_release(live.world, tmp_path, "1.0.0", product="someone-elses-product")
        with pytest.raises(GatewayRefused, match="may not release"):
            vendor.submit(other.to_bytes())
        with pytest.raises(BadInput, match=r"not valid JSON|DSSE"):
            vendor.submit(b"{not json")
        with pytest.raises(BadInput, match="limit"):
            vendor.submit(b" " * 70_000)
    # A verdict for a release that is not in the log is refused.
    verdict = create_verdict(env, "approved", signers=live.world.inspector)
    with live.client("inspector") as inspector, pytest.raises(Refused, match="not in the log"):
        inspector.submit(verdict.to_bytes())
    assert httpx.get(f"{live.url}/api/v1/health").json()["log_size"] == 0


def test_approval_rolls_out_ring_by_ring_and_publishes(live: Live, tmp_path: Path) -> None:
    sha = _approve(live, tmp_path, "1.0.0")
    with live.client(None) as anyone:
        status = _wait(
            lambda: (
                (s := anyone.status(sha))["rollout"] and s["rollout"]["status"] == "complete" and s
            )
        )
    events = [t["event"] for t in status["transitions"]]
    assert events == ["started", "advanced", "advanced", "completed"]
    assert all(isinstance(t["log_index"], int) for t in status["transitions"])
    assert status["release"]["state"] == "approved"
    # Published to TUF once every ring is open.
    _wait(lambda: httpx.get(f"{live.url}/tuf/metadata/2.targets.json").status_code == 200)
    targets = httpx.get(f"{live.url}/tuf/metadata/2.targets.json").json()["signed"]["targets"]
    ((path, target),) = targets.items()
    assert path == f"{live.world.product}/1.0.0/rules.yar"
    assert target["custom"]["clearance"]["release_sha256"] == sha
    # OpenAPI and dashboard are served.
    assert "/api/v1/submissions" in httpx.get(f"{live.url}/openapi.json").json()["paths"]
    page = httpx.get(f"{live.url}/")
    assert page.status_code == 200 and "1.0.0" in page.text


def test_policy_withholds_with_a_logged_reason(live: Live, tmp_path: Path) -> None:
    sha = _approve(live, tmp_path, "1.0.0")
    with live.client(None) as anyone:
        _wait(lambda: anyone.status(sha)["rollout"]["status"] == "complete")
    us_device = entitle(live, "us-hospital", "US")
    de_device = entitle(live, "de-city", "DE")
    policy = us_restriction_policy()
    envelope = create_policy(policy.to_dict(), live.world.policy, name=policy.name)
    with live.client("vendor") as vendor, pytest.raises(GatewayRefused, match="policy"):
        vendor.submit(envelope.to_bytes())
    with live.client("policy") as authority:
        policy_receipt = authority.submit(envelope.to_bytes())
    with device_client(live, us_device) as us_client, device_client(live, de_device) as de_client:
        # Today is long after the 2024 cut-off: the US customer is refused, naming the policy.
        us = us_client.latest(live.world.product, "stable", "us-hospital")
        assert us["withheld"] and us["offered"] is None
        assert us["reason"]["rule"] == "no-updates"
        assert us["reason"]["policy_log_index"] == policy_receipt["log_index"]
        de = de_client.latest(live.world.product, "stable", "de-city")
        assert not de["withheld"] and de["offered"]["sha256"] == sha
        data = de_client.download(sha, "rules.yar", "de-city")
        assert b"demo_eicar_test_file" in data
        with pytest.raises(Refused, match=r"no .*updates"):
            us_client.download(sha, "rules.yar", "us-hospital")
        ents = us_client.entitlements("us-hospital")
        assert ents["decisions_now"][live.world.product]["allowed"] is False
    with live.client("operator") as operator:
        nobody = operator.latest(live.world.product, "stable", "stranger")
        assert nobody["reason"]["rule"] == "no-entitlement"
    # Entitlements are private: nobody reads them without the customer's device key.
    assert httpx.get(f"{live.url}/api/v1/entitlements/us-hospital").status_code in (401, 403)


def test_tiles_and_metadata_have_the_right_cache_headers(live: Live) -> None:
    # Raw entries appended straight to the log: only their tiles matter here.
    live.server.gateway.log.append([b"entry %d" % n for n in range(300)])
    full = httpx.get(f"{live.url}/log/tile/0/000")
    assert full.status_code == 200 and len(full.content) == 256 * 32
    assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
    entries = httpx.get(f"{live.url}/log/tile/entries/000")
    assert entries.status_code == 200 and "immutable" in entries.headers["cache-control"]
    partial = httpx.get(f"{live.url}/log/tile/0/001.p/44")
    assert partial.status_code == 200 and len(partial.content) == 44 * 32
    assert partial.headers["cache-control"] == "public, max-age=5, must-revalidate"
    checkpoint = httpx.get(f"{live.url}/log/checkpoint")
    assert checkpoint.headers["cache-control"] == "public, max-age=5, must-revalidate"
    assert checkpoint.headers["content-type"].startswith("text/plain")
    assert httpx.get(f"{live.url}/tuf/metadata/timestamp.json").headers["cache-control"] == (
        "no-cache"
    )
    root = httpx.get(f"{live.url}/tuf/metadata/1.root.json")
    assert "immutable" in root.headers["cache-control"]
    for bad in (
        "/log/tile/0/999",
        "/log/../gateway.json",
        "/log/tile/0/..%2f..%2fx",
        "/tuf/metadata/.hidden",
        "/tuf/metadata/../keys/root.pem",
    ):
        assert httpx.get(f"{live.url}{bad}").status_code == 404, bad
    head = httpx.head(f"{live.url}/log/tile/0/000")
    assert head.status_code == 200 and head.content == b""


def test_version_must_increase_within_a_channel(live: Live, tmp_path: Path) -> None:
    newer, _ = make_release(live.world, tmp_path, "2.0.0")
    older, _ = make_release(live.world, tmp_path, "1.9.9")
    with live.client("vendor") as vendor:
        vendor.submit(newer.to_bytes())
        with pytest.raises(Refused, match=r"not higher than the logged 2\.0\.0"):
            vendor.submit(older.to_bytes())

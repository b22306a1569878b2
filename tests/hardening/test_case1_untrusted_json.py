"""Issue 12, case 1: a 5,000-digit integer anywhere in JSON, and a deeply nested state.json.

Each parser must refuse cleanly (a typed error naming the input); the gateway
answers 400, not 500; the auditor reports the poisoned entry and goes on to
find the forgery behind it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from audit.helpers import World as AuditWorld
from clearance.attest import Envelope, sign_envelope
from clearance.attest.statement import PAYLOAD_TYPE
from clearance.audit import AuditOptions, DirectoryArtifacts, audit_log, log_source
from clearance.client import BundleVerifier, MalformedBundleError
from clearance.client.errors import StateError
from clearance.client.state import STATE_FILE, ClientState
from clearance.keys import Signer
from client.world import World as ClientWorld
from gateway.support import Live

BIG = b"9" * 5000


def _poison(document: bytes) -> bytes:
    """``document`` (a JSON object) with one more member holding a 5,000-digit integer."""
    assert document.endswith(b"}")
    return document[:-1] + b',"n":' + BIG + b"}"


def test_case1_5000_digit_integer_in_bundle_is_a_clean_refusal(tmp_path: Path) -> None:
    world = ClientWorld(tmp_path)
    _, _, index = world.publish("1.0")
    verifier = BundleVerifier(world.trust_root, world.clock)
    data = world.bundle(index).to_bytes()
    with pytest.raises(MalformedBundleError, match="integer has 5000 characters"):
        verifier.verify("0" * 64, _poison(data))


def _big_statement_envelope(signer: Signer) -> Envelope:
    statement = (
        b'{"_type":"https://in-toto.io/Statement/v1","predicate":{"n":'
        + BIG
        + b'},"predicateType":"https://clearance.dev/release/v1","subject":[]}'
    )
    return sign_envelope(PAYLOAD_TYPE, statement, [signer])


def test_case1_5000_digit_integer_in_submission_is_http_400(live: Live) -> None:
    vendor = live.world.vendor
    headers = {"authorization": f"Bearer {live.world.token('vendor')}"}
    outer = _poison(_big_statement_envelope(vendor).to_bytes())
    for body in (_big_statement_envelope(vendor).to_bytes(), outer):
        response = httpx.post(
            f"{live.url}/api/v1/submissions", content=body, headers=headers, timeout=30
        )
        assert response.status_code == 400, response.text
        assert "5000 characters" in response.text


def test_case1_5000_digit_integer_in_log_entry_auditor_reports_it_and_goes_on(
    tmp_path: Path,
) -> None:
    world = AuditWorld(tmp_path / "w")
    stranger = Signer.generate("stranger.example")
    raw_entry = b'{"payloadType":"x","payload":"","signatures":[],"n":' + BIG + b"}"
    signed_entry = _big_statement_envelope(world.vendor).to_bytes()
    forged = world.release("9.9.9", signer=stranger)
    world.append(raw_entry, signed_entry, forged.to_bytes())
    options = AuditOptions(
        trust_root=world.trust_root(),
        source=log_source(world.logdir, None),
        state_dir=tmp_path / "state",
        artifacts=[DirectoryArtifacts(world.artifacts)],
    )
    report = audit_log(options)
    by_index = {(f.entry_index, f.rule_id) for f in report.findings}
    assert (0, "audit.entry-unrecognized") in by_index
    assert (1, "audit.entry-unrecognized") in by_index
    assert (2, "audit.bad-signature") in by_index  # the forgery behind them is found
    assert "5000 characters" in " ".join(f.message for f in report.findings)
    assert report.audited_to == 3
    # A later forgery is found too: the poisoned entries never stop the auditor again.
    world.append(world.release("9.9.10", signer=stranger).to_bytes())
    again = audit_log(options)
    assert again.audited_to == 4
    assert {(f.entry_index, f.rule_id) for f in again.findings} == {(3, "audit.bad-signature")}


def test_case1_deeply_nested_state_json_is_a_clean_refusal(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_bytes(b'{"installed":' + b"[" * 50_000 + b"]" * 50_000 + b"}")
    with pytest.raises(StateError, match="nested deeper than"):
        ClientState.load(tmp_path)
    (tmp_path / STATE_FILE).write_bytes(b'{"installed":{"x":' + BIG + b"}}")
    with pytest.raises(StateError, match="5000 characters"):
        ClientState.load(tmp_path)


def test_case1_parsers_share_the_limits() -> None:
    envelope = {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(b"{}").decode()}
    data = json.dumps(envelope).encode()
    with pytest.raises(Exception, match="5000 characters") as info:
        Envelope.from_bytes(_poison(data))
    assert not isinstance(info.value, ValueError)

"""Envelope, statement and trust-root parsers: arbitrary input is bad input, never a crash."""

from __future__ import annotations

import contextlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from clearance.attest import Envelope, Release, TrustRoot, Verdict, sign_envelope
from clearance.attest.statement import PAYLOAD_TYPE
from clearance.errors import BadInput
from clearance.keys import Signer

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=5),
    max_leaves=25,
)
_SIGNER = Signer.generate("fuzz")


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=300), _json.map(lambda v: json.dumps(v).encode())))
def test_envelope_and_trust_root_parsers(data: bytes) -> None:
    for parse in (Envelope.from_bytes, TrustRoot.from_bytes):
        with contextlib.suppress(BadInput):
            parse(data)


_KEYS = st.sampled_from(
    ["product", "version", "channel", "artifacts", "previous", "endpoints", "notes", "builds",
     "decision", "release", "findings", "sarif", "engines", "inspectedAt", "inspector", "note"]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.one_of(_json, st.dictionaries(_KEYS, _json, max_size=16)))
def test_statement_views(value: object) -> None:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "x", "digest": {"sha256": "0" * 64}}],
        "predicateType": "https://clearance.dev/release/v1",
        "predicate": value,
    }
    for predicate_type, view in (
        ("https://clearance.dev/release/v1", Release.from_envelope),
        ("https://clearance.dev/verdict/v1", Verdict.from_envelope),
    ):
        statement["predicateType"] = predicate_type
        env = sign_envelope(PAYLOAD_TYPE, json.dumps(statement).encode(), [_SIGNER])
        with contextlib.suppress(BadInput):
            view(env)


_VALID_RELEASE = {
    "product": "av",
    "version": "1.0",
    "channel": "stable",
    "artifacts": [{"name": "x", "kind": "content", "size": 1}],
    "previous": None,
    "endpoints": ["a.example"],
    "notes": "",
    "builds": {},
}
_VALID_VERDICT = {
    "decision": "approved",
    "release": {"product": "av", "version": "1.0", "channel": "stable"},
    "findings": {"content.overbroad": {"low": 1}},
    "sarif": None,
    "engines": {"yara-x": "1"},
    "inspectedAt": "2026-11-22T03:00:00Z",
    "inspector": "i",
    "note": "",
}


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_one_field_replaced(data: st.DataObject) -> None:
    for predicate_type, valid, view in (
        ("https://clearance.dev/release/v1", _VALID_RELEASE, Release.from_envelope),
        ("https://clearance.dev/verdict/v1", _VALID_VERDICT, Verdict.from_envelope),
    ):
        predicate = json.loads(json.dumps(valid))
        key = data.draw(st.sampled_from(sorted(predicate)))
        predicate[key] = data.draw(_json)
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "x", "digest": {"sha256": "0" * 64}}],
            "predicateType": predicate_type,
            "predicate": predicate,
        }
        env = sign_envelope(PAYLOAD_TYPE, json.dumps(statement).encode(), [_SIGNER])
        with contextlib.suppress(BadInput):
            view(env)

"""Fuzzing the bundle parser and verifier: malformed input is always a clean refusal."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearance.client import Bundle, BundleVerifier, MalformedBundleError, VerificationError
from client.world import World

RULES = b"rule a { condition: true }"
DIGEST = hashlib.sha256(RULES).hexdigest()


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> tuple[BundleVerifier, bytes]:
    world = World(tmp_path_factory.mktemp("fuzz"))
    _, _, idx = world.publish("1.0")
    verifier = BundleVerifier(world.trust_root, world.clock)
    data = world.bundle(idx).to_bytes()
    verifier.verify(DIGEST, data)  # the unmutated bundle verifies
    return verifier, data


def _check(verifier: BundleVerifier, data: bytes) -> None:
    # Every refusal is a typed verification error, never a crash or another exception.
    with contextlib.suppress(VerificationError):
        verifier.verify(DIGEST, data)


_FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_FUZZ
@given(st.data())
def test_byte_mutations(valid: tuple[BundleVerifier, bytes], data: st.DataObject) -> None:
    verifier, good = valid
    buf = bytearray(good)
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        pos = data.draw(st.integers(0, max(0, len(buf) - 1)))
        if op == "flip" and buf:
            buf[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "delete" and buf:
            del buf[pos : pos + data.draw(st.integers(1, 16))]
        elif op == "insert":
            buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del buf[pos:]
    _check(verifier, bytes(buf))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@_FUZZ
@given(st.data())
def test_structural_mutations(valid: tuple[BundleVerifier, bytes], data: st.DataObject) -> None:
    verifier, good = valid
    doc: Any = json.loads(good)
    # Replace one field somewhere in the tree with arbitrary JSON.
    node = doc
    path = []
    while isinstance(node, (dict, list)) and node and data.draw(st.booleans()):
        key = data.draw(
            st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node))))
        )
        path.append((node, key))
        node = node[key]
    if path:
        parent, key = path[-1]
        parent[key] = data.draw(_json)
    else:
        doc = data.draw(_json)
    _check(verifier, json.dumps(doc).encode())


@_FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(valid: tuple[BundleVerifier, bytes], blob: bytes) -> None:
    with pytest.raises(MalformedBundleError):
        Bundle.from_bytes(blob)
    _check(valid[0], blob)


def test_deep_nesting_is_refused_cleanly(valid: tuple[BundleVerifier, bytes]) -> None:
    with pytest.raises(MalformedBundleError):
        Bundle.from_bytes(b"[" * 100000 + b"]" * 100000)


def test_nested_envelope_garbage(valid: tuple[BundleVerifier, bytes], tmp_path: Path) -> None:
    verifier, good = valid
    doc = json.loads(good)
    import base64

    for payload in (b"{}", b"[", b'{"payloadType": "x", "payload": "e30="}', "\u00e9".encode()):
        doc["release"]["envelope"] = base64.b64encode(payload).decode()
        with pytest.raises(VerificationError):
            verifier.verify(DIGEST, json.dumps(doc).encode())

"""Arbitrary request bodies: the witness answers with one of its typed refusals, never crashes,
and never cosigns what it should not."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearance.errors import BadInput, Refused
from clearance.keys import Signer
from clearance.witness import AddCheckpointRequest, LogConfig, Witness, WitnessState
from witness.helpers import MemoryLog

_LOG = MemoryLog("example.org/log", Signer.generate("example.org/log"))
_LOG.append(b"a", b"b", b"c")
_GOOD = AddCheckpointRequest(0, (), _LOG.checkpoint().to_bytes()).to_bytes()


def _witness(directory: Path) -> Witness:
    return Witness(
        Signer.generate("w.example"),
        [LogConfig(_LOG.origin, (_LOG.signer.verifier,))],
        WitnessState.open(directory),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=400)
    | st.builds(
        lambda b, i: _GOOD[:i] + b + _GOOD[i:], st.binary(max_size=8), st.integers(0, len(_GOOD))
    )
)
def test_any_body_is_a_clean_refusal_or_a_valid_cosignature(body: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        w = _witness(Path(tmp))
        try:
            w.add_checkpoint(body)
        except (BadInput, Refused):
            return
        # Accepted: it must be exactly a checkpoint the log signed.
        assert b"\n\n" in body
        request = AddCheckpointRequest.from_bytes(body)
        assert request.old_size == 0
        latest = w.state.latest(_LOG.origin)
        assert latest is not None and latest.root_hash == _LOG.root(latest.size)

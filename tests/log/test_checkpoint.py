"""C2SP tlog-checkpoint: format, signatures, cosignatures, and malformed input."""

from __future__ import annotations

import base64

import pytest

from clearance.keys import Note, Signer, cosign, verify_cosignature
from clearance.log import (
    Checkpoint,
    CheckpointFormatError,
    CheckpointSignatureError,
    open_checkpoint,
    sign_checkpoint,
)
from clearance.log.merkle import EMPTY_ROOT

ROOT = bytes(range(32))


def test_text_round_trip_with_extensions() -> None:
    cp = Checkpoint("example.com/log", 42, ROOT, ("ext one", "ext two"))
    text = cp.to_text()
    assert text == f"example.com/log\n42\n{base64.b64encode(ROOT).decode()}\next one\next two\n"
    assert Checkpoint.from_text(text) == cp
    assert Checkpoint.from_bytes(cp.to_bytes()) == cp


def test_empty_tree_checkpoint() -> None:
    cp = Checkpoint("o", 0, EMPTY_ROOT)
    assert cp.to_text() == "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("example.com/log\n42\n", "expected origin, size and root"),
        ("example.com/log\n42\n" + base64.b64encode(ROOT).decode(), "newline"),
        ("example.com/log\n042\n" + base64.b64encode(ROOT).decode() + "\n", "decimal"),
        ("example.com/log\n-1\n" + base64.b64encode(ROOT).decode() + "\n", "decimal"),
        ("example.com/log\n4 2\n" + base64.b64encode(ROOT).decode() + "\n", "decimal"),
        ("example.com/log\n１\n" + base64.b64encode(ROOT).decode() + "\n", "decimal"),
        ("example.com/log\n" + "9" * 20 + "\n" + base64.b64encode(ROOT).decode() + "\n", "decimal"),
        ("example.com/log\n1\nnot base64!\n", "base64"),
        ("example.com/log\n1\n" + base64.b64encode(ROOT[:31]).decode() + "\n", "32 bytes"),
        ("\n1\n" + base64.b64encode(ROOT).decode() + "\n", "empty"),
        ("example.com/log\n1\n" + base64.b64encode(ROOT).decode() + "\n\n", "blank line"),
    ],
)
def test_malformed_checkpoints(text: str, problem: str) -> None:
    with pytest.raises(CheckpointFormatError, match=problem):
        Checkpoint.from_text(text)


def test_signed_checkpoint_opens_with_the_log_key() -> None:
    signer = Signer.generate("example.com/log")
    cp = Checkpoint("example.com/log", 7, ROOT)
    note = sign_checkpoint(cp, signer)
    opened, opened_note = open_checkpoint(note.to_bytes(), signer.verifier)
    assert opened == cp
    assert opened_note == note


def test_wrong_key_forged_and_truncated_checkpoints() -> None:
    signer = Signer.generate("example.com/log")
    data = sign_checkpoint(Checkpoint("example.com/log", 7, ROOT), signer).to_bytes()
    other = Signer.generate("example.com/log")
    with pytest.raises(CheckpointSignatureError, match="not signed by any known key"):
        open_checkpoint(data, other.verifier)
    forged = data.replace(b"\n7\n", b"\n8\n")
    with pytest.raises(CheckpointSignatureError, match="invalid signature"):
        open_checkpoint(forged, signer.verifier)
    for cut in (10, len(data) // 2, len(data) - 3):
        with pytest.raises((CheckpointFormatError, CheckpointSignatureError)):
            open_checkpoint(data[:cut], signer.verifier)
    with pytest.raises(CheckpointFormatError, match="no signature block"):
        open_checkpoint(b"example.com/log\n7\n" + base64.b64encode(ROOT) + b"\n", signer.verifier)


def test_origin_must_match() -> None:
    signer = Signer.generate("logkey")
    data = sign_checkpoint(Checkpoint("example.com/log", 1, ROOT), signer).to_bytes()
    with pytest.raises(CheckpointSignatureError, match="origin"):
        open_checkpoint(data, signer.verifier)  # default origin: the key name
    cp, _ = open_checkpoint(data, signer.verifier, origin="example.com/log")
    assert cp.size == 1


def test_cosignatures_ride_along_and_verify() -> None:
    signer = Signer.generate("example.com/log")
    witness = Signer.generate("witness.example")
    note = sign_checkpoint(Checkpoint("example.com/log", 3, ROOT), signer)
    cosigned = note.with_signatures([cosign(note.text, witness, 1_700_000_000)])
    cp, opened = open_checkpoint(cosigned.to_bytes(), signer.verifier)
    assert cp.size == 3
    assert len(opened.signatures) == 2
    assert verify_cosignature(opened.text, opened.signatures[1], witness.verifier) == 1_700_000_000
    assert Note.from_bytes(cosigned.to_bytes()) == cosigned

"""Signed-note keys and notes against the Go sumdb/note vectors (shared/vectors/README.md)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from clearance.cli import main
from clearance.keys import (
    KeyFormatError,
    Note,
    NoteFormatError,
    SignatureError,
    Signer,
    Verifier,
    cosign,
    load_signer,
    load_verifier,
    sign_note,
    verify_cosignature,
    verify_note,
)

GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqf"
    "qdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_go_vector_keys_round_trip() -> None:
    signer = Signer.parse(GO_SKEY)
    assert signer.to_string() == GO_SKEY
    assert signer.verifier.to_string() == GO_VKEY
    assert Verifier.parse(GO_VKEY).key_id == 0xC74F20A3


def test_go_vector_signature_is_reproduced_and_verifies() -> None:
    note = sign_note(GO_TEXT, [Signer.parse(GO_SKEY)])
    assert note.to_bytes().decode() == GO_TEXT + "\n" + GO_SIG
    parsed = Note.from_bytes((GO_TEXT + "\n" + GO_SIG).encode())
    assert verify_note(parsed, [Verifier.parse(GO_VKEY)]) == [Verifier.parse(GO_VKEY)]


def test_forged_signature_by_known_key_is_refused() -> None:
    other = Signer.generate("PeterNeumann")
    forged = Note(GO_TEXT, sign_note(GO_TEXT, [other]).signatures)
    # Same name, different key id: not a signature by the known key at all.
    with pytest.raises(SignatureError, match="not signed by any known key"):
        verify_note(forged, [Verifier.parse(GO_VKEY)])
    tampered = Note.from_bytes((GO_TEXT.replace("answer", "Answer") + "\n" + GO_SIG).encode())
    with pytest.raises(SignatureError, match="invalid signature"):
        verify_note(tampered, [Verifier.parse(GO_VKEY)])


def test_unknown_signatures_are_kept() -> None:
    a, b = Signer.generate("a"), Signer.generate("b")
    note = sign_note("hello\n", [a, b])
    again = Note.from_bytes(note.to_bytes())
    assert again == note
    assert verify_note(again, [b.verifier]) == [b.verifier]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"no newline", "blank line"),
        (b"text\n\n", "signature"),
        (b"text\n\nnot a signature\n", "does not start"),
        (b"text\n\n\xe2\x80\x94 name !!!\n", "invalid base64"),
        (b"\xff\xfe\n\n", "UTF-8"),
        (b"a\x01b\n\n\xe2\x80\x94 n AAAAAAAA\n", "control character"),
    ],
)
def test_malformed_notes_are_clear_errors(raw: bytes, problem: str) -> None:
    with pytest.raises(NoteFormatError, match=problem):
        Note.from_bytes(raw)


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong hash
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+AhpjZQ==",
    ],
)
def test_bad_verifier_keys(vkey: str) -> None:
    with pytest.raises(KeyFormatError):
        Verifier.parse(vkey)


def test_cosignature_round_trip_and_tamper() -> None:
    witness = Signer.generate("witness.example")
    text = "example.com/log\n3\nq6vz3XqLNDfg8IAjo+PB1bN3KqE6u1P8BqfCL0AAvLc=\n"
    sig = cosign(text, witness, 1_700_000_000)
    assert verify_cosignature(text, sig, witness.verifier) == 1_700_000_000
    # The cosignature key id is that of type 0x04, not of the plain key.
    assert sig.key_id != witness.verifier.key_id
    with pytest.raises(SignatureError):
        verify_cosignature(text.replace("3", "4", 1), sig, witness.verifier)


def test_keys_generate_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "generate", "vendor.example", "--dir", str(tmp_path)]) == 0
    private, public = tmp_path / "vendor.example.key", tmp_path / "vendor.example.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert load_signer(private).verifier == load_verifier(public)
    capsys.readouterr()
    assert main(["keys", "generate", "vendor.example", "--dir", str(tmp_path)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert main(["keys", "generate", "bad+name", "--dir", str(tmp_path)]) == 2

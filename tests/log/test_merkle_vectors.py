"""RFC 9162 proofs against the transparency-dev/merkle vectors and random trees."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearance.log import merkle

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "merkle"


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _cases(kind: str) -> list[Any]:
    files = sorted((VECTORS / kind).glob("*/*.json"))
    assert files, f"no {kind} vectors under {VECTORS}"
    return [pytest.param(json.loads(f.read_text()), id=f"{f.parent.name}/{f.stem}") for f in files]


@pytest.mark.parametrize("vector", _cases("inclusion"))
def test_inclusion_vectors(vector: dict[str, Any]) -> None:
    proof = [_b64(p) for p in vector["proof"] or []]
    call = lambda: merkle.verify_inclusion(  # noqa: E731
        vector["leafIdx"], vector["treeSize"], _b64(vector["leafHash"]), proof, _b64(vector["root"])
    )
    if vector["wantErr"]:
        with pytest.raises(merkle.ProofError):
            call()
    else:
        call()


@pytest.mark.parametrize("vector", _cases("consistency"))
def test_consistency_vectors(vector: dict[str, Any]) -> None:
    proof = [_b64(p) for p in vector["proof"] or []]
    call = lambda: merkle.verify_consistency(  # noqa: E731
        vector["size1"], vector["size2"], _b64(vector["root1"]), _b64(vector["root2"]), proof
    )
    if vector["wantErr"]:
        with pytest.raises(merkle.ProofError):
            call()
    else:
        call()


def _stored(leaves: list[bytes]) -> merkle.HashReader:
    def read(level: int, index: int) -> bytes:
        width = 1 << level
        chunk = leaves[index * width : (index + 1) * width]
        assert len(chunk) == width, "asked for an incomplete subtree"
        return merkle.root_from_leaf_hashes(chunk)

    return read


@settings(max_examples=150, deadline=None)
@given(size=st.integers(1, 600), data=st.data())
def test_generated_proofs_verify(size: int, data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    read = _stored(leaves)
    root = merkle.tree_root(size, read)
    assert root == merkle.root_from_leaf_hashes(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, read)
    merkle.verify_inclusion(index, size, leaves[index], proof, root)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(index, size, merkle.leaf_hash(b"other"), proof, root)
    old = data.draw(st.integers(1, size))
    old_root = merkle.root_from_leaf_hashes(leaves[:old])
    cproof = merkle.consistency_proof(old, size, read)
    merkle.verify_consistency(old, size, old_root, root, cproof)
    if old < size:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(old, size, merkle.leaf_hash(b"x"), root, cproof)


@settings(max_examples=100, deadline=None)
@given(size=st.integers(1, 700), data=st.data())
def test_proofs_computed_together_are_each_leafs_own(size: int, data: st.DataObject) -> None:
    """A batch's receipts share subtree hashes: each proof is still exactly its leaf's
    (any indices, repeated, in any order), and verifies under the root."""
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    read = _stored(leaves)
    root = merkle.root_from_leaf_hashes(leaves)
    indices = data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=40))
    proofs = merkle.inclusion_proofs(indices, size, read)
    assert proofs == [merkle.inclusion_proof(i, size, read) for i in indices]
    for index, proof in zip(indices, proofs, strict=True):
        merkle.verify_inclusion(index, size, leaves[index], proof, root)
    with pytest.raises(merkle.ProofRequestError):
        merkle.inclusion_proofs([0, size], size, read)


def test_proof_requests_past_the_size_are_bad_input() -> None:
    read = _stored([merkle.leaf_hash(b"a")])
    with pytest.raises(merkle.ProofRequestError):
        merkle.inclusion_proof(1, 1, read)
    with pytest.raises(merkle.ProofRequestError):
        merkle.consistency_proof(2, 1, read)


def test_go_tlog_record_hash_vector() -> None:
    # golang.org/x/mod/sumdb/tlog: RecordHash("hello world") (shared/vectors/README.md).
    assert merkle.leaf_hash(b"hello world") == base64.b64decode(
        "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0="
    )


def test_rfc6962_empty_and_small_tree_roots() -> None:
    # RFC 6962 reference values (as in transparency-dev/merkle and certificate-transparency).
    assert merkle.EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert merkle.root_from_leaf_hashes([merkle.leaf_hash(b"")]).hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )

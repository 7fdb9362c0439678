"""The append-only MerkleTree: equal to the one-shot functions at every size, historical roots
and proofs, argument checks."""

from __future__ import annotations

import hashlib
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto_core import MerkleTree, _merkle_py


def leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n)]


def test_grows_leaf_by_leaf_matching_the_functions(merkle: ModuleType) -> None:
    hashes = leaves(70)
    tree = MerkleTree(backend=merkle)
    assert tree.root() == merkle.merkle_root([])
    for n, h in enumerate(hashes, start=1):
        assert tree.append(h) == n - 1
        assert len(tree) == n
        assert tree.root() == merkle.merkle_root(hashes[:n])
    for size in range(1, 71):
        assert tree.root(size) == merkle.merkle_root(hashes[:size])
        for index in (0, size // 2, size - 1):
            proof = tree.inclusion_proof(index, size)
            assert proof == merkle.inclusion_proof(hashes[:size], index)
        assert tree.consistency_proof(size) == merkle.consistency_proof(hashes, size)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), data=st.data())
def test_historical_proofs_verify(n: int, data: st.DataObject) -> None:
    hashes = leaves(n)
    tree = MerkleTree(hashes)
    new_size = data.draw(st.integers(1, n))
    old_size = data.draw(st.integers(1, new_size))
    index = data.draw(st.integers(0, new_size - 1))
    root = tree.root(new_size)
    assert _merkle_py.verify_inclusion(
        tree.leaf(index), index, new_size, tree.inclusion_proof(index, new_size), root
    )
    proof = tree.consistency_proof(old_size, new_size)
    assert _merkle_py.verify_consistency(old_size, new_size, tree.root(old_size), root, proof)


def test_argument_checks() -> None:
    tree = MerkleTree(leaves(5))
    with pytest.raises(ValueError, match="32-byte"):
        tree.append(b"short")
    with pytest.raises(TypeError):
        tree.append("x" * 32)  # type: ignore[arg-type]
    with pytest.raises(IndexError):
        tree.leaf(5)
    with pytest.raises(IndexError):
        tree.inclusion_proof(3, 3)
    with pytest.raises(ValueError):
        tree.root(6)
    with pytest.raises(ValueError):
        tree.consistency_proof(0)
    with pytest.raises(ValueError):
        tree.consistency_proof(4, 3)
    assert tree.size == 5 and tree.leaf(4) == leaves(5)[4]

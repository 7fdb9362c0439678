"""Merkle functions on every backend: known answers, proofs that verify, tampering that fails,
and the argument contract (TypeError for wrong types, False for hostile values)."""

from __future__ import annotations

import hashlib
from types import ModuleType

import pytest

from crypto_core import _merkle_py


def leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [hashlib.sha256(salt + i.to_bytes(8, "big")).digest() for i in range(n)]


def rfc_root(hashes: list[bytes]) -> bytes:
    """MTH exactly as RFC 9162 §2.1.1 writes it (recursive split), independent of the backends."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + rfc_root(hashes[:k]) + rfc_root(hashes[k:])).digest()


def test_hash_leaf_and_children_known_answers(merkle: ModuleType) -> None:
    # RFC 6962 test tree: the leaf hash of the empty string and of 0x00.
    assert merkle.hash_leaf(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert merkle.hash_leaf(b"\x00").hex() == (
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
    )
    a, b = leaves(2)
    assert merkle.hash_children(a, b) == hashlib.sha256(b"\x01" + a + b).digest()


@pytest.mark.parametrize("size", [55, 56, 63, 64, 65, 119, 120, 1000])
def test_hash_leaf_matches_hashlib_across_block_boundaries(merkle: ModuleType, size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    assert merkle.hash_leaf(data[:size]) == hashlib.sha256(b"\x00" + data[:size]).digest()


def test_hash_leaf_accepts_bytes_like(merkle: ModuleType) -> None:
    expected = merkle.hash_leaf(b"abc")
    assert merkle.hash_leaf(bytearray(b"abc")) == expected
    assert merkle.hash_leaf(memoryview(b"abc")) == expected


def test_empty_tree_root_is_sha256_of_nothing(merkle: ModuleType) -> None:
    assert merkle.merkle_root([]) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1023, 1025])
def test_root_matches_rfc_recursion(merkle: ModuleType, n: int) -> None:
    hashes = leaves(n)
    assert merkle.merkle_root(hashes) == rfc_root(hashes)
    assert merkle.merkle_root(tuple(hashes)) == rfc_root(hashes)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 16, 17, 33, 100])
def test_every_inclusion_proof_verifies_and_tampering_fails(merkle: ModuleType, n: int) -> None:
    hashes = leaves(n)
    root = merkle.merkle_root(hashes)
    for index in range(n):
        proof = merkle.inclusion_proof(hashes, index)
        assert proof == _merkle_py.inclusion_proof(hashes, index)
        assert merkle.verify_inclusion(hashes[index], index, n, proof, root)
        if n > 1:
            wrong_index = index ^ 1 if index ^ 1 < n else index - 1
            assert not merkle.verify_inclusion(hashes[index], wrong_index, n, proof, root)
            assert not merkle.verify_inclusion(hashes[(index + 1) % n], index, n, proof, root)
        if proof:
            flipped = bytes([proof[0][0] ^ 1]) + proof[0][1:]
            assert not merkle.verify_inclusion(hashes[index], index, n, [flipped, *proof[1:]], root)
            assert not merkle.verify_inclusion(hashes[index], index, n, proof[:-1], root)
        assert not merkle.verify_inclusion(hashes[index], index, n, [*proof, root], root)


@pytest.mark.parametrize("n", [2, 3, 4, 7, 8, 9, 16, 17, 50])
def test_every_consistency_proof_verifies_and_tampering_fails(merkle: ModuleType, n: int) -> None:
    hashes = leaves(n)
    new_root = merkle.merkle_root(hashes)
    for m in range(1, n + 1):
        old_root = merkle.merkle_root(hashes[:m])
        proof = merkle.consistency_proof(hashes, m)
        assert proof == _merkle_py.consistency_proof(hashes, m)
        assert merkle.verify_consistency(m, n, old_root, new_root, proof)
        if m < n:
            assert not merkle.verify_consistency(m, n, new_root, old_root, proof)
            assert not merkle.verify_consistency(m, n, old_root, new_root, proof[:-1])
            assert not merkle.verify_consistency(m + 1, n, old_root, new_root, proof)


def test_cve_2012_2459_duplicated_last_leaf_changes_the_root(merkle: ModuleType) -> None:
    # Bitcoin's tree duplicates an odd last node, so [a, b, c] and [a, b, c, c] share a root and
    # a block can be mutated without changing its hash. RFC 9162 promotes it instead.
    for n in (3, 5, 6, 7, 9, 11):
        hashes = leaves(n)
        assert merkle.merkle_root(hashes) != merkle.merkle_root([*hashes, hashes[-1]])
        if n % 2 == 0:
            mutated = [*hashes[:-2], hashes[-2], hashes[-1], hashes[-2], hashes[-1]]
            assert merkle.merkle_root(hashes) != merkle.merkle_root(mutated)


def test_leaf_and_node_domains_are_separated(merkle: ModuleType) -> None:
    # A second-preimage attempt: presenting an inner node's children as leaf data.
    a, b = leaves(2)
    assert merkle.hash_leaf(a + b) != merkle.hash_children(a, b)


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.hash_leaf("text"),
        lambda m: m.hash_leaf(None),
        lambda m: m.hash_children(b"\x00" * 32, 7),
        lambda m: m.merkle_root(b"\x00" * 64),
        lambda m: m.merkle_root([b"\x00" * 32, "x" * 32]),
        lambda m: m.merkle_root(None),
        lambda m: m.inclusion_proof(leaves(4), 1.0),
        lambda m: m.inclusion_proof(leaves(4), True),
        lambda m: m.consistency_proof(leaves(4), "2"),
        lambda m: m.verify_inclusion("leaf", 0, 1, [], b"\x00" * 32),
        lambda m: m.verify_inclusion(b"\x00" * 32, 0, 1, "proof", b"\x00" * 32),
        lambda m: m.verify_inclusion(b"\x00" * 32, 0, 1, [None], b"\x00" * 32),
        lambda m: m.verify_inclusion(b"\x00" * 32, 0, 1.5, [], b"\x00" * 32),
        lambda m: m.verify_consistency(1, 2, b"\x00" * 32, None, []),
        lambda m: m.verify_inclusion_batch(5),
        lambda m: m.verify_inclusion_batch([(b"\x00" * 32, 0, 1, [])]),
        lambda m: m.verify_inclusion_batch([("a", 0, 1, [], b"\x00" * 32)]),
    ],
)
def test_wrong_types_raise_type_error(merkle: ModuleType, call: object) -> None:
    with pytest.raises(TypeError):
        call(merkle)  # type: ignore[operator]


def test_builder_values_out_of_range_raise(merkle: ModuleType) -> None:
    hashes = leaves(4)
    with pytest.raises(ValueError, match="32-byte"):
        merkle.merkle_root([b"\x00" * 31])
    with pytest.raises(ValueError, match="32-byte"):
        merkle.hash_children(b"\x00" * 33, b"\x00" * 32)
    with pytest.raises(IndexError):
        merkle.inclusion_proof(hashes, 4)
    with pytest.raises(IndexError):
        merkle.inclusion_proof(hashes, -1)
    with pytest.raises(IndexError):
        merkle.inclusion_proof([], 0)
    for bad in (0, 5, -1):
        with pytest.raises(ValueError):
            merkle.consistency_proof(hashes, bad)


HOSTILE_INCLUSION = [
    (b"\x00" * 32, -1, 4),
    (b"\x00" * 32, 5, 4),
    (b"\x00" * 32, 0, 0),
    (b"\x00" * 32, 0, 1 << 64),
    (b"\x00" * 32, 1 << 70, 1 << 71),
    (b"\x00" * 31, 0, 4),
    (b"", 0, 4),
]


@pytest.mark.parametrize(("leaf", "index", "size"), HOSTILE_INCLUSION)
def test_hostile_inclusion_values_are_false_never_raise(
    merkle: ModuleType, leaf: bytes, index: int, size: int
) -> None:
    root = merkle.merkle_root(leaves(4))
    proof = merkle.inclusion_proof(leaves(4), 0)
    assert merkle.verify_inclusion(leaf, index, size, proof, root) is False
    assert merkle.verify_inclusion_batch([(leaf, index, size, proof, root)]) == [False]


def test_hostile_proof_shapes_are_false(merkle: ModuleType) -> None:
    hashes = leaves(8)
    root = merkle.merkle_root(hashes)
    proof = merkle.inclusion_proof(hashes, 3)
    for bad in (
        [*proof, *proof],
        [p[:16] for p in proof],
        [b"\xff" * 64] * 3,
        [b""] * 3,
        [proof[0]] * 200,
    ):
        assert merkle.verify_inclusion(hashes[3], 3, 8, bad, root) is False
    assert merkle.verify_inclusion(hashes[3], 3, 8, proof, root[:31]) is False
    assert merkle.verify_consistency(4, 8, root, root, [b"\x00" * 32] * 500) is False
    assert merkle.verify_consistency(8, 4, root, root, []) is False
    assert merkle.verify_consistency(0, 8, root, root, []) is False
    assert merkle.verify_consistency(2, 1 << 64, root, root, proof) is False


def test_batch_matches_single_verification(merkle: ModuleType) -> None:
    hashes = leaves(37)
    root = merkle.merkle_root(hashes)
    items = []
    for i in range(37):
        proof = merkle.inclusion_proof(hashes, i)
        items.append((hashes[i], i, 37, proof, root))
        items.append((hashes[i], i, 37, proof[:-1] if proof else [root], root))  # wrong
        items.append((hashes[i], 40, 37, proof, root))  # malformed: index out of range
    items.append((hashes[0], 0, 1, [], hashes[0]))  # a one-leaf tree: empty proof
    expected = [merkle.verify_inclusion(*item) for item in items]
    assert merkle.verify_inclusion_batch(items) == expected
    assert expected.count(True) == 38
    assert merkle.verify_inclusion_batch(iter(items)) == expected
    assert merkle.verify_inclusion_batch([]) == []


def test_batch_accepts_bytes_like_fields(merkle: ModuleType) -> None:
    hashes = leaves(4)
    root = merkle.merkle_root(hashes)
    proof = [bytearray(p) for p in merkle.inclusion_proof(hashes, 2)]
    item = [memoryview(hashes[2]), 2, 4, tuple(proof), bytearray(root)]
    assert merkle.verify_inclusion_batch([item]) == [True]

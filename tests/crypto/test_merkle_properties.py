"""Property tests: the accelerator (on each SHA-256 path) agrees with the reference on random
trees, proofs and hostile inputs; proofs always verify; one flipped bit never does."""

from __future__ import annotations

from types import ModuleType

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto_core import _merkle_py

digests = st.binary(min_size=32, max_size=32)
trees = st.lists(digests, min_size=1, max_size=70)
any_bytes = st.binary(max_size=40)
sizes = st.integers(min_value=-2, max_value=(1 << 64) + 2)

# The backend fixture is set once per test and is the same for every example.
FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FAST
@given(data=st.lists(st.binary(max_size=300), max_size=8))
def test_leaf_hashes_agree(merkle: ModuleType, data: list[bytes]) -> None:
    for d in data:
        assert merkle.hash_leaf(d) == _merkle_py.hash_leaf(d)


@FAST
@given(hashes=st.lists(digests, max_size=200))
def test_roots_agree(merkle: ModuleType, hashes: list[bytes]) -> None:
    assert merkle.merkle_root(hashes) == _merkle_py.merkle_root(hashes)


@FAST
@given(hashes=trees, pick=st.integers(min_value=0), bit=st.integers(0, 255))
def test_inclusion_roundtrip_and_bit_flip(
    merkle: ModuleType, hashes: list[bytes], pick: int, bit: int
) -> None:
    index = pick % len(hashes)
    root = merkle.merkle_root(hashes)
    proof = merkle.inclusion_proof(hashes, index)
    assert proof == _merkle_py.inclusion_proof(hashes, index)
    assert merkle.verify_inclusion(hashes[index], index, len(hashes), proof, root)
    flipped = bytearray(root)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert not merkle.verify_inclusion(hashes[index], index, len(hashes), proof, bytes(flipped))


@FAST
@given(hashes=trees, pick=st.integers(min_value=0))
def test_consistency_roundtrip(merkle: ModuleType, hashes: list[bytes], pick: int) -> None:
    old_size = pick % len(hashes) + 1
    proof = merkle.consistency_proof(hashes, old_size)
    assert proof == _merkle_py.consistency_proof(hashes, old_size)
    old_root = merkle.merkle_root(hashes[:old_size])
    new_root = merkle.merkle_root(hashes)
    assert merkle.verify_consistency(old_size, len(hashes), old_root, new_root, proof)


@FAST
@given(
    leaf=any_bytes,
    index=sizes,
    size=sizes,
    proof=st.lists(any_bytes, max_size=6),
    root=any_bytes,
)
def test_hostile_inclusion_agrees_and_never_raises(
    merkle: ModuleType, leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> None:
    expected = _merkle_py.verify_inclusion(leaf, index, size, proof, root)
    assert merkle.verify_inclusion(leaf, index, size, proof, root) is expected
    assert merkle.verify_inclusion_batch([(leaf, index, size, proof, root)]) == [expected]


@FAST
@given(
    old=sizes,
    new=sizes,
    old_root=any_bytes,
    new_root=any_bytes,
    proof=st.lists(any_bytes, max_size=6),
)
def test_hostile_consistency_agrees_and_never_raises(
    merkle: ModuleType, old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    expected = _merkle_py.verify_consistency(old, new, old_root, new_root, proof)
    assert merkle.verify_consistency(old, new, old_root, new_root, proof) is expected


@FAST
@given(hashes=trees, picks=st.lists(st.integers(min_value=0), min_size=1, max_size=40))
def test_batch_agrees_with_single(
    merkle: ModuleType, hashes: list[bytes], picks: list[int]
) -> None:
    root = merkle.merkle_root(hashes)
    items = []
    for k, pick in enumerate(picks):
        index = pick % len(hashes)
        proof = merkle.inclusion_proof(hashes, index)
        if k % 3 == 1 and proof:
            proof = proof[1:]  # a truncated proof
        items.append((hashes[index], index, len(hashes), proof, root))
    assert merkle.verify_inclusion_batch(items) == [merkle.verify_inclusion(*i) for i in items]

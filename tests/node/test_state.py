"""Versioned Merkle state: roots, proofs of presence and absence, history, retention."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto_core import EMPTY_ROOT, _merkle_py
from node.app.state import VersionedState, state_leaf_hash, verify_state_proof
from node.types import StateProof


def reference_root(entries: dict[bytes, bytes]) -> bytes:
    """The root by definition, with the pure-Python reference Merkle code."""
    return _merkle_py.merkle_root([state_leaf_hash(k, entries[k]) for k in sorted(entries)])


def test_empty_state_has_the_empty_root_and_proves_absence() -> None:
    state = VersionedState()
    assert state.commit(0, {}) == EMPTY_ROOT
    proof = state.prove(b"anything")
    assert proof.value is None and proof.tree_size == 0
    assert verify_state_proof(proof, EMPTY_ROOT)


def test_root_matches_the_definition_after_inserts_updates_and_deletes() -> None:
    state = VersionedState()
    model = {b"b": b"2", b"a": b"1", b"c": b"3"}
    assert state.commit(0, model) == reference_root(model)
    state.commit(1, {b"b": b"two"})  # value-only change: leaves patched in place
    model[b"b"] = b"two"
    assert state.root == reference_root(model)
    state.commit(2, {b"a": None, b"d": b"4", b"zz": None})  # deleting a missing key is a no-op
    del model[b"a"]
    model[b"d"] = b"4"
    assert state.root == reference_root(model)
    assert [k for k, _ in state.iterate(b"")] == sorted(model)


def test_commits_must_be_consecutive() -> None:
    state = VersionedState()
    state.commit(5, {})
    with pytest.raises(ValueError, match="height 7"):
        state.commit(7, {})


def test_presence_and_absence_proofs_verify_and_tampering_fails() -> None:
    state = VersionedState()
    root = state.commit(0, {b"k%02d" % i: b"v%d" % i for i in range(10)})
    present = state.prove(b"k03")
    assert present.value == b"v3" and verify_state_proof(present, root)
    for key in (b"a", b"k035", b"z"):  # before the first, between two, after the last
        absent = state.prove(key)
        assert absent.value is None and verify_state_proof(absent, root)
    assert not verify_state_proof(present, bytes(32))
    assert not verify_state_proof(dataclasses.replace(present, value=b"forged"), root)
    assert not verify_state_proof(dataclasses.replace(present, key=b"k04"), root)
    between = state.prove(b"k035")
    assert between.lower is not None and between.upper is not None
    # Claiming absence with non-adjacent neighbours must fail (they hide k04 in between).
    wide = dataclasses.replace(between, upper=state.prove(b"k05").found)
    assert not verify_state_proof(wide, root)
    # Claiming absence of a present key with its neighbours fails too.
    hidden = StateProof(
        0, root, 10, b"k03", None, None, state.prove(b"k02").found, state.prove(b"k04").found
    )
    assert not verify_state_proof(hidden, root)


def test_proofs_at_older_heights_and_retention() -> None:
    state = VersionedState(retention_heights=2)
    roots = [state.commit(0, {b"a": b"0"})]
    roots.append(state.commit(1, {b"a": b"1", b"b": b"new"}))
    roots.append(state.commit(2, {b"a": None}))
    roots.append(state.commit(3, {b"c": b"3"}))
    assert state.retained_heights() == range(1, 4)
    at1 = state.prove(b"a", 1)
    assert at1.value == b"1" and verify_state_proof(at1, roots[1])
    at2 = state.prove(b"a", 2)
    assert at2.value is None and verify_state_proof(at2, roots[2])
    assert state.root_at(3) == roots[3] == state.root
    with pytest.raises(KeyError, match="not retained"):
        state.prove(b"a", 0)


def test_restored_state_has_the_same_root() -> None:
    entries = {b"x": b"1", b"y": b"2"}
    original = VersionedState()
    original.commit(0, entries)
    restored = VersionedState.from_entries(0, entries.items())
    assert restored.root == original.root and restored.height == 0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.binary(min_size=1, max_size=3),
            st.none() | st.binary(max_size=4),
            max_size=6,
        ),
        min_size=1,
        max_size=6,
    ),
    st.binary(min_size=1, max_size=3),
)
def test_random_histories_match_a_model_at_every_retained_height(
    blocks: list[dict[bytes, bytes | None]], probe: bytes
) -> None:
    state = VersionedState(retention_heights=len(blocks))
    model: dict[bytes, bytes] = {}
    snapshots: list[tuple[bytes, dict[bytes, bytes]]] = []
    for height, changes in enumerate(blocks):
        for key, value in changes.items():
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
        root = state.commit(height, changes)
        assert root == reference_root(model)
        snapshots.append((root, dict(model)))
    for height, (root, entries) in enumerate(snapshots):
        for key in [probe, *list(entries)[:2]]:
            proof = state.prove(key, height)
            assert proof.value == entries.get(key)
            assert verify_state_proof(proof, root)

"""Versioned key-value state with a Merkle root per height, and proofs against it.

Tree: the committed entries sorted by key; leaf ``i`` is
``hash_leaf(msgpack([key_i, value_i]))`` (``state_leaf_hash``) and the state root is the
RFC 9162 ``merkle_root`` of the leaves (``SHA-256(b"")`` for an empty state). A proof of
presence is the entry's inclusion path; a proof of absence is the inclusion paths of the two
*adjacent* entries around the key (or of the first/last entry at an end), which a verifier
can check are adjacent from their leaf indices.

Cost per committed height: leaf hashes are cached per key, so only changed entries are
hashed; new and deleted keys are spliced into the sorted key and leaf lists by slices
around their bisect positions (copies in C); the root is one ``merkle_root`` call over the
cached leaves (O(n), in C: ~7 ms for 1e5 keys on the reference machine, see
``bench/node.py``).

History: the last ``retention_heights`` heights stay provable. Each height keeps an undo log
(the previous value of each key it changed); a proof at an older height rebuilds that
height's leaves from the current ones and the undo logs, O(n + changes).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, cast

import msgpack

from crypto_core import EMPTY_ROOT, hash_leaf, inclusion_proof, merkle_root, verify_inclusion
from node.types import LeafProof, StateProof

DEFAULT_RETENTION_HEIGHTS: Final = 100


def state_leaf_hash(key: bytes, value: bytes) -> bytes:
    """The leaf hash of one state entry: ``hash_leaf`` of the canonical ``[key, value]``."""
    return cast(bytes, hash_leaf(msgpack.packb([key, value], use_bin_type=True)))


@dataclass(frozen=True, slots=True)
class _Version:
    height: int
    root: bytes
    undo: dict[bytes, bytes | None]  # key -> value before this height (None: absent)


class VersionedState:
    """The committed application state and the recent history needed for proofs.

    Single writer: ``commit`` one height at a time; reads see the latest committed height.
    """

    def __init__(self, retention_heights: int = DEFAULT_RETENTION_HEIGHTS) -> None:
        if retention_heights < 0:
            raise ValueError(f"retention_heights must be >= 0, got {retention_heights}")
        self.retention_heights = retention_heights
        self._values: dict[bytes, bytes] = {}
        self._leaf_of: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []  # sorted
        self._leaves: list[bytes] = []  # leaf hashes in key order
        self._height = -1  # nothing committed yet
        self._root = EMPTY_ROOT
        self._versions: deque[_Version] = deque()

    @classmethod
    def from_entries(
        cls,
        height: int,
        entries: Iterable[tuple[bytes, bytes]],
        retention_heights: int = DEFAULT_RETENTION_HEIGHTS,
    ) -> VersionedState:
        """A state restored at ``height`` from its entries (e.g. read back from storage)."""
        state = cls(retention_heights)
        state.commit(height, dict(entries))
        return state

    # -- reads of the latest height ---------------------------------------------------------

    @property
    def height(self) -> int:
        """The latest committed height (-1 before the first commit)."""
        return self._height

    @property
    def root(self) -> bytes:
        """The state root of the latest committed height."""
        return self._root

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key: bytes) -> bytes | None:
        """The committed value of ``key``, or ``None``."""
        return self._values.get(key)

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Committed entries under ``prefix`` in key order (lazy: do not commit meanwhile)."""
        keys = self._keys
        index = bisect_left(keys, prefix)
        while index < len(keys) and keys[index].startswith(prefix):
            key = keys[index]
            yield key, self._values[key]
            index += 1

    def retained_heights(self) -> range:
        """The heights ``root_at`` and ``prove`` can serve."""
        if self._height < 0:
            return range(0)
        oldest = self._versions[0].height if self._versions else self._height
        return range(oldest, self._height + 1)

    def root_at(self, height: int) -> bytes:
        """The state root of a retained ``height`` (``KeyError`` otherwise)."""
        for version in self._versions:
            if version.height == height:
                return version.root
        raise KeyError(f"height {height} is not retained (have {self.retained_heights()})")

    # -- writes -----------------------------------------------------------------------------

    def commit(self, height: int, changes: Mapping[bytes, bytes | None]) -> bytes:
        """Apply ``changes`` (``None`` deletes) as ``height``; returns the new state root.

        ``height`` must be the next one (any height for the very first commit).
        """
        if self._height >= 0 and height != self._height + 1:
            raise ValueError(f"commit of height {height} after height {self._height}")
        undo: dict[bytes, bytes | None] = {}
        added: list[bytes] = []
        removed: set[bytes] = set()
        for key in sorted(changes):
            value, old = changes[key], self._values.get(key)
            if value == old:
                continue
            undo[key] = old
            if value is None:
                del self._values[key], self._leaf_of[key]
                removed.add(key)
            else:
                self._values[key] = value
                self._leaf_of[key] = state_leaf_hash(key, value)
                if old is None:
                    added.append(key)
        self._update_keys(added, removed, undo)
        assert len(self._leaves) == len(self._values) == len(self._leaf_of), "state indexes"
        self._root = cast(bytes, merkle_root(self._leaves))
        first_commit = self._height < 0  # nothing older to rebuild: keep no undo log
        self._height = height
        self._versions.append(_Version(height, self._root, {} if first_commit else undo))
        while len(self._versions) > self.retention_heights + 1:
            self._versions.popleft()
        return self._root

    def _update_keys(
        self, added: list[bytes], removed: set[bytes], changed: Mapping[bytes, object]
    ) -> None:
        """Bring the sorted keys and their leaves up to date: removed and added keys are
        spliced in by slices (copies in C) around their ``bisect`` positions, so a height
        costs O(n) memory copies and O(changes log n) Python steps, not a Python step per
        key of the whole state; changed values of kept keys patch their leaves in place."""
        keys, leaves = self._keys, self._leaves
        if added or removed:
            keys, leaves = _spliced(keys, leaves, removed, added, self._leaf_of)
        self._keys, self._leaves = keys, leaves
        fresh = set(added)
        for key in changed:
            if key not in fresh and key not in removed:
                leaves[bisect_left(keys, key)] = self._leaf_of[key]

    # -- proofs -----------------------------------------------------------------------------

    def prove(self, key: bytes, height: int | None = None) -> StateProof:
        """The value of ``key`` at ``height`` (default: latest) with its proof."""
        if self._height < 0:
            raise KeyError("nothing committed yet")
        height = self._height if height is None else height
        root = self.root_at(height)
        if height == self._height:
            snapshot = _Snapshot(self._keys, self._values, self._leaves)
        else:
            snapshot = self._rebuild(height)
        return snapshot.prove(key, height, root)

    def _rebuild(self, height: int) -> _Snapshot:
        """Keys, values and leaves of an older retained height."""
        diff: dict[bytes, bytes | None] = {}
        for version in reversed(self._versions):
            if version.height <= height:
                break
            diff.update(version.undo)  # older undo logs overwrite newer ones: the right order
        values = {k: v for k, v in self._values.items() if k not in diff}
        values.update({k: v for k, v in diff.items() if v is not None})
        keys = sorted(values)
        leaves = [state_leaf_hash(k, values[k]) if k in diff else self._leaf_of[k] for k in keys]
        return _Snapshot(keys, values, leaves)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The entries of one height: sorted keys, their values and leaf hashes."""

    keys: list[bytes]
    values: Mapping[bytes, bytes]
    leaves: list[bytes]

    def prove(self, key: bytes, height: int, root: bytes) -> StateProof:
        size = len(self.keys)
        index = bisect_left(self.keys, key)
        if index < size and self.keys[index] == key:
            found = self._leaf(index)
            return StateProof(height, root, size, key, found.value, found, None, None)
        lower = self._leaf(index - 1) if index > 0 else None
        upper = self._leaf(index) if index < size else None
        return StateProof(height, root, size, key, None, None, lower, upper)

    def _leaf(self, index: int) -> LeafProof:
        key = self.keys[index]
        path = tuple(inclusion_proof(self.leaves, index))
        return LeafProof(key=key, value=self.values[key], leaf_index=index, path=path)


def verify_state_proof(proof: StateProof, trusted_root: bytes) -> bool:
    """True iff ``proof`` shows ``proof.key`` has ``proof.value`` (``None``: is absent) in
    the state whose root is ``trusted_root`` (get it from a header you trust). Never raises
    on a well-typed proof, however wrong."""
    if proof.state_root != trusted_root:
        return False
    if proof.value is not None:
        found = proof.found
        return (
            found is not None
            and proof.lower is None
            and proof.upper is None
            and found.key == proof.key
            and found.value == proof.value
            and _leaf_ok(found, proof)
        )
    return proof.found is None and _absence_ok(proof)


def _leaf_ok(leaf: LeafProof, proof: StateProof) -> bool:
    leaf_hash = state_leaf_hash(leaf.key, leaf.value)
    ok = verify_inclusion(leaf_hash, leaf.leaf_index, proof.tree_size, leaf.path, proof.state_root)
    return bool(ok)


def _absence_ok(proof: StateProof) -> bool:
    lower, upper = proof.lower, proof.upper
    if lower is None and upper is None:
        return proof.tree_size == 0 and proof.state_root == EMPTY_ROOT
    if lower is not None and not (lower.key < proof.key and _leaf_ok(lower, proof)):
        return False
    if upper is not None and not (proof.key < upper.key and _leaf_ok(upper, proof)):
        return False
    if lower is None:
        return upper is not None and upper.leaf_index == 0
    if upper is None:
        return lower.leaf_index == proof.tree_size - 1
    return upper.leaf_index == lower.leaf_index + 1


def _spliced(
    keys: list[bytes],
    leaves: list[bytes],
    gone: Iterable[bytes],
    fresh: Iterable[bytes],
    leaf_of: Mapping[bytes, bytes],
) -> tuple[list[bytes], list[bytes]]:
    """``keys`` and ``leaves`` without the keys ``gone`` (each present) and with the keys
    ``fresh`` (each absent, its leaf in ``leaf_of``), in one pass of slices."""
    edits = sorted([(key, False) for key in gone] + [(key, True) for key in fresh])
    new_keys: list[bytes] = []
    new_leaves: list[bytes] = []
    start = 0
    for key, adding in edits:
        index = bisect_left(keys, key, start)
        new_keys += keys[start:index]
        new_leaves += leaves[start:index]
        if adding:
            new_keys.append(key)
            new_leaves.append(leaf_of[key])
            start = index
        else:
            start = index + 1  # the key itself is left out
    new_keys += keys[start:]
    new_leaves += leaves[start:]
    return new_keys, new_leaves

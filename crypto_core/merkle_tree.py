"""An append-only RFC 9162 Merkle tree that a chain extends leaf by leaf.

It keeps every *complete* subtree hash (the nodes of perfect subtrees aligned on their size),
level by level in contiguous byte arrays (32 bytes a node, about 64 bytes per leaf in all).
So an append costs one node hash amortized, and the root, inclusion proofs and consistency
proofs of the current tree *or of any earlier size* cost O(log² n) hashes at most, with no
recomputation over the leaves. The proofs are the ones RFC 9162 §2.1.3/§2.1.4 define, checked
by ``verify_inclusion`` / ``verify_consistency``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import ModuleType

from crypto_core._contract import DIGEST_SIZE, MAX_TREE_SIZE, check_hash_arg, check_size
from crypto_core._merkle_py import EMPTY_ROOT

_D = DIGEST_SIZE


def _default_backend() -> ModuleType:
    import crypto_core  # noqa: PLC0415  (crypto_core imports this module)

    return crypto_core._backend


class MerkleTree:
    """Append-only Merkle tree over 32-byte leaf hashes.

    ``backend`` is a Merkle backend module (``_merkle_py`` or ``_merkle_c``); by default the one
    ``crypto_core`` selected. Not thread-safe: one writer, readers on the same thread.
    """

    __slots__ = ("_hash_children", "_levels", "_root_cache", "_size")

    def __init__(
        self, leaf_hashes: Iterable[bytes] = (), *, backend: ModuleType | None = None
    ) -> None:
        self._hash_children: Callable[[bytes, bytes], bytes] = (
            backend or _default_backend()
        ).hash_children
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        self._root_cache: tuple[int, bytes] | None = None
        self.extend(leaf_hashes)

    def __len__(self) -> int:
        return self._size

    @property
    def size(self) -> int:
        """The number of leaves."""
        return self._size

    def append(self, leaf_hash: bytes) -> int:
        """Add a leaf hash; returns its index. ValueError unless it is a 32-byte hash."""
        check_hash_arg("leaf_hash", leaf_hash)
        if self._size >= MAX_TREE_SIZE:
            raise ValueError("the tree is full (2^64 - 1 leaves)")
        index = self._size
        self._levels[0] += leaf_hash
        node_index, level = index, 0
        while node_index & 1:  # a right child: its perfect parent is now complete
            row = self._levels[level]
            parent = self._hash_children(bytes(row[-2 * _D : -_D]), bytes(row[-_D:]))
            if level + 1 == len(self._levels):
                self._levels.append(bytearray())
            self._levels[level + 1] += parent
            node_index >>= 1
            level += 1
        self._size = index + 1
        # Level k holds exactly the complete subtrees of 2^k leaves: size >> k of them.
        assert len(self._levels[0]) == self._size * _D, "one leaf hash per leaf"
        assert len(self._levels[level]) == (self._size >> level) * _D, "complete subtrees kept"
        return index

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append each leaf hash in order."""
        for leaf_hash in leaf_hashes:
            self.append(leaf_hash)

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index`` (IndexError outside the tree)."""
        self._check_index(index, self._size)
        return bytes(self._levels[0][index * _D : (index + 1) * _D])

    def root(self, size: int | None = None) -> bytes:
        """The root of the first ``size`` leaves (default: all); SHA-256(b"") when empty."""
        size = self._check_size(size)
        if size == self._size and self._root_cache and self._root_cache[0] == size:
            return self._root_cache[1]
        root = self._range_hash(0, size)
        if size == self._size:
            self._root_cache = (size, root)
        return root

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 PATH(index, D[size]) for the tree of the first ``size`` leaves."""
        size = self._check_size(size)
        self._check_index(index, size)
        return self._path(index, 0, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 PROOF(old_size, D[new_size]) for ``1 <= old_size <= new_size``."""
        new_size = self._check_size(new_size)
        check_size("old_size", old_size)
        if not 1 <= old_size <= new_size:
            raise ValueError(f"old_size must be within 1..{new_size}, got {old_size}")
        return self._subproof(old_size, 0, new_size, complete=True)

    # -- internals ---------------------------------------------------------------------------

    def _check_size(self, size: int | None) -> int:
        if size is None:
            return self._size
        check_size("size", size)
        if not 0 <= size <= self._size:
            raise ValueError(f"size must be within 0..{self._size}, got {size}")
        return size

    @staticmethod
    def _check_index(index: int, size: int) -> None:
        check_size("index", index)
        if not 0 <= index < size:
            raise IndexError(f"leaf index {index} is outside a tree of {size} leaves")

    def _range_hash(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for a range of the RFC 9162 recursion (``lo`` aligned on its split)."""
        n = hi - lo
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and lo % n == 0:  # a perfect, aligned subtree: stored
            level = n.bit_length() - 1
            start = (lo >> level) * _D
            return bytes(self._levels[level][start : start + _D])
        k = 1 << ((n - 1).bit_length() - 1)
        return self._hash_children(self._range_hash(lo, lo + k), self._range_hash(lo + k, hi))

    def _path(self, index: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = 1 << ((n - 1).bit_length() - 1)
        if index - lo < k:
            return [*self._path(index, lo, lo + k), self._range_hash(lo + k, hi)]
        return [*self._path(index, lo + k, hi), self._range_hash(lo, lo + k)]

    def _subproof(self, m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if complete else [self._range_hash(lo, hi)]
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            return [*self._subproof(m, lo, lo + k, complete), self._range_hash(lo + k, hi)]
        return [*self._subproof(m - k, lo + k, hi, False), self._range_hash(lo, lo + k)]

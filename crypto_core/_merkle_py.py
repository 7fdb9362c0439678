"""Pure-Python reference of the RFC 9162 Merkle tree (§2.1): the behaviour the accelerator matches.

Hashes: ``leaf = SHA-256(0x00 || data)``, ``node = SHA-256(0x01 || left || right)``; the tree over
``n`` leaves splits at the largest power of two smaller than ``n`` (odd nodes are promoted, never
duplicated, so CVE-2012-2459's duplicate-leaf mutation cannot keep a root).

Argument contract (shared with ``_merkle_c``):
- wrong Python types raise ``TypeError``; builder arguments out of range raise ``ValueError``
  (``IndexError`` for a leaf index);
- verifiers never raise on adversarial *values*: any wrong, malformed or oversized proof, a
  hash that is not 32 bytes, or sizes that do not fit give ``False``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from crypto_core._contract import (
    DIGEST_SIZE,
    MAX_PROOF_HASHES,
    check_batch_item,
    check_bytes,
    check_digest_list,
    check_hash_arg,
    check_inclusion_args,
    check_size,
    consistency_precheck,
    is_digest,
    sizes_fit,
)

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
EMPTY_ROOT = _sha256(b"").digest()


def hash_leaf(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)`` for bytes-like ``data`` of any length."""
    check_bytes("data", data)
    return _sha256(_LEAF_PREFIX + bytes(data)).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``; both must be 32-byte hashes (ValueError otherwise)."""
    check_hash_arg("left", left)
    check_hash_arg("right", right)
    return _sha256(_NODE_PREFIX + left + right).digest()


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The tree hash over already-hashed leaves; ``SHA-256(b"")`` for the empty tree."""
    check_digest_list("leaf_hashes", leaf_hashes)
    return _root(list(leaf_hashes))


def _root(level: list[bytes]) -> bytes:
    if not level:
        return EMPTY_ROOT
    # Bottom-up with promotion of an odd last node: equal to RFC 9162's recursive split.
    while len(level) > 1:
        pairs = range(0, len(level) - 1, 2)
        nxt = [_sha256(_NODE_PREFIX + level[i] + level[i + 1]).digest() for i in pairs]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[n]): sibling hashes from the leaf up to the root."""
    check_digest_list("leaf_hashes", leaf_hashes)
    check_size("index", index)
    if not 0 <= index < len(leaf_hashes):
        raise IndexError(f"leaf index {index} is outside a tree of {len(leaf_hashes)} leaves")
    return _path(list(leaf_hashes), index)


def _path(leaves: list[bytes], index: int) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*_path(leaves[:k], index), _root(leaves[k:])]
    return [*_path(leaves[k:], index - k), _root(leaves[:k])]


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(old_size, D[n]) for ``1 <= old_size <= n`` (ValueError otherwise)."""
    check_digest_list("leaf_hashes", leaf_hashes)
    check_size("old_size", old_size)
    if not 1 <= old_size <= len(leaf_hashes):
        raise ValueError(
            f"old_size must be within 1..{len(leaf_hashes)} for this tree, got {old_size}"
        )
    return _subproof(old_size, list(leaf_hashes), complete=True)


def _subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [_root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), _root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), _root(leaves[:k])]


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show ``leaf_hash`` at ``index`` in the tree ``root``?"""
    check_inclusion_args(leaf_hash, index, tree_size, proof, root)
    return _verify_inclusion(leaf_hash, index, tree_size, proof, root)


def _verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    if not sizes_fit(index, tree_size) or index >= tree_size:
        return False
    if not is_digest(leaf_hash) or not is_digest(root) or len(proof) > MAX_PROOF_HASHES:
        return False
    if not all(is_digest(p) for p in proof):
        return False
    fn, sn, r = index, tree_size - 1, bytes(leaf_hash)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _sha256(_NODE_PREFIX + p + r).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _sha256(_NODE_PREFIX + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree ``new_root`` an append-only extension of ``old_root``?

    The cases decided without hashing are ``_contract.consistency_precheck``'s.
    """
    verdict = consistency_precheck(old_size, new_size, old_root, new_root, proof)
    if verdict is not None:
        return verdict
    return _verify_consistency_path(old_size, new_size, old_root, new_root, proof)


def _verify_consistency_path(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a tree node
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _sha256(_NODE_PREFIX + c + fr).digest()
            sr = _sha256(_NODE_PREFIX + c + sr).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = _sha256(_NODE_PREFIX + sr + c).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


def verify_inclusion_batch(
    items: Iterable[tuple[bytes, int, int, Sequence[bytes], bytes]],
) -> list[bool]:
    """``verify_inclusion`` over many ``(leaf_hash, index, tree_size, proof, root)`` items."""
    checked = [check_batch_item(i, item) for i, item in enumerate(_iterate("items", items))]
    return [_verify_inclusion(*item) for item in checked]


def _iterate(name: str, items: object) -> Iterable[object]:
    if isinstance(items, bytes | bytearray | str) or not isinstance(items, Iterable):
        raise TypeError(f"{name} must be an iterable of tuples, not {type(items).__name__}")
    return items


__all__ = [
    "DIGEST_SIZE",
    "EMPTY_ROOT",
    "consistency_proof",
    "hash_children",
    "hash_leaf",
    "inclusion_proof",
    "merkle_root",
    "verify_consistency",
    "verify_inclusion",
    "verify_inclusion_batch",
]

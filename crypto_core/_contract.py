"""Argument checks shared by both Merkle backends, so they fail alike and say the same thing.

Types are the caller's responsibility (``TypeError``); values inside proofs are adversarial
content, judged by the verifiers (``False``), never raised.
"""

from __future__ import annotations

from collections.abc import Sequence

DIGEST_SIZE = 32
# Tree sizes and indices are u64 in the wire formats (RFC 9162 uses uint64 too).
MAX_TREE_SIZE = (1 << 64) - 1
# A u64-sized tree needs at most 64 inclusion-path hashes and 2*64 consistency hashes; a longer
# proof is malformed, and refusing it bounds a verifier's work on hostile input.
MAX_PROOF_HASHES = 128

_BYTES_LIKE = (bytes, bytearray, memoryview)
_BATCH_FIELDS = ("leaf_hash", "index", "tree_size", "proof", "root")


def check_bytes(name: str, value: object) -> None:
    """``value`` must be bytes-like (bytes, bytearray, memoryview)."""
    if not isinstance(value, _BYTES_LIKE):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")


def check_hash_arg(name: str, value: object) -> None:
    """A hash given to a builder: bytes-like of exactly 32 bytes."""
    check_bytes(name, value)
    if len(value) != DIGEST_SIZE:  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a {DIGEST_SIZE}-byte hash, got {len(value)} bytes")  # type: ignore[arg-type]


def check_size(name: str, value: object) -> None:
    """An index or size: an ``int`` (``bool`` is refused: it is almost always a bug)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")


def check_digest_list(name: str, hashes: object) -> None:
    """A list or tuple of 32-byte ``bytes`` leaf hashes."""
    if not isinstance(hashes, list | tuple):
        raise TypeError(f"{name} must be a list or tuple of bytes, not {type(hashes).__name__}")
    for i, h in enumerate(hashes):
        if not isinstance(h, bytes):
            raise TypeError(f"{name}[{i}] must be bytes, not {type(h).__name__}")
        if len(h) != DIGEST_SIZE:
            raise ValueError(f"{name}[{i}] must be a {DIGEST_SIZE}-byte hash, got {len(h)} bytes")


def check_proof_list(name: str, proof: object) -> None:
    """A list or tuple of bytes-like hashes (their lengths are judged by the verifier)."""
    if not isinstance(proof, list | tuple):
        raise TypeError(f"{name} must be a list or tuple of bytes, not {type(proof).__name__}")
    for i, p in enumerate(proof):
        if not isinstance(p, _BYTES_LIKE):
            raise TypeError(f"{name}[{i}] must be bytes, not {type(p).__name__}")


def check_batch_item(position: int, item: object) -> tuple[bytes, int, int, Sequence[bytes], bytes]:
    """One ``(leaf_hash, index, tree_size, proof, root)`` item of a batch, type-checked."""
    if not isinstance(item, tuple | list) or len(item) != len(_BATCH_FIELDS):
        raise TypeError(
            f"items[{position}] must be a tuple (leaf_hash, index, tree_size, proof, root)"
        )
    leaf_hash, index, tree_size, proof, root = item
    check_bytes(f"items[{position}].leaf_hash", leaf_hash)
    check_size(f"items[{position}].index", index)
    check_size(f"items[{position}].tree_size", tree_size)
    check_proof_list(f"items[{position}].proof", proof)
    check_bytes(f"items[{position}].root", root)
    return (leaf_hash, index, tree_size, proof, root)


def is_digest(value: object) -> bool:
    """True for a bytes-like value of exactly 32 bytes."""
    return isinstance(value, _BYTES_LIKE) and len(value) == DIGEST_SIZE


def sizes_fit(*sizes: int) -> bool:
    """True when every size or index is within 0..2^64-1."""
    return all(0 <= s <= MAX_TREE_SIZE for s in sizes)


def check_inclusion_args(
    leaf_hash: object, index: object, tree_size: object, proof: object, root: object
) -> None:
    """The types of ``verify_inclusion``'s arguments (TypeError); values are the verifier's."""
    check_bytes("leaf_hash", leaf_hash)
    check_size("index", index)
    check_size("tree_size", tree_size)
    check_proof_list("proof", proof)
    check_bytes("root", root)


def consistency_precheck(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool | None:
    """Type-check ``verify_consistency``'s arguments (TypeError) and decide every case that
    needs no hashing: the verdict, or ``None`` when the proof path must be walked.

    Equal sizes need an empty proof and equal roots (as transparency-dev/merkle); a proof
    from the empty tree is refused (it proves nothing), as are a shrinking tree and, for
    growing trees, an empty or oversized proof and any hash that is not 32 bytes.
    """
    check_size("old_size", old_size)
    check_size("new_size", new_size)
    check_bytes("old_root", old_root)
    check_bytes("new_root", new_root)
    check_proof_list("proof", proof)
    if not sizes_fit(old_size, new_size) or old_size > new_size or old_size == 0:
        return False
    if old_size == new_size:
        return not proof and bytes(old_root) == bytes(new_root)
    if not (is_digest(old_root) and is_digest(new_root)):
        return False
    if not proof or len(proof) > MAX_PROOF_HASHES or not all(is_digest(p) for p in proof):
        return False
    return None

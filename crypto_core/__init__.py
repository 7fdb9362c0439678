"""crypto_core: hashing, RFC 9162 Merkle trees and proofs, and Ed25519 signatures.

The Merkle functions come from the Cython accelerator (``_merkle_c``) when it is built, else
from the pure-Python reference (``_merkle_py``); both behave identically (the tests run every
test on both). ``CRYPTO_CORE_PUREPYTHON=1`` forces the reference. On the accelerator,
``CRYPTO_CORE_SHA256_PATH=portable|shani|avx512`` forces a SHA-256 kernel (default: the fastest
this CPU supports, found with CPUID); ``backend_details()`` says which one runs.
"""

from __future__ import annotations

import os
from types import ModuleType

from crypto_core import _merkle_py
from crypto_core._contract import DIGEST_SIZE, MAX_TREE_SIZE


def _load_backend() -> tuple[ModuleType, str]:
    if os.environ.get("CRYPTO_CORE_PUREPYTHON", "") not in ("", "0"):
        return _merkle_py, "python"
    try:
        from crypto_core import _merkle_c  # noqa: PLC0415  (optional compiled module)
    except ImportError:  # not compiled (e.g. a source tree without the build step)
        return _merkle_py, "python"
    wanted_path = os.environ.get("CRYPTO_CORE_SHA256_PATH") or None
    _merkle_c.select_sha256_path(wanted_path)
    return _merkle_c, "cython"


_backend, BACKEND = _load_backend()

hash_leaf = _backend.hash_leaf
hash_children = _backend.hash_children
merkle_root = _backend.merkle_root
inclusion_proof = _backend.inclusion_proof
verify_inclusion = _backend.verify_inclusion
consistency_proof = _backend.consistency_proof
verify_consistency = _backend.verify_consistency
verify_inclusion_batch = _backend.verify_inclusion_batch
EMPTY_ROOT: bytes = _merkle_py.EMPTY_ROOT


def backend_details() -> dict[str, object]:
    """Which implementation runs: backend name, SHA-256 path and the paths this CPU supports."""
    if BACKEND == "cython":
        return {
            "backend": BACKEND,
            "sha256_path": _backend.current_sha256_path(),
            "supported_sha256_paths": _backend.supported_sha256_paths(),
        }
    return {"backend": BACKEND, "sha256_path": "hashlib", "supported_sha256_paths": ["hashlib"]}


from crypto_core.merkle_tree import MerkleTree  # noqa: E402  (needs the functions above)

__all__ = [
    "BACKEND",
    "DIGEST_SIZE",
    "EMPTY_ROOT",
    "MAX_TREE_SIZE",
    "MerkleTree",
    "backend_details",
    "consistency_proof",
    "hash_children",
    "hash_leaf",
    "inclusion_proof",
    "merkle_root",
    "verify_consistency",
    "verify_inclusion",
    "verify_inclusion_batch",
]

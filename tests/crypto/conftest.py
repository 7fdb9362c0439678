"""Every crypto_core test runs on every backend: the pure-Python reference, and the Cython
accelerator on each SHA-256 path this CPU supports (portable, SHA extensions, AVX-512)."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from crypto_core import _merkle_c, _merkle_py

BACKENDS: list[tuple[str, ModuleType, str | None]] = [("python", _merkle_py, None)] + [
    (f"cython-{path}", _merkle_c, path) for path in _merkle_c.supported_sha256_paths()
]


@pytest.fixture(params=BACKENDS, ids=[name for name, _, _ in BACKENDS])
def merkle(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """A Merkle backend module, with its SHA-256 path selected for the test."""
    _, module, path = request.param
    previous = _merkle_c.current_sha256_path()
    if path is not None:
        _merkle_c.select_sha256_path(path)
    try:
        yield module
    finally:
        _merkle_c.select_sha256_path(previous)

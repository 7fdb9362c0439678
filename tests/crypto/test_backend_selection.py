"""Backend selection at import: the accelerator by default, the reference when forced, and a
forced SHA-256 path reported by backend_details()."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import crypto_core
from crypto_core import _merkle_c

PROBE = (
    "import json, crypto_core; "
    "print(json.dumps([crypto_core.BACKEND, crypto_core.backend_details(), "
    "crypto_core.merkle_root([bytes(32)] * 3).hex()]))"
)


def _probe(**env: str) -> list[object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTO_CORE_")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, check=True, capture_output=True
    )
    result: list[object] = json.loads(out.stdout)
    return result


def test_default_is_the_accelerator_on_the_fastest_path() -> None:
    backend, details, _ = _probe()
    assert backend == "cython"
    assert isinstance(details, dict)
    assert details["sha256_path"] == _merkle_c.supported_sha256_paths()[-1]


def test_purepython_flag_forces_the_reference_with_the_same_answer() -> None:
    forced = _probe(CRYPTO_CORE_PUREPYTHON="1")
    default = _probe()
    assert forced[0] == "python"
    assert forced[2] == default[2]


@pytest.mark.parametrize("path", _merkle_c.supported_sha256_paths())
def test_sha256_path_can_be_forced(path: str) -> None:
    _, details, root = _probe(CRYPTO_CORE_SHA256_PATH=path)
    assert isinstance(details, dict) and details["sha256_path"] == path
    assert root == crypto_core.merkle_root([bytes(32)] * 3).hex()


def test_unknown_path_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown SHA-256 path"):
        _merkle_c.select_sha256_path("sha3")

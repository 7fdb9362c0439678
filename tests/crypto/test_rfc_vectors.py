"""The published RFC 6962 / RFC 9162 proof vectors (transparency-dev/merkle testdata), every
happy path and every corrupted variant, on every backend."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

VECTORS = Path(__file__).resolve().parent.parent / "data" / "rfc6962"


def _cases(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text())
    return case


def test_vector_sets_are_complete() -> None:
    # The copy must hold the whole published set: losing files would silently weaken the suite.
    assert len(_cases("inclusion")) == 98
    assert len(_cases("consistency")) == 98
    assert any(_load(p)["wantErr"] for p in _cases("inclusion"))


@pytest.mark.parametrize("path", _cases("inclusion"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_inclusion_vector(merkle: ModuleType, path: Path) -> None:
    case = _load(path)
    proof = [_b64(p) for p in case["proof"] or []]
    ok = merkle.verify_inclusion(
        _b64(case["leafHash"]), case["leafIdx"], case["treeSize"], proof, _b64(case["root"])
    )
    assert ok is (not case["wantErr"]), case["desc"]
    batch = merkle.verify_inclusion_batch(
        [(_b64(case["leafHash"]), case["leafIdx"], case["treeSize"], proof, _b64(case["root"]))]
    )
    assert batch == [not case["wantErr"]]


@pytest.mark.parametrize("path", _cases("consistency"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_consistency_vector(merkle: ModuleType, path: Path) -> None:
    case = _load(path)
    proof = [_b64(p) for p in case["proof"] or []]
    ok = merkle.verify_consistency(
        case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), proof
    )
    assert ok is (not case["wantErr"]), case["desc"]

"""The pure node modules and the shipped fakes import no I/O, clock or ambient randomness."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE_MODULES = sorted(
    [
        *(ROOT / "node" / name for name in ("types.py", "txs.py", "errors.py", "ports.py")),
        *(ROOT / "node" / "codec").glob("*.py"),
        ROOT / "node" / "mempool.py",
        *(ROOT / "node" / "app").glob("*.py"),
    ]
)
FAKES = sorted((ROOT / "node" / "testing").glob("*.py"))
# I/O, wall clock, ambient randomness, threads, and the layers pure code must not reach.
FORBIDDEN = {
    "asyncio",
    "concurrent",
    "datetime",
    "libp2p",
    "netsim",
    "os",
    "plyvel",
    "random",
    "secrets",
    "socket",
    "threading",
    "time",
    "trio",
    "uuid",
}
FORBIDDEN_FOR_PURE = {"node.runtime", "node.adapters", "node.api", "node.cli", "node.testing"}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def violations(path: Path, forbidden: set[str]) -> list[str]:
    return sorted(
        name
        for name in imported_modules(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_modules_import_nothing_impure(path: Path) -> None:
    assert violations(path, FORBIDDEN | FORBIDDEN_FOR_PURE) == []


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_modules_use_no_float_literals(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    floats = [
        n.lineno for n in ast.walk(tree) if isinstance(n, ast.Constant) and type(n.value) is float
    ]
    assert floats == [], f"float literals at lines {floats}: state and hashes must be integers"


@pytest.mark.parametrize("path", FAKES, ids=lambda p: str(p.relative_to(ROOT)))
def test_fakes_stay_deterministic(path: Path) -> None:
    assert violations(path, FORBIDDEN) == []


def test_the_check_sees_imports() -> None:
    sample = ROOT / "node" / "mempool.py"
    assert "node.codec" in imported_modules(sample) and len(PURE_MODULES) >= 15

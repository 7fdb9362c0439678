"""Merkle benchmark: the Cython accelerator against the pure-Python reference, side by side.

    python -m bench.merkle [--json PATH] [--repeat N] [--smoke]

Each case runs on both backends alternately, ``--repeat`` times, and keeps the best time of
each: the ratio ``python / cython`` of one run is what the targets speak of, since absolute
times drift on shared machines. Targets (on a CPU with AVX-512): root of 2^20 leaves >= 9x, a
batch of 10,000 depth-20 proofs >= 10x. ``--smoke`` runs tiny sizes once, for the test suite.
Exit status: 0, or 1 when a target is missed in a full run on a CPU with AVX-512.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from crypto_core import MerkleTree, _merkle_c, _merkle_py

Item = tuple[bytes, int, int, list[bytes], bytes]


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one run."""

    small_log2: int
    large_log2: int
    proofs: int
    single_calls: int


FULL = Sizes(small_log2=16, large_log2=20, proofs=10_000, single_calls=2_000)
SMOKE = Sizes(small_log2=8, large_log2=10, proofs=200, single_calls=50)
TARGETS = {"root_large": 9.0, "verify_batch": 10.0}


@dataclass
class Row:
    """One benchmark case: best seconds per backend and the speed-up."""

    case: str
    what: str
    python_s: float
    cython_s: float
    target: float | None = None

    @property
    def ratio(self) -> float:
        return self.python_s / self.cython_s if self.cython_s > 0 else float("inf")

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.ratio >= self.target


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """The least wall time of ``repeat`` calls (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def side_by_side(
    repeat: int, run: Callable[[ModuleType], object], check: Callable[[object], None]
) -> tuple[float, float]:
    """Alternate the two backends ``repeat`` times; results must agree (checked once)."""
    check(run(_merkle_py))
    check(run(_merkle_c))
    py_best = cy_best = float("inf")
    for _ in range(repeat):
        py_best = min(py_best, best_of(1, lambda: run(_merkle_py)))
        cy_best = min(cy_best, best_of(1, lambda: run(_merkle_c)))
    return py_best, cy_best


def make_leaves(log2: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(1 << log2)]


def make_items(leaves: list[bytes], count: int) -> list[Item]:
    """``count`` inclusion proofs spread over the tree (depth log2 of its size)."""
    root = _merkle_c.merkle_root(leaves)
    step = max(1, len(leaves) // count)
    indices = [(i * step * 7919) % len(leaves) for i in range(count)]
    tree = MerkleTree(leaves, backend=_merkle_c)  # one O(n) build, then O(log n) a proof
    return [(leaves[i], i, len(leaves), tree.inclusion_proof(i), root) for i in indices]


def equal_to(expected: object) -> Callable[[object], None]:
    def check(result: object) -> None:
        if result != expected:
            raise AssertionError("the backends disagree: the benchmark is void")

    return check


def root_rows(sizes: Sizes, repeat: int, large: list[bytes]) -> list[Row]:
    small = large[: 1 << sizes.small_log2]
    rows = []
    for case, leaves, log2 in (
        ("root_small", small, sizes.small_log2),
        ("root_large", large, sizes.large_log2),
    ):
        expected = _merkle_py.merkle_root(leaves)

        def root_of(m: ModuleType, lv: list[bytes] = leaves) -> bytes:
            root: bytes = m.merkle_root(lv)
            return root

        py_s, cy_s = side_by_side(repeat, root_of, equal_to(expected))
        rows.append(Row(case, f"merkle_root of 2^{log2} leaves", py_s, cy_s, TARGETS.get(case)))
    return rows


def proof_rows(sizes: Sizes, repeat: int, large: list[bytes], items: list[Item]) -> list[Row]:
    small = large[: 1 << sizes.small_log2]
    index = len(small) // 3
    expected_path = _merkle_py.inclusion_proof(small, index)
    py_s, cy_s = side_by_side(
        repeat, lambda m: m.inclusion_proof(small, index), equal_to(expected_path)
    )
    rows = [Row("proof_gen", f"inclusion_proof over 2^{sizes.small_log2} leaves", py_s, cy_s)]
    singles = items[: sizes.single_calls]
    py_s, cy_s = side_by_side(
        repeat,
        lambda m: [m.verify_inclusion(*it) for it in singles],
        equal_to([True] * len(singles)),
    )
    rows.append(
        Row(
            "verify_single",
            f"{len(singles)} x verify_inclusion, depth {sizes.large_log2}",
            py_s,
            cy_s,
        )
    )
    py_s, cy_s = side_by_side(
        repeat,
        lambda m: m.verify_inclusion_batch(items),
        equal_to([True] * len(items)),
    )
    rows.append(
        Row(
            "verify_batch",
            f"verify_inclusion_batch of {len(items)}, depth {sizes.large_log2}",
            py_s,
            cy_s,
            TARGETS["verify_batch"],
        )
    )
    return rows


def two_thread_speedup(items: list[Item], repeat: int) -> float:
    """Batch verification on two threads vs one: > 1 only if the GIL is released."""
    half = len(items) // 2

    def two() -> None:
        threads = [
            threading.Thread(target=_merkle_c.verify_inclusion_batch, args=(part,))
            for part in (items[:half], items[half:])
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    one_s = best_of(repeat, lambda: _merkle_c.verify_inclusion_batch(items))
    two_s = best_of(repeat, two)
    return one_s / two_s


def machine() -> dict[str, Any]:
    model = ""
    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model:
                model = value.strip()
            if key.strip() == "flags" and not flags:
                flags = set(value.split())
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "avx512f": "avx512f" in flags,
        "sha_ni": "sha_ni" in flags,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "sha256_path": _merkle_c.current_sha256_path(),
        "supported_sha256_paths": _merkle_c.supported_sha256_paths(),
    }


def render(
    rows: Sequence[Row], info: dict[str, Any], threads: float, *, smoke: bool = False
) -> str:
    lines = [
        f"machine: {info['cpu']} ({info['cores']} cores), python {info['python']}, "
        f"SHA-256 path {info['sha256_path']} (of {', '.join(info['supported_sha256_paths'])})",
        f"{'case':<14} {'what':<46} {'python':>10} {'cython':>10} {'ratio':>8} {'target':>8}",
    ]
    for r in rows:
        target = "" if r.target is None else f">={r.target:.0f}x " + ("ok" if r.met else "MISS")
        lines.append(
            f"{r.case:<14} {r.what:<46} {r.python_s * 1e3:>8.2f}ms {r.cython_s * 1e3:>8.2f}ms "
            f"{r.ratio:>7.1f}x {target:>8}"
        )
    lines.append(f"batch verification on 2 threads vs 1 (GIL released): {threads:.2f}x")
    if smoke:
        lines.append(
            "smoke run: sizes too small for the figures above to mean anything (thread start-up "
            "and timer resolution dominate); run without --smoke to measure"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.merkle", description=__doc__)
    parser.add_argument("--json", type=Path, help="write the results and ratios to this file")
    parser.add_argument("--repeat", type=int, default=5, help="runs per backend (best kept)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run (for tests)")
    args = parser.parse_args(argv)
    sizes, repeat = (SMOKE, 1) if args.smoke else (FULL, max(1, args.repeat))

    large = make_leaves(sizes.large_log2)
    items = make_items(large, sizes.proofs)
    rows = root_rows(sizes, repeat, large) + proof_rows(sizes, repeat, large, items)
    threads = two_thread_speedup(items, repeat)
    info = machine()
    print(render(rows, info, threads, smoke=args.smoke))

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "mode": "smoke" if args.smoke else "full",
            "machine": info,
            "rows": [asdict(r) | {"ratio": r.ratio, "met": r.met} for r in rows],
            "ratios": {r.case: r.ratio for r in rows},
            "two_thread_batch_speedup": threads,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    missed = [r.case for r in rows if r.met is False]
    if missed and not args.smoke and info["avx512f"]:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

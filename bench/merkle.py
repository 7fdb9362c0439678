"""Merkle benchmark: the Cython accelerator against the pure-Python reference, side by side.

    python -m bench.merkle [--json PATH] [--repeat N] [--smoke]

Each case runs on both backends alternately, ``--repeat`` times: a pair of runs (python,
then cython) shares the machine's state of the moment, so each pair gives one ratio
``python / cython``, and the table shows the least, median and greatest of those ratios and
the median time of each backend (bench/common.py). The ratio is what the targets speak of,
since absolute times drift on shared machines; a target is judged on the median ratio.
Targets (on a CPU with AVX-512): root of 2^20 leaves >= 9x, a batch of 10,000 depth-20
proofs >= 10x. ``--smoke`` runs tiny sizes once, for the test suite: its figures mean
nothing, and it says so. Exit status: 0, or 1 when a target is missed in a full run on a CPU
with AVX-512.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

from bench.common import (
    Column,
    Stats,
    bench_parser,
    cpu_flags,
    machine_facts,
    machine_line,
    mode_of,
    render_table,
    seconds_of,
    sizes_for,
    write_json,
)
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
    """One benchmark case: the seconds of each backend's runs and the ratio of each pair."""

    case: str
    what: str
    python_s: Stats
    cython_s: Stats
    ratios: Stats
    """``python / cython`` of each alternated pair of runs."""
    target: float | None = None

    @property
    def ratio(self) -> float:
        """The median ratio: the figure the targets are judged on."""
        return self.ratios.median

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.ratio >= self.target


def side_by_side(
    repeat: int, run: Callable[[ModuleType], object], check: Callable[[object], None]
) -> tuple[Stats, Stats, Stats]:
    """Alternate the two backends ``repeat`` times (results must agree, checked once): the
    seconds of the python runs, of the cython runs, and the ratio of each pair."""
    check(run(_merkle_py))
    check(run(_merkle_c))
    pairs = [
        (seconds_of(lambda: run(_merkle_py)), seconds_of(lambda: run(_merkle_c)))
        for _ in range(max(1, repeat))
    ]
    return (
        Stats.of(py for py, _ in pairs),
        Stats.of(cy for _, cy in pairs),
        Stats.of(py / cy if cy > 0 else float("inf") for py, cy in pairs),
    )


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

        times = side_by_side(repeat, root_of, equal_to(expected))
        rows.append(Row(case, f"merkle_root of 2^{log2} leaves", *times, TARGETS.get(case)))
    return rows


def proof_rows(sizes: Sizes, repeat: int, large: list[bytes], items: list[Item]) -> list[Row]:
    small = large[: 1 << sizes.small_log2]
    index = len(small) // 3
    expected_path = _merkle_py.inclusion_proof(small, index)
    times = side_by_side(repeat, lambda m: m.inclusion_proof(small, index), equal_to(expected_path))
    rows = [Row("proof_gen", f"inclusion_proof over 2^{sizes.small_log2} leaves", *times)]
    singles = items[: sizes.single_calls]
    times = side_by_side(
        repeat,
        lambda m: [m.verify_inclusion(*it) for it in singles],
        equal_to([True] * len(singles)),
    )
    rows.append(
        Row(
            "verify_single",
            f"{len(singles)} x verify_inclusion, depth {sizes.large_log2}",
            *times,
        )
    )
    times = side_by_side(
        repeat,
        lambda m: m.verify_inclusion_batch(items),
        equal_to([True] * len(items)),
    )
    rows.append(
        Row(
            "verify_batch",
            f"verify_inclusion_batch of {len(items)}, depth {sizes.large_log2}",
            *times,
            TARGETS["verify_batch"],
        )
    )
    return rows


def two_thread_speedup(items: list[Item], repeat: int) -> Stats:
    """Batch verification on two threads vs one, one ratio per alternated pair of runs:
    > 1 only if the GIL is released."""
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

    ratios = []
    for _ in range(max(1, repeat)):
        one_s = seconds_of(lambda: _merkle_c.verify_inclusion_batch(items))
        two_s = seconds_of(two)
        ratios.append(one_s / two_s if two_s > 0 else float("inf"))
    return Stats.of(ratios)


def machine() -> dict[str, Any]:
    """Where the figures were measured, with the CPU's SHA-256 paths."""
    flags = cpu_flags()
    return machine_facts(
        avx512f="avx512f" in flags,
        sha_ni="sha_ni" in flags,
        sha256_path=_merkle_c.current_sha256_path(),
        supported_sha256_paths=_merkle_c.supported_sha256_paths(),
    )


COLUMNS = (
    Column("case", 14),
    Column("what", 44),
    Column("python ms", 10, ">", ",.2f"),
    Column("cython ms", 10, ">", ",.2f"),
    Column("ratio min", 9, ">", ".1f"),
    Column("median", 7, ">", ".1f"),
    Column("max", 7, ">", ".1f"),
    Column("target", 10, ">"),
)
SMOKE_NOTE = (
    "smoke sizes: every figure above, the thread ratio included, measures thread start-up "
    "and timer resolution, not the code; run without --smoke to measure"
)


def render(
    rows: Sequence[Row], info: dict[str, Any], threads: Stats, repeat: int, *, smoke: bool
) -> str:
    """The table of ``rows`` (``repeat`` alternated pairs of runs per case) and the 2-vs-1
    thread ratios ``threads``; a ``smoke`` run says that its figures mean nothing."""
    heading = (
        f"{machine_line(info)}\nSHA-256 path {info['sha256_path']} (of "
        f"{', '.join(info['supported_sha256_paths'])}); {max(1, repeat)} alternated run(s) "
        "per backend: median times, and min / median / max of the per-pair ratios"
    )
    table = render_table(
        COLUMNS,
        (
            (
                r.case,
                r.what,
                r.python_s.median * 1e3,
                r.cython_s.median * 1e3,
                r.ratios.min,
                r.ratios.median,
                r.ratios.max,
                "" if r.target is None else f">={r.target:.0f}x " + ("ok" if r.met else "MISS"),
            )
            for r in rows
        ),
    )
    threads_line = (
        "batch verification on 2 threads vs 1 (> 1 only if the GIL is released): "
        f"median {threads.median:.2f}x (min {threads.min:.2f}, max {threads.max:.2f})"
    )
    if smoke:
        threads_line += " (meaningless at smoke sizes)"
    return "\n".join([heading, table, threads_line, *([SMOKE_NOTE] if smoke else [])])


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(
        "merkle",
        __doc__,
        repeat=5,
        json_help="write the results and ratios to this file",
        repeat_help="alternated runs per backend (min/median/max)",
    )
    args = parser.parse_args(argv)
    sizes, repeat = sizes_for(args.smoke, SMOKE, FULL, args.repeat)

    large = make_leaves(sizes.large_log2)
    items = make_items(large, sizes.proofs)
    rows = root_rows(sizes, repeat, large) + proof_rows(sizes, repeat, large, items)
    threads = two_thread_speedup(items, repeat)
    info = machine()
    print(render(rows, info, threads, repeat, smoke=args.smoke))
    if args.json:
        results = [asdict(r) | {"ratio": r.ratio, "met": r.met} for r in rows]
        write_json(
            args.json,
            "merkle",
            info,
            results,
            mode=mode_of(args.smoke),
            repeat=repeat,
            sizes=asdict(sizes),
            rows=results,
            ratios={r.case: r.ratio for r in rows},
            two_thread_batch_speedup=asdict(threads),
        )
    missed = [r.case for r in rows if r.met is False]
    if missed and not args.smoke and info["avx512f"]:
        print(f"targets missed (median ratio): {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Chain-core benchmark: blocks/s and tx/s of a 4-node in-memory cluster (NodeCore).

    python -m bench.core [--json PATH] [--repeat N] [--smoke]

Every node runs in one thread, in virtual time (``node.testing.cluster``): the figures are
the CPU cost of the whole chain core for all four nodes together — consensus with real
signatures, the durable log on ``MemoryStorage``, block validation, execution and state
commits — with no waiting. A real deployment runs one node per process, so a single node
does about a quarter of this work per block.

Cases (``--repeat`` runs each; the table's ``best`` is the fastest run, as before, beside the
least, median and greatest figure of the runs):
- ``empty_blocks``: blocks without transactions, the consensus path alone (blocks/s);
- ``loaded_blocks`` / ``loaded_txs``: a workload of signed ``kv.set`` transactions
  submitted to the validators, gossiped, proposed, validated and executed by all four
  (blocks/s and committed tx/s).

``--smoke`` runs tiny sizes once so a test can keep the benchmark from rotting.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import crypto_core
from bench.common import (
    BestRow,
    Stats,
    bench_parser,
    best_columns,
    machine_facts,
    render_best,
    sizes_for,
    write_case_rows,
)
from node.chain import NodeConfig
from node.mempool import MempoolLimits
from node.testing.cluster import Cluster

VALIDATORS = 4


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one run."""

    empty_blocks: int
    loaded_blocks: int
    txs_per_second: int
    """Workload rate in virtual time (about one block per virtual second)."""
    clients: int


FULL = Sizes(empty_blocks=200, loaded_blocks=20, txs_per_second=1_000, clients=64)
SMOKE = Sizes(empty_blocks=5, loaded_blocks=3, txs_per_second=50, clients=4)


@dataclass(frozen=True)
class Run:
    """One measured cluster run."""

    seconds: float
    blocks: int
    txs: int


def run_cluster(blocks: int, sizes: Sizes, *, loaded: bool) -> Run:
    """Commit ``blocks`` blocks on every node; the wall time covers only the run."""
    config = NodeConfig(mempool=MempoolLimits(max_txs=20_000, max_txs_per_account=256))
    cluster = Cluster(
        validators=VALIDATORS,
        seed="bench",
        config=config,
        clients=sizes.clients,
        txs_per_second=sizes.txs_per_second if loaded else 0,
    )
    start = time.perf_counter()
    cluster.run_until(height=blocks)
    seconds = time.perf_counter() - start
    assert cluster.violations == [], cluster.violations
    txs = sum(record.num_txs for h, record in cluster.nodes["v0"].commits.items() if h <= blocks)
    return Run(seconds, blocks, txs)


def runs(repeat: int, blocks: int, sizes: Sizes, *, loaded: bool) -> list[Run]:
    """``repeat`` runs (at least one), the fastest first (the least disturbed by other load)."""
    done = [run_cluster(blocks, sizes, loaded=loaded) for _ in range(max(1, repeat))]
    return sorted(done, key=lambda r: r.seconds)


def row_of(
    case: str, what: str, unit: str, done: Sequence[Run], figure: Callable[[Run], float]
) -> BestRow:
    """``figure`` of the fastest run (``done[0]``, as ``runs`` orders them), beside the spread
    of every run's."""
    return BestRow(case, what, figure(done[0]), unit, Stats.of(figure(r) for r in done))


def blocks_per_s(run: Run) -> float:
    """Blocks committed per wall second of ``run``."""
    return run.blocks / run.seconds


def txs_per_s(run: Run) -> float:
    """Transactions committed per wall second of ``run``."""
    return run.txs / run.seconds


def rows_for(sizes: Sizes, repeat: int) -> list[BestRow]:
    """Every case at ``sizes``: the fastest of ``repeat`` runs, and the spread of them all."""
    empty = runs(repeat, sizes.empty_blocks, sizes, loaded=False)
    loaded = runs(repeat, sizes.loaded_blocks, sizes, loaded=True)
    blocks, best = empty[0].blocks, loaded[0]
    per_block = best.txs / best.blocks
    return [
        row_of(
            "empty_blocks",
            f"{blocks} empty blocks, {VALIDATORS} nodes",
            "blocks/s",
            empty,
            blocks_per_s,
        ),
        row_of(
            "loaded_blocks",
            f"{best.blocks} blocks of ~{per_block:.0f} kv.set txs",
            "blocks/s",
            loaded,
            blocks_per_s,
        ),
        row_of(
            "loaded_txs",
            f"{best.txs} txs committed by all {VALIDATORS} nodes",
            "tx/s",
            loaded,
            txs_per_s,
        ),
    ]


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    return machine_facts(merkle_backend=crypto_core.BACKEND)


COLUMNS = best_columns(case=15, what=46, unit=8)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; see the module docstring for the options."""
    args = bench_parser("core", __doc__).parse_args(argv)
    sizes, repeat = sizes_for(args.smoke, SMOKE, FULL, args.repeat)
    rows = rows_for(sizes, repeat)
    info = machine()
    print(render_best(COLUMNS, rows, info, repeat))
    if args.json:
        write_case_rows(
            args.json,
            "core",
            info,
            rows,
            smoke=args.smoke,
            figures="values",
            repeat=repeat,
            sizes=asdict(sizes),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

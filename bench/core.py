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

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import crypto_core
from bench.common import Column, Stats, machine_facts, machine_line, render_table, write_json
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


@dataclass
class Row:
    """One case: its result (of the fastest run) and unit, and the spread of all runs."""

    case: str
    what: str
    value: float
    unit: str
    spread: Stats


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


def rows_for(sizes: Sizes, repeat: int) -> list[Row]:
    """Every case at ``sizes``: the fastest of ``repeat`` runs, and the spread of them all."""
    empty = runs(repeat, sizes.empty_blocks, sizes, loaded=False)
    loaded = runs(repeat, sizes.loaded_blocks, sizes, loaded=True)
    fastest, best = empty[0], loaded[0]
    per_block = best.txs / best.blocks
    return [
        Row(
            "empty_blocks",
            f"{fastest.blocks} empty blocks, {VALIDATORS} nodes",
            fastest.blocks / fastest.seconds,
            "blocks/s",
            Stats.of(r.blocks / r.seconds for r in empty),
        ),
        Row(
            "loaded_blocks",
            f"{best.blocks} blocks of ~{per_block:.0f} kv.set txs",
            best.blocks / best.seconds,
            "blocks/s",
            Stats.of(r.blocks / r.seconds for r in loaded),
        ),
        Row(
            "loaded_txs",
            f"{best.txs} txs committed by all {VALIDATORS} nodes",
            best.txs / best.seconds,
            "tx/s",
            Stats.of(r.txs / r.seconds for r in loaded),
        ),
    ]


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    return machine_facts(merkle_backend=crypto_core.BACKEND)


COLUMNS = (
    Column("case", 15),
    Column("what", 46),
    Column("best", 12, ">", ",.1f"),
    Column("min", 12, ">", ",.1f"),
    Column("median", 12, ">", ",.1f"),
    Column("max", 12, ">", ",.1f"),
    Column("unit", 8),
)


def render(rows: Sequence[Row], info: dict[str, Any], repeat: int = 1) -> str:
    """The results as a table: ``best`` is the fastest run's figure."""
    heading = (
        f"{machine_line(info)}, merkle backend {info['merkle_backend']}\n"
        f"best: the fastest of {repeat} run(s); min / median / max: over all of them"
    )
    table = render_table(
        COLUMNS,
        (
            (r.case, r.what, r.value, r.spread.min, r.spread.median, r.spread.max, r.unit)
            for r in rows
        ),
    )
    return f"{heading}\n{table}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; see the module docstring for the options."""
    parser = argparse.ArgumentParser(prog="python -m bench.core", description=__doc__)
    parser.add_argument("--json", type=Path, help="write the results to this file")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per case (fastest, min, median, max shown)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run (for tests)")
    args = parser.parse_args(argv)
    sizes, repeat = (SMOKE, 1) if args.smoke else (FULL, max(1, args.repeat))
    rows = rows_for(sizes, repeat)
    info = machine()
    print(render(rows, info, repeat))
    if args.json:
        results = [asdict(r) for r in rows]
        write_json(
            args.json,
            "core",
            info,
            results,
            mode="smoke" if args.smoke else "full",
            repeat=repeat,
            sizes=asdict(sizes),
            rows=results,
            values={r.case: r.value for r in rows},
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

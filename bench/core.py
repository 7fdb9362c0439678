"""Chain-core benchmark: blocks/s and tx/s of a 4-node in-memory cluster (NodeCore).

    python -m bench.core [--json PATH] [--repeat N] [--smoke]

Every node runs in one thread, in virtual time (``node.testing.cluster``): the figures are
the CPU cost of the whole chain core for all four nodes together — consensus with real
signatures, the durable log on ``MemoryStorage``, block validation, execution and state
commits — with no waiting. A real deployment runs one node per process, so a single node
does about a quarter of this work per block.

Cases (best of ``--repeat`` runs each):
- ``empty_blocks``: blocks without transactions, the consensus path alone (blocks/s);
- ``loaded_blocks`` / ``loaded_txs``: a workload of signed ``kv.set`` transactions
  submitted to the validators, gossiped, proposed, validated and executed by all four
  (blocks/s and committed tx/s).

``--smoke`` runs tiny sizes once so a test can keep the benchmark from rotting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import crypto_core
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
    """One case: its result and unit."""

    case: str
    what: str
    value: float
    unit: str


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


def best(repeat: int, blocks: int, sizes: Sizes, *, loaded: bool) -> Run:
    """The fastest of ``repeat`` runs (the least disturbed by other load)."""
    return min(
        (run_cluster(blocks, sizes, loaded=loaded) for _ in range(repeat)), key=lambda r: r.seconds
    )


def rows_for(sizes: Sizes, repeat: int) -> list[Row]:
    """Every case at ``sizes``, best of ``repeat`` runs."""
    empty = best(repeat, sizes.empty_blocks, sizes, loaded=False)
    loaded = best(repeat, sizes.loaded_blocks, sizes, loaded=True)
    per_block = loaded.txs / loaded.blocks
    return [
        Row(
            "empty_blocks",
            f"{empty.blocks} empty blocks, {VALIDATORS} nodes",
            empty.blocks / empty.seconds,
            "blocks/s",
        ),
        Row(
            "loaded_blocks",
            f"{loaded.blocks} blocks of ~{per_block:.0f} kv.set txs",
            loaded.blocks / loaded.seconds,
            "blocks/s",
        ),
        Row(
            "loaded_txs",
            f"{loaded.txs} txs committed by all {VALIDATORS} nodes",
            loaded.txs / loaded.seconds,
            "tx/s",
        ),
    ]


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
                break
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "merkle_backend": crypto_core.BACKEND,
    }


def render(rows: Sequence[Row], info: dict[str, Any]) -> str:
    """The results as a table."""
    lines = [
        f"machine: {info['cpu']} ({info['cores']} cores), python {info['python']}, "
        f"merkle backend {info['merkle_backend']}",
        f"{'case':<15} {'what':<46} {'value':>12} {'unit':<8}",
    ]
    lines += [f"{r.case:<15} {r.what:<46} {r.value:>12,.1f} {r.unit:<8}" for r in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; see the module docstring for the options."""
    parser = argparse.ArgumentParser(prog="python -m bench.core", description=__doc__)
    parser.add_argument("--json", type=Path, help="write the results to this file")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (best kept)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run (for tests)")
    args = parser.parse_args(argv)
    sizes, repeat = (SMOKE, 1) if args.smoke else (FULL, max(1, args.repeat))
    rows = rows_for(sizes, repeat)
    info = machine()
    print(render(rows, info))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "mode": "smoke" if args.smoke else "full",
            "machine": info,
            "sizes": asdict(sizes),
            "rows": [asdict(r) for r in rows],
            "values": {r.case: r.value for r in rows},
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

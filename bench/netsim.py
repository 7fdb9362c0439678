"""Simulator benchmark: the engine, the network model, and whole runs of the chain core.

    python -m bench.netsim [--json PATH] [--smoke]

Cases (wall time on this machine; virtual-time figures come from the runs themselves):
- ``engine_events``: no-op events scheduled and run by the event loop, per second.
- ``network_messages``: messages through ``SimNetwork`` (uplink, latency, jitter, FIFO,
  delivery) to a sink, per second.
- ``core_small_*``: 4 validators (``NodeCore``) deciding ``small_heights`` heights.
- ``core_scale_*``: ``scale_validators`` validators plus ``scale_others`` non-validators
  deciding ``scale_heights`` heights — the issue's scale goal (64 + 1,000 nodes, 50 heights):
  wall time, cost per delivered message, messages delivered, and the virtual time it covered.

``--smoke`` runs tiny sizes so a test can keep the benchmark from rotting.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.common import (
    Column,
    bench_parser,
    machine_facts,
    machine_line,
    render_table,
    write_case_rows,
)
from netsim.config import SimConfig
from netsim.core_adapter import CoreBuilder
from netsim.engine import EventLoop
from netsim.network import SimNetwork
from netsim.node_api import Envelope
from netsim.regions import LatencyTable
from netsim.result import RunResult
from netsim.simulation import Simulation
from netsim.topology import build_topology


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one benchmark run."""

    engine_events: int
    network_messages: int
    small_heights: int
    scale_validators: int
    scale_others: int
    scale_heights: int


FULL = Sizes(500_000, 200_000, 30, 64, 1_000, 50)
SMOKE = Sizes(2_000, 1_000, 2, 7, 20, 2)


@dataclass
class Row:
    """One case: its result and unit."""

    case: str
    what: str
    value: float
    unit: str


def engine_rows(sizes: Sizes) -> list[Row]:
    loop = EventLoop()
    count = sizes.engine_events
    started = time.perf_counter()
    for index in range(count):
        loop.at(index % 10_000, _ignore, None)
    loop.run(10_000)
    elapsed = time.perf_counter() - started
    assert loop.events_run == count
    return [Row("engine_events", f"{count:,} no-op events", count / elapsed, "ev/s")]


def network_rows(sizes: Sizes) -> list[Row]:
    loop = EventLoop()
    topology = build_topology(16, 16, LatencyTable.preset("global"), random.Random(1))
    delivered = [0]

    def sink(src: int, dst: int, envelope: Envelope) -> None:
        delivered[0] += 1

    network = SimNetwork(loop, topology, random.Random(1), sink)
    envelope = Envelope(bytes(200))
    count = sizes.network_messages
    started = time.perf_counter()
    for index in range(count):
        src = index % 16
        network.send(src, (src + 1 + (index // 16) % 15) % 16, envelope)  # never to itself
        if index % 10_000 == 9_999:
            loop.run(loop.now_us + 1_000_000)
    loop.run(loop.now_us + 10_000_000)
    elapsed = time.perf_counter() - started
    assert delivered[0] == network.stats.delivered > 0
    what = f"{count:,} messages of 200 B, 16 nodes, global"
    return [Row("network_messages", what, count / elapsed, "msg/s")]


def core_run(validators: int, nodes: int, heights: int) -> RunResult:
    config = SimConfig(
        seed=1, validators=validators, nodes=nodes, heights=heights, topology="global"
    )
    result = Simulation(config, CoreBuilder()).run()
    assert result.passed, [v.describe() for v in result.violations]
    return result


def core_rows(prefix: str, validators: int, nodes: int, heights: int) -> list[Row]:
    result = core_run(validators, nodes, heights)
    what = f"{validators} validators + {nodes - validators} others, {heights} heights"
    return [
        Row(f"{prefix}_wall", what, result.wall_time_s, "s"),
        Row(
            f"{prefix}_per_message",
            "wall time per delivered message",
            result.wall_us_per_message,
            "µs",
        ),
        Row(f"{prefix}_messages", "messages delivered", result.messages_delivered, "msg"),
        Row(f"{prefix}_sim_time", "virtual time covered", result.sim_time_s, "s"),
    ]


def _ignore(_: object) -> None:
    pass


COLUMNS = (
    Column("case", 24),
    Column("what", 48),
    Column("value (1 run)", 14, ">", ",.1f"),
    Column("unit", 5),
)


def render(rows: Sequence[Row], info: dict[str, Any]) -> str:
    table = render_table(COLUMNS, ((r.case, r.what, r.value, r.unit) for r in rows))
    return f"{machine_line(info)}\n{table}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser("netsim", __doc__, repeat=None, smoke_help="tiny sizes (for tests)")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    rows = engine_rows(sizes) + network_rows(sizes)
    rows += core_rows("core_small", 4, 4, sizes.small_heights)
    rows += core_rows(
        "core_scale",
        sizes.scale_validators,
        sizes.scale_validators + sizes.scale_others,
        sizes.scale_heights,
    )
    info = machine_facts()
    print(render(rows, info))
    if args.json:
        write_case_rows(
            args.json,
            "netsim",
            info,
            rows,
            smoke=args.smoke,
            figures="values",
            sizes=asdict(sizes),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``RunResult``: what a run established, and the numbers the summary prints.

Everything here is computed after the run from the simulation's counters; percentiles use
the nearest-rank method on bounded samples (:mod:`netsim.samples`). Sim-time figures
(tx/s, latencies) are in virtual time; ``wall_time_s`` and the cost per message are the only
real-time figures and never feed back into a run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Final

from netsim.checkers import Violation
from netsim.faults import FaultOptions

if TYPE_CHECKING:
    from netsim.config import SimConfig
    from netsim.simulation import Simulation

CDF_POINTS: Final = 200
"""Points of the commit-latency CDF kept in a result (evenly spaced ranks)."""


@dataclass(frozen=True, slots=True)
class HeightTiming:
    """When honest nodes decided one height (seconds of virtual time)."""

    height: int
    first_s: float
    last_s: float
    deciders: int


@dataclass(frozen=True, slots=True)
class NodeLoad:
    """Traffic of one node over the run."""

    node: int
    validator: bool
    honest: bool
    messages_sent: int
    bytes_sent: int
    messages_received: int
    bytes_received: int


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome and statistics of one run (``passed``: no checker failed)."""

    config: SimConfig
    fault_options: FaultOptions
    fault_actions: tuple[str, ...]
    fault_times_s: tuple[float, ...]
    byzantine: tuple[int, ...]
    end_reason: str
    sim_time_s: float
    wall_time_s: float
    events: int
    trace_hash: str
    heights_decided: int
    lowest_honest_height: int
    txs_committed: int
    tx_per_sim_s: float
    commit_latency_p50_ms: float | None
    commit_latency_p99_ms: float | None
    block_interval_p50_ms: float | None
    block_interval_p99_ms: float | None
    messages_sent: int
    messages_delivered: int
    bytes_sent: int
    dropped: dict[str, int]
    wall_us_per_message: float
    accusations: int
    rejected_inputs: int
    writes_lost_to_crashes: int
    violation_count: int
    violations: tuple[Violation, ...]
    trace_tail: tuple[str, ...]
    heights: tuple[HeightTiming, ...]
    latency_cdf_ms: tuple[float, ...]
    node_load: tuple[NodeLoad, ...]
    signature_checks: int = 0
    """Ed25519 verifications actually computed."""
    signature_checks_shared: int = 0
    """Verifications answered from the run's shared memo (see ``netsim.memo``)."""
    workload_counts: dict[str, int] = field(default_factory=dict)
    """The workload's counts (``"<group>/<name>"`` -> n, see ``WorkloadReport``)."""

    @property
    def passed(self) -> bool:
        """True when every checker held."""
        return self.violation_count == 0

    def per_node(self, validators: bool) -> tuple[float, float, float, float]:
        """(mean messages, mean bytes, max messages, max bytes) sent+received per node of
        one class (validators or not); zeros if the class is empty."""
        loads = [load for load in self.node_load if load.validator == validators]
        if not loads:
            return (0.0, 0.0, 0.0, 0.0)
        messages = [load.messages_sent + load.messages_received for load in loads]
        sizes = [load.bytes_sent + load.bytes_received for load in loads]
        count = len(loads)
        return (sum(messages) / count, sum(sizes) / count, max(messages), max(sizes))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the config as its replay arguments, enums as names)."""
        data = asdict(self)
        data["config"] = {"argv": self.config.argv(), "seed": self.config.seed}
        data["fault_options"]["kinds"] = [kind.value for kind in self.fault_options.kinds]
        data["passed"] = self.passed
        return data


def summarize(sim: Simulation, end_reason: str, wall_time_s: float) -> RunResult:
    """Collect the result of a finished simulation."""
    log = sim.checkers.log
    stats = sim.network.stats
    sim_time_s = sim.loop.now_us / 1_000_000
    honest_heights = [h for h, honest in zip(log.node_height, sim.honest, strict=True) if honest]
    samples = sim.registry.latency_us
    intervals = _block_intervals_us(sim)
    failed = sim.checkers.failed
    return RunResult(
        config=sim.config,
        fault_options=sim.fault_options,
        fault_actions=tuple(action.describe() for action in sim.plan.actions),
        fault_times_s=tuple(action.at_ms / 1_000 for action in sim.plan.actions),
        byzantine=sim.byzantine,
        end_reason=end_reason,
        sim_time_s=sim_time_s,
        wall_time_s=wall_time_s,
        events=sim.loop.events_run,
        trace_hash=sim.trace.hexdigest(),
        heights_decided=log.max_height,
        lowest_honest_height=min(honest_heights, default=0),
        txs_committed=sim.checkers.committed_txs,
        tx_per_sim_s=sim.checkers.committed_txs / sim_time_s if sim_time_s else 0.0,
        commit_latency_p50_ms=_ms(samples.percentile(0.50)),
        commit_latency_p99_ms=_ms(samples.percentile(0.99)),
        block_interval_p50_ms=_ms(_percentile(intervals, 0.50)),
        block_interval_p99_ms=_ms(_percentile(intervals, 0.99)),
        messages_sent=sum(stats.sent_messages),
        messages_delivered=stats.delivered,
        bytes_sent=sum(stats.sent_bytes),
        dropped={
            "loss": stats.dropped_loss,
            "partition": stats.dropped_partition,
            "link_full": stats.dropped_link_full,
            "uplink_full": stats.dropped_uplink_full,
            "node_down": sum(host.dropped_while_down for host in sim.hosts),
        },
        wall_us_per_message=wall_time_s * 1e6 / max(1, stats.delivered),
        accusations=sim.checkers.accusations,
        rejected_inputs=sim.checkers.rejected_inputs,
        writes_lost_to_crashes=sum(host.storage.stats.writes_lost for host in sim.hosts),
        violation_count=sim.checkers.violation_count,
        violations=tuple(sim.checkers.violations),
        trace_tail=tuple(record.describe() for record in sim.trace.tail()) if failed else (),
        heights=tuple(
            HeightTiming(h, r.first_time_us / 1e6, r.last_time_us / 1e6, r.deciders)
            for h, r in sorted(log.heights.items())
        ),
        latency_cdf_ms=_cdf_ms(samples.sorted()),
        node_load=tuple(
            NodeLoad(
                node=node,
                validator=sim.topology.is_validator(node),
                honest=sim.honest[node],
                messages_sent=stats.sent_messages[node],
                bytes_sent=stats.sent_bytes[node],
                messages_received=stats.received_messages[node],
                bytes_received=stats.received_bytes[node],
            )
            for node in range(sim.topology.nodes)
        ),
        signature_checks=sim.signature_checks[0],
        signature_checks_shared=sim.signature_checks[1],
        workload_counts=dict(sim.workload_report.counts),
    )


def _block_intervals_us(sim: Simulation) -> list[int]:
    times = [record.first_time_us for _, record in sorted(sim.checkers.log.heights.items())]
    return sorted(b - a for a, b in pairwise(times))


def _percentile(ordered: list[int], fraction: float) -> int | None:
    if not ordered:
        return None
    rank = max(1, -(-int(fraction * 1_000_000) * len(ordered) // 1_000_000))
    return ordered[rank - 1]


def _ms(value_us: int | None) -> float | None:
    return None if value_us is None else value_us / 1_000


def _cdf_ms(ordered_us: list[int]) -> tuple[float, ...]:
    if not ordered_us:
        return ()
    count = len(ordered_us)
    points = min(CDF_POINTS, count)
    return tuple(ordered_us[(i * (count - 1)) // max(1, points - 1)] / 1_000 for i in range(points))

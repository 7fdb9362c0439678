"""The figures of a live run, from what the load side recorded (no I/O, no clock).

- ``commit_latencies_s``: per transaction, from the moment it was sent to the moment the
  commit clock of the validator it was sent to stamped the height that holds it;
- ``block_intervals_ms``: between consecutive blocks' header times;
- ``build_result``: the simulator's ``RunResult`` of the run, and ``live_summary_lines`` its
  summary with the timing lines saying what a live run measures.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netsim.faults import FaultOptions
from netsim.live.options import LiveOptions
from netsim.report import summary_lines
from netsim.result import CDF_POINTS, HeightTiming, NodeLoad, RunResult
from netsim.samples import Samples

if TYPE_CHECKING:
    from netsim.live.watch import ChainWatch
    from netsim.live.workload import Senders


@dataclass(frozen=True, slots=True)
class Submitted:
    """An accepted transaction: the validator it was sent to, and when (seconds on the
    load side's monotonic clock)."""

    node: str
    sent_s: float


def commit_latencies_s(
    submitted: Mapping[bytes, Submitted],
    block_txs: Mapping[int, Sequence[str]],
    committed_s: Mapping[str, Mapping[int, float]],
) -> list[float]:
    """Seconds from sending each transaction of ``block_txs`` that ``submitted`` holds to
    the moment the validator it was sent to was seen committing its height; transactions
    sent by others, or whose height that validator's clock did not stamp, have none."""
    latencies = []
    for height, hashes in block_txs.items():
        for hex_hash in hashes:
            sent = submitted.get(bytes.fromhex(hex_hash))
            seen_s = None if sent is None else committed_s.get(sent.node, {}).get(height)
            if sent is not None and seen_s is not None:
                latencies.append(max(0.0, seen_s - sent.sent_s))
    return latencies


def block_intervals_ms(header_time_ms: Mapping[int, int]) -> list[int]:
    """The time between each block and the one before it, by their header times."""
    return [
        header_time_ms[h] - header_time_ms[h - 1]
        for h in sorted(header_time_ms)
        if h - 1 in header_time_ms
    ]


def build_result(
    options: LiveOptions,
    watch: ChainWatch,
    workload: Senders,
    committed_s: Mapping[str, Mapping[int, float]],
    *,
    end_reason: str,
    wall_s: float,
) -> RunResult:
    """The simulator's ``RunResult`` of a live run (its times are wall-clock);
    ``committed_s``: per validator, when its commit clock stamped each height."""
    latencies = Samples(random.Random(options.seed))
    for seconds in commit_latencies_s(workload.submitted, watch.block_txs, committed_s):
        latencies.add(int(seconds * 1e6))
    intervals = sorted(block_intervals_ms(watch.header_time_ms))
    loads = _loads(watch)
    txs = sum(len(hashes) for hashes in watch.block_txs.values())
    delivered = sum(load.messages_received for load in loads)
    stats = [status.get("stats", {}) for status in watch.statuses.values()]
    return RunResult(
        config=options.sim_config(),
        fault_options=FaultOptions(),
        fault_actions=(),
        fault_times_s=(),
        byzantine=(),
        end_reason=end_reason,
        sim_time_s=wall_s,
        wall_time_s=wall_s,
        events=watch.polls,
        trace_hash="(live run: no trace)",
        heights_decided=max(watch.heights.values(), default=0),
        lowest_honest_height=min((watch.heights.get(n.name, 0) for n in watch.nodes), default=0),
        txs_committed=txs,
        tx_per_sim_s=txs / wall_s if wall_s else 0.0,
        commit_latency_p50_ms=_ms(latencies.percentile(0.50)),
        commit_latency_p99_ms=_ms(latencies.percentile(0.99)),
        block_interval_p50_ms=_nearest_rank(intervals, 0.50),
        block_interval_p99_ms=_nearest_rank(intervals, 0.99),
        messages_sent=sum(load.messages_sent for load in loads),
        messages_delivered=delivered,
        bytes_sent=sum(load.bytes_sent for load in loads),
        dropped=_dropped(watch),
        wall_us_per_message=wall_s * 1e6 / max(1, delivered),
        accusations=sum(int(s.get("misbehaviours", 0)) for s in stats),
        rejected_inputs=workload.rejected,
        writes_lost_to_crashes=0,
        violation_count=len(watch.violations),
        violations=tuple(watch.violations),
        trace_tail=(),
        heights=_height_timings(watch),
        latency_cdf_ms=_cdf_ms(latencies),
        node_load=tuple(loads),
    )


LINES_NOT_LIVE = ("faults applied", "signature checks", "events", "wall time", "trace hash")
"""The simulator's summary lines that say nothing of a live run (no faults, no shared
signature checks, no events or trace; its wall time is the "sim time" line's)."""


def live_summary_lines(result: RunResult, workload: Senders, measured: int) -> list[str]:
    """The simulator's summary of ``result``, its timing lines saying what a live run
    measured (``measured``: the transactions with a commit latency)."""
    config = result.config
    replaced = {
        "sim time": f"wall time        {result.sim_time_s:.2f} s of load and watching",
        "transactions": (
            f"transactions     {result.txs_committed} committed, "
            f"{result.tx_per_sim_s:.1f} tx/s; {workload.sent} sent "
            f"({workload.sent / result.sim_time_s if result.sim_time_s else 0:.1f}/s of "
            f"{config.tx_rate:g}/s offered), {workload.accepted} accepted, "
            f"{workload.rejected} refused{_reasons(workload.refusals)}, "
            f"{workload.unanswered} unanswered"
        ),
        "commit latency": (
            f"commit latency   p50 {_text_ms(result.commit_latency_p50_ms)}  p99 "
            f"{_text_ms(result.commit_latency_p99_ms)} ({measured} txs: sent -> seen committed "
            "by the validator it was sent to)"
        ),
        "block interval": (
            f"block interval   p50 {_text_ms(result.block_interval_p50_ms)}  p99 "
            f"{_text_ms(result.block_interval_p99_ms)} (between consecutive header times)"
        ),
    }
    lines = []
    for line in summary_lines(result):
        key = next((k for k in replaced if line.startswith(k)), None)
        if key is not None:
            lines.append(replaced[key])
        elif not line.startswith(LINES_NOT_LIVE):
            lines.append(line)
    return lines


def _reasons(refusals: Mapping[str, int]) -> str:
    parts = [f"{reason} {count}" for reason, count in sorted(refusals.items())]
    return f" ({', '.join(parts)})" if parts else ""


def _height_timings(watch: ChainWatch) -> tuple[HeightTiming, ...]:
    start = watch.started_s
    return tuple(
        HeightTiming(h, watch.first_seen_s[h] - start, watch.last_seen_s[h] - start, len(ids))
        for h, ids in sorted(watch.ids.items())
        if h in watch.first_seen_s
    )


def _loads(watch: ChainWatch) -> list[NodeLoad]:
    loads = []
    for index, node in enumerate(watch.nodes):
        network = watch.statuses.get(node.name, {}).get("network", {})
        loads.append(
            NodeLoad(
                node=index,
                validator=node.role == "validator",
                honest=True,
                messages_sent=int(network.get("messages_out", 0)),
                bytes_sent=int(network.get("bytes_out", 0)),
                messages_received=int(network.get("messages_in", 0)),
                bytes_received=int(network.get("bytes_in", 0)),
            )
        )
    return loads


def _dropped(watch: ChainWatch) -> dict[str, int]:
    totals: dict[str, int] = {}
    for status in watch.statuses.values():
        for reason, count in status.get("network", {}).get("dropped", {}).items():
            totals[reason] = totals.get(reason, 0) + int(count)
    return totals


def _cdf_ms(samples: Samples) -> tuple[float, ...]:
    ordered = samples.sorted()
    step = max(1, len(ordered) // CDF_POINTS)
    return tuple(value / 1_000 for value in ordered[::step])


def _nearest_rank(ordered: Sequence[int], fraction: float) -> float | None:
    if not ordered:
        return None
    rank = max(1, -(-int(fraction * 1_000_000) * len(ordered) // 1_000_000))
    return float(ordered[rank - 1])


def _ms(value_us: int | None) -> float | None:
    return None if value_us is None else value_us / 1_000


def _text_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} ms"

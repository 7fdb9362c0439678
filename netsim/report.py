"""Text the CLI prints: the run's options first, the summary last, and on failure what
happened and the exact command that replays it."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from netsim.config import SimConfig, format_role_mix
from netsim.faults import FaultOptions
from netsim.result import RunResult

MAX_FAULT_LINES = 12
MAX_VIOLATION_LINES = 10
MAX_LINE_CHARS = 100


def replay_command(config: SimConfig, extra: Sequence[str] = ()) -> str:
    """The shell command that reruns ``config`` exactly."""
    return shlex.join(["python", "-m", "netsim", "run", *config.argv(), *extra])


def header_lines(
    config: SimConfig, faults: FaultOptions, byzantine: Sequence[int] = ()
) -> list[str]:
    """The seed and every option, before the run starts (``byzantine``: the nodes the seed
    made Byzantine)."""
    kinds = ",".join(kind.value for kind in faults.kinds) or "none"
    swarm = " (drawn by --swarm)" if config.swarm else ""
    which = f" nodes {list(byzantine)}" if byzantine else ""
    return [
        f"netsim run — seed {config.seed}",
        f"  node code        {config.node}",
        f"  validators       {config.validators} ({config.byzantine} Byzantine{which}: "
        f"{format_role_mix(config.byzantine_roles)}; f = {config.max_faulty_validators})",
        f"  nodes            {config.nodes} ({config.nodes - config.validators} non-validators)",
        f"  topology         {config.topology}",
        f"  heights          {config.heights}",
        f"  faults           {kinds}{swarm}; window {faults.window_start_ms}.."
        f"{faults.window_end_ms} ms, mean gap {faults.mean_gap_ms} ms, "
        f"episodes <= {faults.max_episode_ms} ms",
        f"  workload         {_workload(config)}",
        f"  liveness bound   {config.liveness_bound_ms} ms after healing; "
        f"time limit {config.max_sim_time_ms} ms",
    ]


def summary_lines(result: RunResult) -> list[str]:
    """The summary table of a finished run."""
    v_msgs, v_bytes, v_max_msgs, _ = result.per_node(validators=True)
    o_msgs, o_bytes, o_max_msgs, _ = result.per_node(validators=False)
    lines = [
        f"result           {'PASSED' if result.passed else 'FAILED'} ({result.end_reason})",
        f"heights decided  {result.heights_decided} (lowest honest node: "
        f"{result.lowest_honest_height})",
        f"sim time         {result.sim_time_s:.2f} s",
        f"transactions     {result.txs_committed} committed, "
        f"{result.tx_per_sim_s:.1f} tx/s of sim time",
        f"commit latency   p50 {_ms(result.commit_latency_p50_ms)}  "
        f"p99 {_ms(result.commit_latency_p99_ms)} (sim time, submit to commit)",
        f"block interval   p50 {_ms(result.block_interval_p50_ms)}  "
        f"p99 {_ms(result.block_interval_p99_ms)}",
        f"messages         {result.messages_sent} sent, {result.messages_delivered} delivered, "
        f"{sum(result.dropped.values())} dropped {_drops(result.dropped)}",
        f"per validator    {v_msgs:,.0f} messages, {v_bytes / 1e6:,.2f} MB "
        f"(max {v_max_msgs:,.0f} messages)",
    ]
    if result.config.nodes > result.config.validators:
        lines.append(
            f"per other node   {o_msgs:,.0f} messages, {o_bytes / 1e6:,.3f} MB "
            f"(max {o_max_msgs:,.0f} messages)"
        )
    lines += [
        f"faults applied   {len(result.fault_actions)} actions; "
        f"{result.writes_lost_to_crashes} unsynced writes lost to crashes",
        f"rejected inputs  {result.rejected_inputs}; accusations {result.accusations}",
        f"signature checks {result.signature_checks:,} run, "
        f"{result.signature_checks_shared:,} shared between simulated nodes",
        *workload_lines(result.workload_counts),
        f"events           {result.events:,}",
        f"wall time        {result.wall_time_s:.2f} s "
        f"({result.wall_us_per_message:.1f} µs per delivered message)",
        f"trace hash       {result.trace_hash}",
    ]
    return lines


def failure_lines(result: RunResult) -> list[str]:
    """What failed, the events that led to it, and the replay command."""
    lines = [f"{result.violation_count} violation(s):"]
    lines += ["  " + v.describe() for v in result.violations[:MAX_VIOLATION_LINES]]
    if result.trace_tail:
        lines.append("last events before the end:")
        lines += ["  " + line for line in result.trace_tail[-16:]]
    if result.fault_actions:
        lines.append("fault plan:")
        lines += ["  " + line for line in result.fault_actions[:MAX_FAULT_LINES]]
        if len(result.fault_actions) > MAX_FAULT_LINES:
            lines.append(f"  ... {len(result.fault_actions) - MAX_FAULT_LINES} more")
    lines.append("replay with:")
    lines.append("  " + replay_command(result.config))
    return lines


def _workload(config: SimConfig) -> str:
    if config.workload == "health":
        return (
            f"health: {config.validators} institutions x ({config.practitioners} practitioners, "
            f"{config.patients} patients x {config.devices} devices); a reading every "
            f"{config.reading_interval_ms} ms; {config.miss_pct}% of reminders missed"
        )
    return (
        f"{config.workload}: {config.clients} clients, {config.tx_rate:g} tx/s, "
        f"{config.payload_bytes}-byte payloads"
    )


def workload_lines(counts: Mapping[str, int]) -> list[str]:
    """The workload's counts, one group a line (wrapped): ``<group> <name> n, <name> n``."""
    groups: dict[str, list[str]] = {}
    for key, count in counts.items():
        group, _, name = key.partition("/")
        groups.setdefault(group, []).append(f"{name} {count:,}")
    lines: list[str] = []
    for group, items in groups.items():
        line = f"{group[:16]:<16} "
        for index, item in enumerate(items):
            text = item if index == 0 else ", " + item
            if len(line) + len(text) > MAX_LINE_CHARS and index > 0:
                lines.append(line + ",")
                line = " " * 17 + item
            else:
                line += text
        lines.append(line)
    return lines


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} ms"


def _drops(dropped: dict[str, int]) -> str:
    parts = [f"{name} {count}" for name, count in dropped.items() if count]
    return f"({', '.join(parts)})" if parts else ""

"""The figures, JSON, table and plot of ``bighealth bench network`` (see docs/BENCHMARKS.md).

``phase_figures`` turns what one load phase observed (``network.PhaseData``) into figures:
rates over the load window, finality per transaction (submit on the load side to the
watcher learning its block), block intervals from the headers' times, each node's CPU and
memory, and bytes on the wire per committed transaction. ``bench_document`` is the JSON;
``render_table`` the table printed at the end; ``plot`` the PNG.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from node.cli.bench.ceilings import Ceilings
from node.cli.bench.facts import (
    ProcessSample,
    cpu_percent,
    load_average,
    machine_facts,
    percentiles,
)
from node.cli.bench.network import NetworkBenchOptions, PhaseData, refused_total
from node.cli.bench.wire import bytes_between

EXHAUSTED_SHARE: Final = 0.98
"""A phase that sent this share of what it signed ran out of transactions (the rate it
shows is a floor)."""


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _block_intervals_ms(phase: PhaseData) -> list[float]:
    """Header time differences of consecutive blocks learned within the load window."""
    inside = sorted(
        (b for b in phase.blocks if phase.start_s <= b.seen_s <= phase.end_s),
        key=lambda b: b.height,
    )
    return [
        float(later.time_ms - earlier.time_ms)
        for earlier, later in itertools.pairwise(inside)
        if later.height == earlier.height + 1
    ]


def _process_figures(
    before_samples: dict[str, ProcessSample | None],
    after_samples: dict[str, ProcessSample | None],
) -> dict[str, dict[str, float | None]]:
    nodes = {}
    for name, before in before_samples.items():
        after = after_samples.get(name)
        nodes[name] = {
            "cpu_percent": cpu_percent(before, after),
            "rss_mb": None if after is None else round(after.rss_mb, 1),
            "peak_rss_mb": None if after is None else round(after.peak_rss_mb, 1),
        }
    return nodes


def phase_figures(phase: PhaseData, ceilings: Ceilings, validators: int) -> dict[str, Any]:
    """The figures of one phase (see the module docstring and docs/BENCHMARKS.md)."""
    duration_s = phase.duration_s
    sent = sum(r.sent for r in phase.reports)
    offered = sum(r.offered for r in phase.reports)
    accepted = sum(r.accepted for r in phase.reports)
    finality_ms, in_window = [], 0
    for digest, submitted_s in phase.submitted:
        seen_s = phase.tx_seen_s.get(digest)
        if seen_s is None:
            continue
        finality_ms.append((seen_s - submitted_s) * 1000)
        in_window += seen_s <= phase.end_s
    committed_rate = in_window / duration_s
    wire = bytes_between(phase.tcp_before, phase.tcp_after)
    verify_ceiling = ceilings.ed25519_verify_per_s / validators
    store_ceiling = ceilings.leveldb_values_per_s / validators
    return {
        "offered_rate_tx_per_s": phase.rate_tx_per_s,
        "loop": "closed" if phase.rate_tx_per_s is None else "open",
        "duration_s": duration_s,
        "offered_tx_per_s": round(offered / duration_s, 1),
        "accepted_tx_per_s": round(accepted / duration_s, 1),
        "committed_tx_per_s": round(committed_rate, 1),
        "txs": {
            "offered": offered,
            "sent": sent,
            "accepted": accepted,
            "committed_in_window": in_window,
            "committed_with_drain": len(finality_ms),
            "not_committed": accepted - len(finality_ms),
            "presigned": phase.presigned,
            "ran_out_of_presigned": offered >= EXHAUSTED_SHARE * phase.presigned,
        },
        "refused": dict(refused_total(phase.reports)),
        "request_errors": sum(r.request_errors for r in phase.reports),
        "batch_path": all(r.batch_path for r in phase.reports),
        "finality_ms": percentiles(finality_ms),
        "block_interval_ms": percentiles(_block_intervals_ms(phase)),
        "blocks_in_window": sum(
            1 for b in phase.blocks if phase.start_s <= b.seen_s <= phase.end_s
        ),
        "nodes": _process_figures(phase.node_before, phase.node_after),
        "load_processes": _process_figures(phase.load_before, phase.load_after),
        "wire_bytes_per_tx": None if wire is None or not in_window else round(wire / in_window),
        "p2p_message_bytes_per_tx": None
        if phase.p2p_bytes_out is None or not in_window
        else round(phase.p2p_bytes_out / in_window),
        "achieved_over_ceiling": {
            "ed25519": round(committed_rate / verify_ceiling, 3) if verify_ceiling else None,
            "leveldb": round(committed_rate / store_ceiling, 3) if store_ceiling else None,
        },
        "sign_s": round(phase.sign_s, 1),
        "watcher_errors": phase.watcher_errors,
    }


HEADLINE: Final = (
    "committed_tx_per_s",
    "offered_tx_per_s",
    "accepted_tx_per_s",
    "finality_ms",
    "block_interval_ms",
    "nodes",
    "load_processes",
    "wire_bytes_per_tx",
    "p2p_message_bytes_per_tx",
    "achieved_over_ceiling",
)


def bench_document(
    options: NetworkBenchOptions,
    ceilings: Ceilings,
    phases: Sequence[PhaseData],
    machine_load_before: list[float] | None,
) -> dict[str, Any]:
    """The JSON report: the headline figures of the main phase (the last one: the closed
    loop of a sweep) at the top, every phase under ``results``, the sweep's curve."""
    results = [phase_figures(p, ceilings, options.validators) for p in phases]
    main = results[-1]
    document: dict[str, Any] = {
        "bench": "network",
        "machine": machine_facts(
            load_avg_before=machine_load_before, load_avg_after=load_average()
        ),
        "options": {
            "validators": options.validators,
            "duration_s": options.duration_s,
            "tx_size_bytes": options.tx_size_bytes,
            "rate": "max" if options.rate_tx_per_s is None else options.rate_tx_per_s,
            "workload": options.workload,
            "sweep": options.sweep,
            "smoke": options.smoke,
            "accounts": options.accounts,
            "load_processes": options.load_processes,
            "connections_per_node": options.connections_per_node,
            "batch_max": options.batch_max,
            "window_txs": options.window_txs,
            "commit_wait_ms": options.commit_wait_ms,
            "tx_gossip_ms": options.tx_gossip_ms,
        },
        "ceilings": {
            **ceilings.as_json(),
            "tx_per_s_by_ed25519": round(ceilings.ed25519_verify_per_s / options.validators, 1),
            "tx_per_s_by_leveldb": round(ceilings.leveldb_values_per_s / options.validators, 1),
        },
        **{key: main[key] for key in HEADLINE},
        "results": results,
    }
    if options.sweep:
        document["sweep"] = [
            {
                "offered_rate_tx_per_s": r["offered_rate_tx_per_s"],
                "offered_tx_per_s": r["offered_tx_per_s"],
                "committed_tx_per_s": r["committed_tx_per_s"],
                "finality_p50_ms": r["finality_ms"]["p50"],
                "finality_p99_ms": r["finality_ms"]["p99"],
            }
            for r in results
        ]
    return document


def write_document(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def _cell(value: object) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def render_table(document: Mapping[str, Any]) -> str:
    """The end-of-run table: one line per phase, then each node of the main phase."""
    machine = document["machine"]
    options = document["options"]
    what = (
        f"{options['tx_size_bytes']} B kv.set"
        if options["workload"] == "kv"
        else "glucose readings (records.commit)"
    )
    lines = [
        f"bench network: {options['validators']} validators, {what}; machine: {machine['cpu']} "
        f"({machine['cores']} cores), load {machine['load_avg_before']} -> "
        f"{machine['load_avg_after']}",
        f"ceilings: ed25519 {document['ceilings']['ed25519_verify_per_s']:g} verify/s "
        f"(all cores) = {document['ceilings']['tx_per_s_by_ed25519']:g} tx/s for the "
        f"validators; leveldb {document['ceilings']['leveldb_values_per_s']:g} values/s in "
        f"synced batches, {document['ceilings']['leveldb_single_synced_batches_per_s']:g} fsyncs/s",
        f"{'rate':>9} {'offer/s':>8} {'commit/s':>9} {'fin p50':>8} {'p95':>7} {'p99':>7} "
        f"{'blk p50':>8} {'wire B/tx':>9} {'refused':>8}",
    ]
    for r in document["results"]:
        rate = "max" if r["offered_rate_tx_per_s"] is None else f"{r['offered_rate_tx_per_s']:g}"
        fin, blk = r["finality_ms"], r["block_interval_ms"]
        lines.append(
            f"{rate:>9} {_cell(r['offered_tx_per_s']):>8} {_cell(r['committed_tx_per_s']):>9} "
            f"{_cell(fin['p50']):>8} {_cell(fin['p95']):>7} {_cell(fin['p99']):>7} "
            f"{_cell(blk['p50']):>8} {_cell(r['wire_bytes_per_tx']):>9} "
            f"{sum(r['refused'].values()):>8}"
        )
    lines.append(f"{'process':<14} {'cpu %':>7} {'rss MB':>8} {'peak MB':>8}")
    for name, node in {**document["nodes"], **document["load_processes"]}.items():
        lines.append(
            f"{name:<14} {_cell(node['cpu_percent']):>7} {_cell(node['rss_mb']):>8} "
            f"{_cell(node['peak_rss_mb']):>8}"
        )
    return "\n".join(lines)


def plot(document: Mapping[str, Any], phases: Sequence[PhaseData], path: Path) -> None:
    """Write the PNG: the saturation curve for a sweep, else the committed rate over time
    and the finality distribution of the run."""
    import matplotlib  # noqa: PLC0415 (only a run that plots pays for it)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    results = document["results"]
    if document["options"]["sweep"]:
        _plot_sweep(left, right, results)
    else:
        phase = phases[-1]
        inside = [b for b in phase.blocks if b.seen_s >= phase.start_s]
        left.step(
            [b.seen_s - phase.start_s for b in inside], [b.num_txs for b in inside], where="post"
        )
        left.axvline(phase.duration_s, color="grey", linestyle=":", label="load stops")
        left.set(xlabel="s since the load started", ylabel="txs per block", title="blocks")
        finality = sorted(
            (phase.tx_seen_s[h] - t) * 1000 for h, t in phase.submitted if h in phase.tx_seen_s
        )
        share = [(i + 1) / len(finality) for i in range(len(finality))]
        right.plot(finality, share)
        right.set(xlabel="finality ms", ylabel="share of transactions", title="finality CDF")
    for axes in (left, right):
        axes.grid(alpha=0.3)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
    left.yaxis.set_major_locator(MaxNLocator(integer=True))
    best = max(r["committed_tx_per_s"] for r in results)
    figure.suptitle(
        f"bighealth bench network: {document['options']['validators']} validators, "
        f"{document['options']['workload']}, at best {best:g} tx/s committed"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_sweep(left: Any, right: Any, results: Sequence[Mapping[str, Any]]) -> None:
    """The saturation curve of the open-loop phases (in order of offered rate), the closed
    loop as a point of its own."""
    open_loop = sorted(
        (r for r in results if r["offered_rate_tx_per_s"] is not None),
        key=lambda r: r["offered_tx_per_s"],
    )
    closed = [r for r in results if r["offered_rate_tx_per_s"] is None]
    offered = [r["offered_tx_per_s"] for r in open_loop]
    left.plot(offered, [r["committed_tx_per_s"] for r in open_loop], "o-", label="committed")
    for r in closed:
        left.plot(r["offered_tx_per_s"], r["committed_tx_per_s"], "D", label="closed loop (max)")
    top = max([*offered, *(r["offered_tx_per_s"] for r in closed), 1.0])
    left.plot([0, top], [0, top], ":", color="grey", label="committed = offered")
    left.set(xlabel="offered tx/s", ylabel="committed tx/s", title="saturation")
    right.plot(offered, [r["finality_ms"]["p50"] for r in open_loop], "o-", label="p50")
    right.plot(offered, [r["finality_ms"]["p99"] for r in open_loop], "s-", label="p99")
    right.set(xlabel="offered tx/s", ylabel="finality ms", title="finality against load")

"""Plots of a run (matplotlib, Agg backend, one PNG): the commit-latency CDF, a per-height
timeline (when the first and the last honest node decided each height) and the message load
per node (sent + received, validators and non-validators apart)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: render to files only (pyplot must come after this)

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from netsim.result import RunResult


def write_plots(result: RunResult, path: Path) -> None:
    """Render the three plots of ``result`` into the PNG ``path``."""
    figure, (cdf, timeline, load) = plt.subplots(1, 3, figsize=(18, 5), constrained_layout=True)
    _latency_cdf(cdf, result)
    _timeline(timeline, result)
    _load(load, result)
    figure.suptitle(
        f"netsim seed {result.config.seed}: {result.config.validators} validators, "
        f"{result.config.nodes} nodes, {result.heights_decided} heights "
        f"({'passed' if result.passed else 'FAILED'})"
    )
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _latency_cdf(axes: Axes, result: RunResult) -> None:
    values = result.latency_cdf_ms
    axes.set_title("commit latency (submit to commit, sim time)")
    axes.set_xlabel("latency (ms)")
    axes.set_ylabel("fraction of transactions")
    if values:
        count = len(values)
        axes.step(values, [(i + 1) / count for i in range(count)], where="post")
    else:
        axes.text(0.5, 0.5, "no transaction committed", ha="center", transform=axes.transAxes)
    axes.grid(True, alpha=0.3)


def _timeline(axes: Axes, result: RunResult) -> None:
    heights = [h.height for h in result.heights]
    axes.set_title("per-height timeline")
    axes.set_xlabel("sim time (s)")
    axes.set_ylabel("height")
    axes.plot([h.first_s for h in result.heights], heights, ".-", label="first honest node")
    axes.plot([h.last_s for h in result.heights], heights, ".", label="last honest node")
    for fault_s in result.fault_times_s:
        axes.axvline(fault_s, color="red", alpha=0.15)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # heights are whole numbers
    axes.legend(loc="upper left")
    axes.grid(True, alpha=0.3)


def _load(axes: Axes, result: RunResult) -> None:
    axes.set_title("message load per node (sent + received)")
    axes.set_xlabel("node")
    axes.set_ylabel("messages")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # node numbers and counts
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    classes = (
        ("honest validators", "tab:blue", True, True),
        ("Byzantine validators", "tab:red", True, False),
        ("non-validators", "tab:orange", False, True),
    )
    for label, colour, validator, honest in classes:
        loads = [
            load
            for load in result.node_load
            if load.validator == validator and (load.honest == honest or not validator)
        ]
        if loads:
            axes.bar(
                [load.node for load in loads],
                [load.messages_sent + load.messages_received for load in loads],
                color=colour,
                label=label,
                width=1.0,
            )
    axes.legend(loc="upper right")
    axes.grid(True, axis="y", alpha=0.3)

"""What every benchmark shares: the machine's facts, repeated timings, tables and JSON.

- ``machine_facts()``: where the figures were measured (CPU model, cores, Python, platform,
  1-minute load average at the call), plus whatever a benchmark adds of its own;
- ``Stats`` and ``timed_repeats``: the least, median and greatest of repeated measurements,
  so a report shows the spread of its runs and not the best alone;
- ``render_table``: the fixed-width tables the benchmarks print;
- ``write_json``: one shape for every benchmark's JSON report,
  ``{"bench": name, "machine": {...}, "results": [...], ...}``.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from node.cli.bench.facts import cpuinfo_field, machine_facts

__all__ = [
    "Column",
    "Stats",
    "cpu_flags",
    "machine_facts",
    "machine_line",
    "render_table",
    "timed_repeats",
    "write_json",
]


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux only; empty elsewhere)."""
    return frozenset(cpuinfo_field("flags").split())


def machine_line(info: Mapping[str, Any]) -> str:
    """The facts of ``machine_facts`` as one line, for a table's heading."""
    return (
        f"machine: {info['cpu']} ({info['cores']} cores), python {info['python']}, "
        f"load {info['load_1m']}"
    )


@dataclass(frozen=True)
class Stats:
    """The least, median and greatest of repeated measurements."""

    min: float
    median: float
    max: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Stats:
        """The statistics of ``values`` (at least one)."""
        ordered = sorted(values)
        if not ordered:
            raise ValueError("no measurements")
        return cls(ordered[0], statistics.median(ordered), ordered[-1])

    def scaled(self, factor: float) -> Stats:
        """Each figure times ``factor`` (a change of unit; ``factor`` > 0)."""
        return Stats(self.min * factor, self.median * factor, self.max * factor)

    def per(self, amount: float) -> Stats:
        """``amount`` over each figure: seconds to a rate. The least time gives the greatest
        rate; the median rate is the rate at the median time."""
        return Stats(
            *(amount / s if s > 0 else float("inf") for s in (self.max, self.median, self.min))
        )


def timed_repeats(fn: Callable[[], object], repeat: int) -> Stats:
    """Wall seconds of ``repeat`` calls of ``fn`` (at least one)."""
    seconds = []
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - started)
    return Stats.of(seconds)


@dataclass(frozen=True)
class Column:
    """One column of a fixed-width table: ``spec`` formats its values (``format``)."""

    title: str
    width: int
    align: Literal["<", ">"] = "<"
    spec: str = ""


def render_table(columns: Sequence[Column], rows: Iterable[Sequence[object]]) -> str:
    """A heading line and one line per row, each cell padded to its column's width."""

    def line(cells: Iterable[str]) -> str:
        return " ".join(
            f"{cell:{c.align}{c.width}}" for c, cell in zip(columns, cells, strict=True)
        ).rstrip()

    lines = [line(c.title for c in columns)]
    lines += [
        line(format(value, c.spec) for c, value in zip(columns, row, strict=True)) for row in rows
    ]
    return "\n".join(lines)


def write_json(
    path: Path,
    name: str,
    machine: Mapping[str, Any],
    results: Sequence[Any],
    **extra: Any,
) -> None:
    """Write ``{"bench": name, "machine": machine, "results": results, **extra}`` to ``path``
    (its folder made if need be); ``extra`` carries a benchmark's own keys."""
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {"bench": name, "machine": dict(machine), "results": list(results), **extra}
    path.write_text(json.dumps(report, indent=2) + "\n")

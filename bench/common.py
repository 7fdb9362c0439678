"""What every benchmark shares: the machine's facts, repeated timings, tables and JSON.

- ``machine_facts()``: where the figures were measured (CPU model, cores, Python, platform,
  1-minute load average at the call), plus whatever a benchmark adds of its own;
- ``Stats``, ``seconds_of`` and ``timed_repeats``: the least, median and greatest of repeated
  measurements, so a report shows the spread of its runs and not the best alone;
- ``render_table``: the fixed-width tables the benchmarks print;
- ``write_json``: one shape for every benchmark's JSON report,
  ``{"bench": name, "machine": {...}, "results": [...], ...}``; ``write_case_rows`` the
  report of a benchmark whose rows are one figure a case;
- ``bench_parser`` and ``sizes_for``: the ``--json`` / ``--repeat`` / ``--smoke`` options the
  benchmarks share, and what ``--smoke`` means for their sizes and runs;
- ``BestRow``, ``best_columns`` and ``render_best``: a case's figure of the fastest of
  repeated runs beside the least, median and greatest of them all, and its table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from node.cli.bench.facts import cpuinfo_field, machine_facts

__all__ = [
    "BestRow",
    "CaseRow",
    "Column",
    "Stats",
    "bench_parser",
    "best_columns",
    "cpu_flags",
    "machine_facts",
    "machine_line",
    "mode_of",
    "render_best",
    "render_table",
    "seconds_of",
    "sizes_for",
    "timed_repeats",
    "write_case_rows",
    "write_json",
]

S = TypeVar("S")


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


def seconds_of(fn: Callable[[], object]) -> float:
    """Wall seconds of one call of ``fn``."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def timed_repeats(fn: Callable[[], object], repeat: int) -> Stats:
    """Wall seconds of ``repeat`` calls of ``fn`` (at least one)."""
    return Stats.of(seconds_of(fn) for _ in range(max(1, repeat)))


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


def mode_of(smoke: bool) -> str:
    """The ``mode`` a report names: ``"smoke"`` or ``"full"``."""
    return "smoke" if smoke else "full"


class CaseRow(Protocol):
    """A dataclass row with one figure for its case (what ``write_case_rows`` reports)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]
    case: str
    value: float


def write_case_rows(
    path: Path,
    name: str,
    machine: Mapping[str, Any],
    rows: Sequence[CaseRow],
    *,
    smoke: bool,
    figures: str,
    **extra: Any,
) -> None:
    """``write_json`` of ``rows`` (as dicts) with the keys, in this order: ``mode``, then
    ``extra`` in the caller's order, then ``rows`` (the results again) and, under the key
    ``figures``, each case's figure (``{case: value}``)."""
    results = [asdict(r) for r in rows]
    write_json(
        path,
        name,
        machine,
        results,
        mode=mode_of(smoke),
        **extra,
        rows=results,
        **{figures: {r.case: r.value for r in rows}},
    )


def bench_parser(
    name: str,
    description: str | None,
    *,
    repeat: int | None = 3,
    json_help: str = "write the results to this file",
    repeat_help: str = "runs per case (fastest, min, median, max shown)",
    smoke_help: str = "tiny sizes, one run (for tests)",
) -> argparse.ArgumentParser:
    """The parser of ``python -m bench.<name>``: ``--json PATH``, ``--repeat N`` (default
    ``repeat``; no such option when ``repeat`` is None) and ``--smoke``, in that order."""
    parser = argparse.ArgumentParser(prog=f"python -m bench.{name}", description=description)
    parser.add_argument("--json", type=Path, help=json_help)
    if repeat is not None:
        parser.add_argument("--repeat", type=int, default=repeat, help=repeat_help)
    parser.add_argument("--smoke", action="store_true", help=smoke_help)
    return parser


def sizes_for(smoke: bool, smoke_sizes: S, full_sizes: S, repeat: int) -> tuple[S, int]:
    """The sizes and runs of a benchmark: the smoke sizes once under ``--smoke``, else the
    full sizes ``repeat`` times (at least once)."""
    return (smoke_sizes, 1) if smoke else (full_sizes, max(1, repeat))


@dataclass
class BestRow:
    """One case: its result (of the fastest run) and unit, and the spread of all runs."""

    case: str
    what: str
    value: float
    unit: str
    spread: Stats


def best_columns(case: int, what: int, unit: int) -> tuple[Column, ...]:
    """The columns of ``render_best``, with the widths of its text columns."""
    figures = tuple(Column(title, 12, ">", ",.1f") for title in ("best", "min", "median", "max"))
    return (Column("case", case), Column("what", what), *figures, Column("unit", unit))


def render_best(
    columns: Sequence[Column], rows: Sequence[BestRow], info: Mapping[str, Any], repeat: int
) -> str:
    """The rows as a table (``columns`` from ``best_columns``) under the machine's facts,
    which must name its ``merkle_backend``: ``best`` is the fastest run's figure."""
    heading = (
        f"{machine_line(info)}, merkle backend {info['merkle_backend']}\n"
        f"best: the fastest of {repeat} run(s); min / median / max: over all of them"
    )
    table = render_table(
        columns,
        (
            (r.case, r.what, r.value, r.spread.min, r.spread.median, r.spread.max, r.unit)
            for r in rows
        ),
    )
    return f"{heading}\n{table}"

"""The benchmarks' shared reporting: machine facts, repeat statistics, tables and JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.common import (
    BestRow,
    Column,
    Stats,
    bench_parser,
    best_columns,
    machine_facts,
    render_best,
    render_table,
    sizes_for,
    timed_repeats,
    write_case_rows,
    write_json,
)


def test_machine_facts_name_the_machine_and_take_extras() -> None:
    info = machine_facts(backend="x")
    assert {"cpu", "cores", "python", "platform", "load_1m"} <= set(info)
    assert info["cpu"] and info["backend"] == "x"


def test_stats_are_min_median_max() -> None:
    assert Stats.of([3.0, 1.0, 2.0]) == Stats(1.0, 2.0, 3.0)
    assert Stats.of([4.0, 1.0]).median == 2.5
    assert Stats(1.0, 2.0, 4.0).per(8.0) == Stats(2.0, 4.0, 8.0)
    assert Stats(1.0, 2.0, 4.0).scaled(10.0) == Stats(10.0, 20.0, 40.0)
    with pytest.raises(ValueError):
        Stats.of([])


def test_timed_repeats_times_every_call() -> None:
    calls: list[int] = []
    stats = timed_repeats(lambda: calls.append(1), 3)
    assert len(calls) == 3 and 0 <= stats.min <= stats.median <= stats.max


def test_render_table_pads_and_formats() -> None:
    columns = [Column("case", 6), Column("value", 8, ">", ",.1f")]
    table = render_table(columns, [("a", 1234.5)])
    assert table.splitlines() == ["case      value", "a       1,234.5"]


def test_write_json_has_one_shape(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "x.json"
    write_json(out, "x", {"cpu": "c"}, [{"case": "a"}], mode="smoke")
    report = json.loads(out.read_text())
    assert report == {
        "bench": "x",
        "machine": {"cpu": "c"},
        "results": [{"case": "a"}],
        "mode": "smoke",
    }


@dataclass
class _Figure:
    case: str
    value: float


def test_write_case_rows_keeps_the_reports_key_order(tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    rows = [_Figure("a", 1.0), _Figure("b", 2.0)]
    write_case_rows(out, "x", {}, rows, smoke=False, figures="values", repeat=3, sizes={})
    report = json.loads(out.read_text())
    assert list(report) == [
        "bench", "machine", "results", "mode", "repeat", "sizes", "rows", "values",
    ]  # fmt: skip
    assert report["mode"] == "full" and report["rows"] == report["results"]
    assert report["values"] == {"a": 1.0, "b": 2.0}


def test_bench_parser_and_sizes_for_share_the_options() -> None:
    args = bench_parser("x", None).parse_args(["--smoke", "--repeat", "7"])
    assert (args.json, args.repeat, args.smoke) == (None, 7, True)
    assert sizes_for(args.smoke, "tiny", "full", args.repeat) == ("tiny", 1)
    assert sizes_for(False, "tiny", "full", 0) == ("full", 1)
    assert not hasattr(bench_parser("x", None, repeat=None).parse_args([]), "repeat")


def test_render_best_shows_the_fastest_beside_the_spread() -> None:
    info = machine_facts(merkle_backend="b")
    row = BestRow("c", "w", 3.0, "u/s", Stats(1.0, 2.0, 3.0))
    lines = render_best(best_columns(4, 4, 4), [row], info, 2).splitlines()
    assert lines[0].endswith("merkle backend b") and "fastest of 2 run(s)" in lines[1]
    assert lines[2].split() == ["case", "what", "best", "min", "median", "max", "unit"]
    assert lines[3].split() == ["c", "w", "3.0", "1.0", "2.0", "3.0", "u/s"]

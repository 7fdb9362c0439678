"""The benchmarks' shared reporting: machine facts, repeat statistics, tables and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.common import Column, Stats, machine_facts, render_table, timed_repeats, write_json


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

"""The network benchmark runs (smoke sizes, nodes in this process) and reports its figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import network


def test_smoke_run_writes_every_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "network.json"
    assert network.main(["--smoke", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["mode"] == "smoke" and report["in_process"] is True
    figures = report["figures"]
    assert set(figures) == {
        "rr_median",
        "rr_p99",
        "rr_rate",
        "gossip_median",
        "gossip_p99",
        "bulk",
    }
    assert all(value > 0 for value in figures.values())
    assert figures["rr_median"] <= figures["rr_p99"]
    assert figures["gossip_median"] <= figures["gossip_p99"]
    table = capsys.readouterr().out
    assert "rr_median" in table and "MiB/s" in table and "notes:" in table


def test_p99_picks_the_99th_percentile_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert network._p99(values) == 99.0
    assert network._p99([5.0]) == 5.0

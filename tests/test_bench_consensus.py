"""The consensus benchmark runs (smoke sizes), decides every height and reports its rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import consensus as bench_consensus


def test_smoke_run_writes_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "consensus.json"
    assert bench_consensus.main(["--smoke", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["mode"] == "smoke"
    cases = {(row["scenario"], row["validators"]) for row in report["rows"]}
    assert cases == {(s, n) for s in ("validator", "network") for n in (4, 16)}
    for row in report["rows"]:
        cores = 1 if row["scenario"] == "validator" else row["validators"]
        assert row["inputs"] == row["heights"] * (2 + 2 * row["validators"]) * cores
        assert row["inputs_per_second"] > 0
    table = capsys.readouterr().out
    assert "inputs/s" in table and "network" in table


def test_a_workload_that_decides_nothing_voids_the_benchmark() -> None:
    workload = bench_consensus.prepare(validators=4, heights=1)
    workload.heights[0] = workload.heights[0][:-2]  # too few precommits to decide
    with pytest.raises(AssertionError, match="decided 0 heights"):
        bench_consensus.run_cores(workload, core_count=1)

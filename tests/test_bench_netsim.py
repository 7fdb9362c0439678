"""The simulator benchmark runs (smoke sizes) and reports every case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import netsim as netsim_bench

CASES = {
    "engine_events",
    "network_messages",
    *(
        f"core_{size}_{what}"
        for size in ("small", "scale")
        for what in ("wall", "per_message", "messages", "sim_time")
    ),
}


def test_smoke_run_writes_every_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "netsim.json"
    assert netsim_bench.main(["--smoke", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["mode"] == "smoke"
    assert {row["case"] for row in report["rows"]} == CASES
    assert all(report["values"][case] > 0 for case in CASES)
    assert report["sizes"]["scale_validators"] == netsim_bench.SMOKE.scale_validators
    table = capsys.readouterr().out
    assert "core_scale_per_message" in table and "µs" in table and "machine:" in table

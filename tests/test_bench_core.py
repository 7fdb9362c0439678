"""The chain-core benchmark runs (smoke sizes) and reports blocks/s and tx/s."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import core as core_bench

CASES = {"empty_blocks", "loaded_blocks", "loaded_txs"}


def test_smoke_run_writes_every_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "core.json"
    assert core_bench.main(["--smoke", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["mode"] == "smoke"
    assert {row["case"] for row in report["rows"]} == CASES
    assert all(report["values"][case] > 0 for case in CASES)
    assert report["sizes"]["loaded_blocks"] == core_bench.SMOKE.loaded_blocks
    table = capsys.readouterr().out
    assert "blocks/s" in table and "tx/s" in table and "merkle backend" in table

"""The node benchmark runs (smoke sizes) and reports every case the issue asks for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import node as node_bench

CASES = {
    "admit_1_thread",
    "admit_2_threads",
    "finalize_verify",
    "finalize_preverified",
    "state_commit_insert",
    "state_commit_update",
    "block_encode",
    "block_decode",
    "block_encode_dicts",
    "block_decode_dicts",
}


def test_smoke_run_writes_every_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "node.json"
    assert node_bench.main(["--smoke", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["mode"] == "smoke"
    assert {row["case"] for row in report["rows"]} == CASES
    assert all(report["values"][case] > 0 for case in CASES)
    assert report["sizes"]["admit_txs"] == node_bench.SMOKE.admit_txs
    table = capsys.readouterr().out
    assert "admit_2_threads" in table and "tx/s" in table and "merkle backend" in table

"""The Merkle benchmark runs (smoke sizes) and reports what the issue asks of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import merkle


def test_smoke_run_writes_rows_and_ratios(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "merkle.json"
    assert merkle.main(["--smoke", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["bench"] == "merkle" and report["mode"] == "smoke"
    assert report["results"] == report["rows"] and report["machine"]["cores"] >= 1
    cases = {row["case"] for row in report["rows"]}
    assert cases == {"root_small", "root_large", "proof_gen", "verify_single", "verify_batch"}
    assert all(report["ratios"][case] > 0 for case in cases)
    for row in report["rows"]:  # min / median / max over the runs, not the best alone
        assert row["ratios"]["min"] <= row["ratios"]["median"] <= row["ratios"]["max"]
        assert set(row["python_s"]) == {"min", "median", "max"}
    assert report["two_thread_batch_speedup"]["median"] > 0
    assert report["machine"]["sha256_path"] in ("portable", "shani", "avx512")
    table = capsys.readouterr().out
    assert "root_large" in table and "verify_batch" in table and "ratio" in table
    # at these sizes the 2-threads-vs-1 ratio means nothing, and the output says so
    threads_line = next(line for line in table.splitlines() if "2 threads vs 1" in line)
    assert "meaningless at smoke sizes" in threads_line


def test_disagreeing_backends_void_the_benchmark() -> None:
    with pytest.raises(AssertionError, match="disagree"):
        merkle.equal_to(b"expected")(b"other")

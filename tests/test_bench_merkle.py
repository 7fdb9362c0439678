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
    assert report["mode"] == "smoke"
    cases = {row["case"] for row in report["rows"]}
    assert cases == {"root_small", "root_large", "proof_gen", "verify_single", "verify_batch"}
    assert all(report["ratios"][case] > 0 for case in cases)
    assert report["machine"]["sha256_path"] in ("portable", "shani", "avx512")
    table = capsys.readouterr().out
    assert "root_large" in table and "verify_batch" in table and "ratio" in table


def test_disagreeing_backends_void_the_benchmark() -> None:
    with pytest.raises(AssertionError, match="disagree"):
        merkle.equal_to(b"expected")(b"other")

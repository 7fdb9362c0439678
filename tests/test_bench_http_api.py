"""The HTTP server benchmark runs (smoke: the node's server, briefly) and reports figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import http_api


def test_smoke_run_measures_the_node_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "http.json"
    assert http_api.main(["--smoke", "--connections", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["bench"] == "http_api" and report["machine"]["connections"] == 2
    (result,) = report["results"]
    assert result["server"] == "h11" and result["runs"] == 1 and result["requests"] > 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    rates = result["requests_per_s"]
    assert 0 < rates["min"] <= rates["median"] <= rates["max"]
    assert "h11" in capsys.readouterr().out

"""``python -m netsim live``: its parts on scripted nodes, and one short real run."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from netsim.live import (
    MAX_TX_PER_TICK,
    ChainWatch,
    LiveError,
    LiveOptions,
    LiveWorkload,
    NodeClient,
    build_result,
)
from node.codec import TX_CODEC
from node.home.manifest import ManifestNode
from node.testing import key_pair

ROOT = Path(__file__).resolve().parents[2]


class ScriptedNode(NodeClient):
    """A node answering from dictionaries instead of HTTP."""

    def __init__(self, height: int = 0, ids: dict[int, str] | None = None) -> None:
        super().__init__("127.0.0.1:1")
        self.height = height
        self.ids = ids or {}
        self.submitted: list[bytes] = []
        self.accept = True

    def get(self, path: str) -> dict[str, Any] | None:
        if path == "/status":
            return {"height": self.height, "stats": {}, "network": {"messages_out": 2}}
        if path.startswith("/blocks/"):
            height = int(path.rsplit("/", 1)[1])
            return {"block_id": self.ids.get(height, f"id{height}"), "tx_hashes": []}
        if path.endswith("/nonce"):
            return {"next_nonce": 5}
        return None

    def submit(self, raw: bytes) -> dict[str, Any] | None:
        self.submitted.append(raw)
        return {"accepted": self.accept}


def manifest_node(name: str, role: str = "validator") -> ManifestNode:
    return ManifestNode(name, name, role, "peer", "/ip4/127.0.0.1/tcp/1/p2p/peer", "x:1", None)


def test_options_out_of_range_are_refused() -> None:
    with pytest.raises(LiveError, match="nodes"):
        LiveOptions(validators=4, nodes=3)
    with pytest.raises(LiveError, match="validators"):
        LiveOptions(validators=0)
    assert LiveOptions(heights=10).deadline_s == 90.0
    assert LiveOptions(validators=2, nodes=3).sim_config().nodes == 3


def test_the_watch_reports_each_height_once_all_validators_have_it() -> None:
    nodes = {"a": ScriptedNode(3), "b": ScriptedNode(2), "o": ScriptedNode(1)}
    roles = [manifest_node("a"), manifest_node("b"), manifest_node("o", "observer")]
    watch = ChainWatch(roles, dict(nodes), started_s=0.0)
    watch.poll(1.0)
    lines = watch.progress_lines()
    assert [line.split()[1] for line in lines] == ["1", "2"]
    assert "2/2 validators agree, 1/1 others" in lines[0]
    assert "2/2 validators agree, 0/1 others" in lines[1]
    assert watch.progress_lines() == []
    nodes["b"].height = 3
    watch.poll(2.0)
    assert [line.split()[1] for line in watch.progress_lines()] == ["3"]
    assert watch.violations == []


def test_the_watch_flags_two_blocks_at_one_height() -> None:
    nodes = {"a": ScriptedNode(2), "b": ScriptedNode(2, {2: "other"})}
    watch = ChainWatch([manifest_node("a"), manifest_node("b")], dict(nodes), started_s=0.0)
    watch.poll(1.0)
    assert len(watch.violations) == 1
    assert watch.violations[0].checker == "agreement"
    assert "DISAGREE" in watch.progress_lines()[1]


def test_the_workload_keeps_its_rate_numbers_nonces_and_bounds_bursts() -> None:
    validator = ScriptedNode()
    workload = LiveWorkload(
        chain_id="c",
        keys=[key_pair("client-0")],
        validators=[validator],
        rate=10.0,
        payload_bytes=16,
        rng=random.Random(1),
    )
    workload.tick(100.0)
    workload.tick(100.45)  # 0.45 s later: 4 more at 10 per second
    assert workload.sent == 5
    nonces = [TX_CODEC.decode(raw).nonce for raw in validator.submitted]
    assert nonces == [5, 6, 7, 8, 9]  # the first asked of the node, then counted
    workload.tick(1_000.0)  # far behind: a bounded burst, then the backlog is dropped
    assert workload.sent == 5 + MAX_TX_PER_TICK
    validator.accept = False
    workload.tick(1_000.5)
    assert workload.rejected > 0 and not workload.nonces  # asks the node again


def test_the_result_is_the_simulators_with_wall_clock_times() -> None:
    nodes = {"a": ScriptedNode(2)}
    watch = ChainWatch([manifest_node("a")], dict(nodes), started_s=0.0)
    watch.poll(1.0)
    workload = LiveWorkload("c", [key_pair("k")], [nodes["a"]], 0.0, 8, random.Random(0))
    result = build_result(LiveOptions(validators=1, nodes=1, heights=2), watch, workload,
                          "heights reached", 4.0)  # fmt: skip
    assert result.passed and result.heights_decided == 2
    assert result.sim_time_s == 4.0 and result.messages_sent == 2


def test_a_short_live_run_of_real_processes_passes(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    run = subprocess.run(
        [sys.executable, "-m", "netsim", "live", "--validators", "4", "--nodes", "5",
         "--heights", "5", "--tx-rate", "10", "--output", str(tmp_path / "net"),
         "--json", str(out), "--timeout-s", "90"],
        capture_output=True, text=True, check=False, timeout=180, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "result           PASSED (heights reached)" in run.stdout
    assert run.stdout.count("4/4 validators agree") >= 5
    result = json.loads(out.read_text())
    assert result["passed"] and result["heights_decided"] >= 5
    assert (tmp_path / "net" / "testnet" / "validator-0" / "node.log").exists()

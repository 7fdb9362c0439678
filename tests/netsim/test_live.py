"""``python -m netsim live``: its parts on scripted nodes, its figures on recorded times, and
one short real run."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from netsim.live.figures import Submitted, block_intervals_ms, build_result, commit_latencies_s
from netsim.live.options import LiveError, LiveOptions
from netsim.live.watch import ChainWatch, CommitClock
from netsim.live.workload import MAX_TX_PER_TICK, LiveClient, LiveWorkload, Senders
from node.api.client import ApiUnreachableError
from node.codec import TX_CODEC
from node.home.manifest import ManifestNode
from node.testing import key_pair

ROOT = Path(__file__).resolve().parents[2]


class ScriptedNode(LiveClient):
    """A node answering from dictionaries instead of HTTP."""

    def __init__(self, height: int = 0, ids: dict[int, str] | None = None) -> None:
        super().__init__("127.0.0.1", 1)
        self.height = height
        self.ids = ids or {}
        self.submitted: list[bytes] = []
        self.accept = True
        self.up = True
        self.batch_sizes: list[int] = []

    def get(self, path: str) -> dict[str, Any]:
        if not self.up:
            raise ApiUnreachableError("down")
        if path == "/status":
            return {"height": self.height, "stats": {}, "network": {"messages_out": 2}}
        if path.startswith("/blocks/"):
            height = int(path.rsplit("/", 1)[1])
            block_id = self.ids.get(height, f"id{height}")
            return {"block_id": block_id, "time_ms": 1_000 * height, "tx_hashes": []}
        if path.endswith("/nonce"):
            return {"next_nonce": 5}
        raise AssertionError(path)

    def submit_txs(self, raws: Sequence[bytes]) -> list[dict[str, Any]]:
        if not self.up:
            raise ApiUnreachableError("down")
        self.submitted += raws
        self.batch_sizes.append(len(raws))
        return [{"accepted": self.accept} for _ in raws]


def manifest_node(name: str, role: str = "validator") -> ManifestNode:
    return ManifestNode(name, name, role, "peer", "/ip4/127.0.0.1/tcp/1/p2p/peer", "x:1", None)


def test_options_out_of_range_are_refused() -> None:
    with pytest.raises(LiveError, match="nodes"):
        LiveOptions(validators=4, nodes=3)
    with pytest.raises(LiveError, match="validators"):
        LiveOptions(validators=0)
    with pytest.raises(LiveError, match="tx-rate"):
        LiveOptions(tx_rate=1_001)
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
    assert "2/2 validators agree, 0/1 others  +1.00 s" in lines[1]  # by header times
    assert watch.progress_lines() == []
    nodes["b"].height = 3
    nodes["o"].up = False  # a node that does not answer is skipped
    watch.poll(2.0)
    assert [line.split()[1] for line in watch.progress_lines()] == ["3"]
    assert watch.violations == []
    assert watch.header_time_ms == {1: 1_000, 2: 2_000, 3: 3_000}


def test_the_watch_flags_two_blocks_at_one_height() -> None:
    nodes = {"a": ScriptedNode(2), "b": ScriptedNode(2, {2: "other"})}
    watch = ChainWatch([manifest_node("a"), manifest_node("b")], dict(nodes), started_s=0.0)
    watch.poll(1.0)
    assert len(watch.violations) == 1
    assert watch.violations[0].checker == "agreement"
    assert "DISAGREE" in watch.progress_lines()[1]


def test_the_workload_batches_what_is_due_keeps_nonces_and_bounds_bursts() -> None:
    validator = ScriptedNode()
    clock = iter(float(i) for i in range(10_000))
    workload = LiveWorkload(
        chain_id="c",
        keys=[key_pair("client-0")],
        validators={"a": validator},
        rate=10.0,
        payload_bytes=16,
        rng=random.Random(1),
        clock_s=lambda: next(clock),
    )
    workload.tick(100.0)
    workload.tick(100.45)  # 0.45 s later: 4 more at 10 per second, in one batch
    assert workload.sent == 5 and validator.batch_sizes == [1, 4]
    nonces = [TX_CODEC.decode(raw).nonce for raw in validator.submitted]
    assert nonces == [5, 6, 7, 8, 9]  # the first asked of the node, then counted
    # each batch is stamped with the time it was sent, not the loop's
    stamps = [s.sent_s for s in workload.submitted.values()]
    assert stamps == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert {s.node for s in workload.submitted.values()} == {"a"}
    workload.tick(1_000.0)  # far behind: a bounded burst, then the backlog is dropped
    assert workload.sent == 5 + MAX_TX_PER_TICK
    workload.tick(1_000.0)  # the backlog is gone: only the one due at 1,000 s
    assert workload.sent == 5 + MAX_TX_PER_TICK + 1
    validator.accept = False
    workload.tick(1_000.5)
    assert workload.rejected > 0 and not workload.nonces  # asks the node again
    validator.up = False
    rejected = workload.rejected
    workload.tick(1_001.0)
    assert workload.rejected == rejected and workload.unanswered > 0  # nothing raised
    assert not workload.nonces


def test_the_senders_deal_each_key_to_one_validator_and_share_the_rate() -> None:
    keys = [key_pair(f"k{i}") for i in range(5)]
    nodes = {name: ScriptedNode() for name in ("a", "b", "c")}
    senders = Senders.split("c", keys, nodes, rate=100.0, payload_bytes=8, seed=1)
    held = [[k.public_key for k in w.keys] for w in senders.workloads]
    assert held == [[keys[0].public_key, keys[3].public_key],
                    [keys[1].public_key, keys[4].public_key],
                    [keys[2].public_key]]  # fmt: skip
    assert [list(w.validators) for w in senders.workloads] == [["a"], ["b"], ["c"]]
    assert [w.rate for w in senders.workloads] == [40.0, 40.0, 20.0]
    one_key = Senders.split("c", keys[:1], nodes, rate=10.0, payload_bytes=8, seed=1)
    assert len(one_key.workloads) == 1 and one_key.workloads[0].rate == 10.0
    for workload in senders.workloads:
        workload.tick(0.0)
    assert (senders.sent, senders.accepted, len(senders.submitted)) == (3, 3, 3)


def test_commit_latency_is_per_transaction_even_when_one_poll_sees_several_heights() -> None:
    # the old stamping gave every block seen in one poll, and every transaction sent in one
    # pass of the loop, the same time: 0 ms latencies and intervals. Now each transaction
    # has its own send time and each height the time its validator's clock stamped it.
    tx = [bytes([i]) * 32 for i in range(4)]
    submitted = {
        tx[0]: Submitted("a", 10.0),
        tx[1]: Submitted("a", 10.2),
        tx[2]: Submitted("b", 10.4),
        tx[3]: Submitted("b", 10.6),
    }
    block_txs = {7: [tx[0].hex(), tx[2].hex()], 8: [tx[1].hex(), tx[3].hex(), "ff" * 32]}
    committed_s = {"a": {7: 10.5, 8: 11.0}, "b": {7: 10.55, 8: 11.1}}
    latencies = commit_latencies_s(submitted, block_txs, committed_s)
    assert sorted(round(s, 3) for s in latencies) == [0.15, 0.5, 0.5, 0.8]
    # a height the sender's validator was not seen committing gives no figure (not a 0)
    assert commit_latencies_s(submitted, block_txs, {"a": {7: 10.5}}) == [0.5]


def test_block_intervals_come_from_header_times() -> None:
    assert block_intervals_ms({3: 1_300, 1: 1_000, 2: 1_050, 5: 2_000}) == [50, 250]
    assert block_intervals_ms({1: 1_000}) == []


def test_a_commit_clock_stamps_the_heights_new_since_its_last_answer() -> None:
    clock = CommitClock(ScriptedNode())
    clock.observe(3, 5.0)  # heights 1..3 committed within one long poll: the same stamp
    clock.observe(3, 6.0)  # the poll's time ran out: nothing new
    clock.observe(4, 6.5)
    assert clock.seen_s == {1: 5.0, 2: 5.0, 3: 5.0, 4: 6.5}


def test_the_result_is_the_simulators_with_live_figures() -> None:
    nodes = {"a": ScriptedNode(3)}
    watch = ChainWatch([manifest_node("a")], dict(nodes), started_s=0.0)
    watch.poll(1.0)
    workload = LiveWorkload("c", [key_pair("k")], {"a": nodes["a"]}, 0.0, 8, random.Random(0))
    result = build_result(
        LiveOptions(validators=1, nodes=1, heights=2),
        watch,
        Senders([workload]),
        {"a": {1: 0.5, 2: 1.5, 3: 2.5}},
        end_reason="heights reached",
        wall_s=4.0,
    )
    assert result.passed and result.heights_decided == 3
    assert result.sim_time_s == 4.0 and result.messages_sent == 2
    assert result.block_interval_p50_ms == 1_000.0  # the scripted header times, 1 s apart
    assert result.commit_latency_p50_ms is None  # no transaction was sent


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
    assert "sent -> seen committed by the validator it was sent to" in run.stdout
    assert "between consecutive header times" in run.stdout
    result = json.loads(out.read_text())
    assert result["passed"] and result["heights_decided"] >= 5
    assert result["block_interval_p50_ms"] > 0
    assert result["commit_latency_p50_ms"] is None or result["commit_latency_p50_ms"] > 0
    assert (tmp_path / "net" / "testnet" / "validator-0" / "node.log").exists()

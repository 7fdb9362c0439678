"""``bighealth bench gossip``: its smoke run on real libp2p nodes in processes (every round
reaches every node; a payload above the adapter's message limit goes in chunks and says
so), and the parsing of its options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.cli import main
from node.cli.bench.gossip import HEADER, GossipBenchError, _messages, parse_nodes, parse_size


def test_smoke_run_reaches_every_node(tmp_path: Path) -> None:
    out = tmp_path / "gossip.json"
    assert main(["bench", "gossip", "--smoke", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["results"]
    assert [r["payload_bytes"] for r in rows] == [64 * 1024, 700 * 1024]
    for row in rows:
        assert row["reached_all"] == row["rounds"]
        assert 0 < row["min_ms"] <= row["p50_ms"] <= row["max_ms"]
    assert rows[0]["chunks"] == 1 and rows[0]["note"] == ""
    assert rows[1]["chunks"] == 2 and "larger than one gossip message" in rows[1]["note"]


def test_sizes_and_node_counts_parse() -> None:
    assert parse_size("256KiB") == 256 * 1024
    assert parse_size("2mib") == 2 * 1024 * 1024
    assert parse_size("1000") == parse_size("1000B") == 1000
    assert parse_nodes("4,16") == [4, 16]
    for bad in ("0", "lots", "2GiB", "5KB"):
        with pytest.raises(GossipBenchError):
            parse_size(bad)
    for bad in ("1", "4,x", "65"):
        with pytest.raises(GossipBenchError):
            parse_nodes(bad)


def test_a_payload_splits_into_chunks_of_the_whole_size() -> None:
    messages = _messages(7, 2 * 1024 * 1024, 512 * 1024)
    assert len(messages) == 4
    assert sum(len(m) for m in messages) == 2 * 1024 * 1024
    assert all(len(m) <= 512 * 1024 for m in messages)
    assert {m[:8] for m in messages} == {(7).to_bytes(8, "big")}
    assert [int.from_bytes(m[8:10], "big") for m in messages] == [0, 1, 2, 3]
    assert len(_messages(1, HEADER + 10, 512 * 1024)) == 1

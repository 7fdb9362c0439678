"""The runtime's small parts: the block-sync wire, metrics, logs, peer discipline, the edge
validators, the system ports."""

from __future__ import annotations

import io
import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.adapters.config import DEFAULT_MAX_FRAME_BYTES
from node.adapters.metrics import NetworkCounters
from node.adapters.wire import RESPONSE_OVERHEAD_BYTES
from node.chain.actions import BlockCommitted, Offence, PeerMisbehaved
from node.chain.messages import TOPIC_CONSENSUS, TOPIC_STATUS, TOPIC_TXS
from node.codec import encode_message
from node.errors import DecodeError
from node.ports import Verdict
from node.runtime.discipline import PeerDiscipline
from node.runtime.logs import configure_logging, fields
from node.runtime.metrics import MAX_TRACKED_TXS, NodeMetrics
from node.runtime.node import RuntimeLimits, TipBoard, form_validator
from node.runtime.sync_wire import (
    DEFAULT_MAX_RESPONSE_BYTES,
    MAX_SYNC_BLOCKS,
    SYNC_REQUEST_CODEC,
    SyncRequest,
    SyncResponse,
    block_budget_bytes,
    response_codec,
)
from node.runtime.system import SystemClock, SystemRng
from node.types import ResultCode, Status, TxReceipt

# -- the block-sync wire --------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**64 - 1), st.integers(0, MAX_SYNC_BLOCKS))
def test_a_sync_request_round_trips(from_height: int, max_blocks: int) -> None:
    request = SyncRequest(from_height, max_blocks)
    assert SYNC_REQUEST_CODEC.decode(SYNC_REQUEST_CODEC.encode(request)) == request


@settings(max_examples=30, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_a_response_within_its_budget_round_trips(blocks: list[bytes]) -> None:
    codec = response_codec(4096)
    budget = block_budget_bytes(4096, len(blocks))
    if sum(len(b) for b in blocks) <= budget:
        assert codec.decode(codec.encode(SyncResponse(tuple(blocks)))).blocks == tuple(blocks)


def test_out_of_range_sync_messages_do_not_decode() -> None:
    too_many = SYNC_REQUEST_CODEC.encode(SyncRequest(1, MAX_SYNC_BLOCKS)).replace(
        b"\xcd\x01\x00", b"\xcd\x01\x01"
    )
    with pytest.raises(DecodeError):
        SYNC_REQUEST_CODEC.decode(too_many)
    big = response_codec(10**6).encode(SyncResponse((b"x" * 2000,)))
    with pytest.raises(DecodeError):
        response_codec(1000).decode(big)


def test_a_default_sync_response_fills_one_response_frame_of_the_default_network() -> None:
    assert DEFAULT_MAX_RESPONSE_BYTES == DEFAULT_MAX_FRAME_BYTES - RESPONSE_OVERHEAD_BYTES
    assert RuntimeLimits().sync_response_max_bytes == DEFAULT_MAX_RESPONSE_BYTES


# -- edge validators ------------------------------------------------------------------------------


def test_the_edge_validators_accept_their_topic_and_reject_everything_else() -> None:
    status = encode_message(Status(3, bytes(32)))
    assert form_validator(TOPIC_STATUS, 1024 * 1024)(status) is Verdict.ACCEPT
    assert form_validator(TOPIC_CONSENSUS, 1024 * 1024)(status) is Verdict.REJECT
    assert form_validator(TOPIC_TXS, 1024 * 1024)(b"\xc1") is Verdict.REJECT
    assert form_validator(TOPIC_STATUS, 1024 * 1024)(status + b"\x00") is Verdict.REJECT


def test_the_tip_board_serves_the_latest_status() -> None:
    tip = TipBoard(0, bytes(32))
    tip.update(5, b"\x01" * 32)
    assert tip.encoded() == encode_message(Status(5, b"\x01" * 32))


# -- metrics --------------------------------------------------------------------------------------


def committed(height: int, tx_hashes: list[bytes]) -> BlockCommitted:
    receipts = tuple(TxReceipt(h, ResultCode.OK, "", 0, ()) for h in tx_hashes)
    return BlockCommitted(height, bytes(32), 0, len(tx_hashes), bytes(32), (), receipts)


def sample(metrics: NodeMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    value = metrics.registry.get_sample_value(name, labels or {})
    assert value is not None, name
    return value


def test_commits_are_counted_and_timed() -> None:
    metrics = NodeMetrics()
    metrics.tx_submitted(b"a" * 32, now_s=10.0)
    assert metrics.block_committed(committed(1, [b"a" * 32, b"b" * 32]), now_s=10.5) is None
    assert metrics.block_committed(committed(2, []), now_s=11.25) == pytest.approx(0.75)
    assert sample(metrics, "bighealth_blocks_committed_total") == 2
    assert sample(metrics, "bighealth_txs_committed_total") == 2
    assert sample(metrics, "bighealth_height") == 2
    assert sample(metrics, "bighealth_commit_latency_seconds_count") == 1  # only "a" was ours
    assert sample(metrics, "bighealth_commit_latency_seconds_sum") == pytest.approx(0.5)
    assert sample(metrics, "bighealth_block_interval_seconds_count") == 1


def test_the_latency_book_is_bounded() -> None:
    metrics = NodeMetrics()
    for index in range(MAX_TRACKED_TXS + 10):
        metrics.tx_submitted(index.to_bytes(32, "big"), now_s=0.0)
    metrics.block_committed(committed(1, [(0).to_bytes(32, "big")]), now_s=1.0)
    assert sample(metrics, "bighealth_commit_latency_seconds_count") == 0  # the oldest went


def test_network_counters_are_read_at_scrape_time() -> None:
    counters = NetworkCounters()
    metrics = NodeMetrics(
        lambda: counters.snapshot(
            peers_connected=3, peers_ready=3, peers_banned=1, inbound_queued=0
        )
    )
    counters.message_in("consensus", 100)
    counters.bans = 1
    text = metrics.render().decode()
    assert 'bighealth_p2p_messages_in_total{topic="consensus"} 1.0' in text
    assert 'bighealth_p2p_received_bytes_total{topic="consensus"} 100.0' in text
    assert "bighealth_p2p_bans_total 1.0" in text
    counters.message_in("consensus", 50)
    assert 'bighealth_p2p_messages_in_total{topic="consensus"} 2.0' in metrics.render().decode()


def test_misbehaviours_are_counted_by_offence() -> None:
    metrics = NodeMetrics()
    metrics.misbehaved(Offence.MALFORMED)
    metrics.misbehaved(Offence.MALFORMED)
    assert sample(metrics, "bighealth_peer_misbehaviours_total", {"offence": "malformed"}) == 2


# -- discipline -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "offence", [Offence.WRONG_CHAIN, Offence.INVALID_SIGNATURE, Offence.INVALID_BLOCK]
)
def test_forgery_and_another_chain_ban_at_once(offence: Offence) -> None:
    discipline = PeerDiscipline()
    reason = discipline.judge(PeerMisbehaved("p", offence, "why"), now_ms=0)
    assert reason == f"{offence.value}: why"
    assert discipline.is_banned("p", 1)
    assert discipline.judge(PeerMisbehaved("p", offence, "again"), now_ms=1) is None


def test_lesser_offences_ban_only_when_they_pile_up_and_are_forgiven_over_time() -> None:
    discipline = PeerDiscipline()
    report = PeerMisbehaved("p", Offence.NOT_PROPOSER, "round 3")
    verdicts = [discipline.judge(report, now_ms=0) for _ in range(10)]
    assert verdicts[:9] == [None] * 9 and verdicts[9] is not None
    slow = PeerDiscipline()
    spaced = [slow.judge(PeerMisbehaved("q", Offence.MALFORMED, ""), i * 60_000) for i in range(20)]
    assert spaced == [None] * 20  # one now and then is forgiven


# -- logs -----------------------------------------------------------------------------------------


def test_json_logs_carry_the_node_and_structured_fields() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", "validator-0", stream)
    logging.getLogger("node.runtime").info("committed", extra=fields(height=7, msg="clash"))
    logging.getLogger("node.runtime").debug("hidden")
    record = json.loads(stream.getvalue())
    assert record["node"] == "validator-0"
    assert record["msg"] == "committed"
    assert record["height"] == 7
    assert record["field_msg"] == "clash"  # never overwrites a reserved key
    assert record["level"] == "info"
    assert record["ts"].endswith("Z")


def test_text_logs_are_one_readable_line() -> None:
    stream = io.StringIO()
    configure_logging("debug", "text", "n1", stream)
    logging.getLogger("x").warning("peer misbehaved", extra=fields(peer="abc"))
    line = stream.getvalue().strip()
    assert " WARNING n1 x: peer misbehaved peer=abc" in line


# -- the system ports -----------------------------------------------------------------------------


def test_the_system_ports_behave_as_their_contracts_say() -> None:
    assert SystemClock().now_ms() > 1_600_000_000_000
    rng = SystemRng()
    assert len(rng.random_bytes(16)) == 16
    assert all(3 <= rng.randint(3, 5) <= 5 for _ in range(50))
    with pytest.raises(ValueError):
        rng.randint(5, 3)

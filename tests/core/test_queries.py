"""Clients' read-only queries of a node (``NodeCore.queries``): modules' state with proofs,
prefix listings, committed transactions, and the event feed's pages and cursors."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from node.app.kv import set_payload
from node.app.state import verify_state_proof
from node.chain import QueryError
from node.chain.event_feed import (
    EventCursor,
    FeedEvent,
    check_page_request,
    feed_of,
    read_page,
)
from node.chain.queries import BadQueryError, UnknownModuleError
from node.chain.store import BlockResults
from node.codec import tx_hash
from node.testing import TxFactory
from node.testing.cluster import Cluster
from node.types import Event, EventAttribute, ResultCode, TxReceipt

KEY_ONE, KEY_TWO = b"one", b"two"


def kv_cluster() -> tuple[Cluster, list[bytes]]:
    """One validator; client 0 sets two keys, client 1 one (committed by height 3)."""
    cluster = Cluster(validators=1, seed=9)
    txs = TxFactory(cluster.genesis.chain_id)
    alice, bob = cluster.client_keys[:2]
    raws = [
        txs.encoded(alice, "kv.set", set_payload(KEY_ONE, b"1")),
        txs.encoded(alice, "kv.set", set_payload(KEY_TWO, b"2")),
        txs.encoded(bob, "kv.set", set_payload(KEY_ONE, b"b")),
    ]
    for raw in raws:
        result = cluster.submit("v0", raw)
        assert result is not None and result.accepted
    cluster.run_until(height=3)
    return cluster, raws


CLUSTER, RAWS = kv_cluster()


def kv_path(owner: bytes, key: bytes) -> str:
    return (b"e/" + owner + key).hex()


def test_a_module_key_with_its_proof_and_rendering() -> None:
    core = CLUSTER.core("v0")
    alice = CLUSTER.client_keys[0].public_key
    answer = core.queries.module_state("kv", kv_path(alice, KEY_ONE))
    proof = answer.proof
    assert proof.key == b"kv/e/" + alice + KEY_ONE
    assert proof.height == core.height and proof.state_root == core.app_state_root
    assert proof.value is not None and verify_state_proof(proof, core.app_state_root)
    assert answer.rendered == {"hex": proof.value.hex()}
    absent = core.queries.module_state("kv", kv_path(alice, b"nope"))
    assert absent.proof.value is None and absent.rendered is None
    assert verify_state_proof(absent.proof, core.app_state_root)
    at_genesis = core.queries.module_state("kv", kv_path(alice, KEY_ONE), height=0)
    assert at_genesis.proof.value is None and at_genesis.proof.height == 0


def test_bad_module_state_queries_are_typed_errors() -> None:
    queries = CLUSTER.core("v0").queries
    with pytest.raises(UnknownModuleError, match="no module 'care'"):
        queries.module_state("care", "00")
    with pytest.raises(BadQueryError, match="hex"):
        queries.module_state("kv", "zz")
    with pytest.raises(BadQueryError, match="over 256 bytes"):
        queries.module_state("kv", "00" * 300)
    with pytest.raises(QueryError, match="height 99 is not kept"):
        queries.module_state("kv", "00", height=99)


def test_entries_under_a_prefix_are_listed_in_key_order_and_bounded() -> None:
    queries = CLUSTER.core("v0").queries
    alice = CLUSTER.client_keys[0].public_key
    everything = queries.module_entries("kv", None, 100)
    assert everything.prefix == b"kv/" and not everything.truncated
    assert len(everything.entries) == 3
    assert [e.key for e in everything.entries] == sorted(e.key for e in everything.entries)
    mine = queries.module_entries("kv", (b"e/" + alice).hex(), 100)
    assert [e.key for e in mine.entries] == [b"kv/e/" + alice + k for k in (KEY_ONE, KEY_TWO)]
    assert mine.entries[0].rendered == {"hex": mine.entries[0].value.hex()}
    first = queries.module_entries("kv", None, 1)
    assert len(first.entries) == 1 and first.truncated
    assert first.height == CLUSTER.core("v0").height
    with pytest.raises(BadQueryError, match="limit"):
        queries.module_entries("kv", None, 0)
    with pytest.raises(BadQueryError, match="limit"):
        queries.module_entries("kv", None, 1001)
    with pytest.raises(UnknownModuleError):
        queries.module_entries("nope", None, 10)


def test_a_committed_transaction_and_one_not_committed() -> None:
    queries = CLUSTER.core("v0").queries
    committed = queries.committed_tx(tx_hash(RAWS[1]))
    assert committed is not None and committed.receipt.ok
    assert committed.receipt.tx_hash == tx_hash(RAWS[1])
    block = CLUSTER.core("v0").committed_block(committed.height)
    assert block is not None and block.block.txs[committed.index] == RAWS[1]
    assert committed.time_ms == block.block.header.time_ms
    assert queries.committed_tx(bytes(32)) is None


def test_the_feed_of_the_chain_holds_every_kv_event_once() -> None:
    queries = CLUSTER.core("v0").queries
    page = queries.events(EventCursor(0), "kv.", 100)
    assert [e.event.name for e in page.events] == ["kv.set"] * 3
    assert {e.tx_hash for e in page.events} == {tx_hash(raw) for raw in RAWS}
    assert page.next_after == EventCursor(CLUSTER.core("v0").height) and page.at_tip
    assert queries.events(EventCursor(0), "care.", 100).events == ()
    assert queries.events(page.next_after, "", 100).events == ()
    with pytest.raises(BadQueryError, match="kind"):
        queries.events(EventCursor(0), "Care!", 10)


# -- pages and cursors over made-up results ----------------------------------------------------


def event(name: str) -> Event:
    return Event(name, (EventAttribute("n", name),))


def results_of(height: int) -> BlockResults:
    """Height h: one block event, an OK tx with two events, a failed tx, an OK tx with one."""
    ok = TxReceipt(bytes([height]) * 32, ResultCode.OK, "", 1, (event("a.x"), event("b.y")))
    failed = TxReceipt(bytes([100 + height]) * 32, ResultCode.EXECUTION_FAILED, "no", 1, ())
    last = TxReceipt(bytes([200 + height]) * 32, ResultCode.OK, "", 1, (event("a.z"),))
    return BlockResults(height, 1000 * height, (event("system.due"),), (ok, failed, last))


def reader(
    missing: frozenset[int] = frozenset(),
) -> Callable[[int], tuple[BlockResults, int] | None]:
    def read(height: int) -> tuple[BlockResults, int] | None:
        return None if height in missing else (results_of(height), 100)

    return read


def names(events: tuple[FeedEvent, ...]) -> list[str]:
    return [f"{e.height}:{e.index}:{e.event.name}" for e in events]


def test_a_height_feeds_block_events_then_the_events_of_successful_txs() -> None:
    feed = list(feed_of(results_of(4)))
    assert [(e.index, e.event.name) for e in feed] == [
        (0, "system.due"), (1, "a.x"), (2, "b.y"), (3, "a.z"),
    ]  # fmt: skip
    assert feed[0].tx_hash is None and feed[1].tx_hash == bytes([4]) * 32
    assert {e.time_ms for e in feed} == {4000}


def test_pages_continue_inside_a_height_without_loss_or_repeat() -> None:
    read = reader()
    seen: list[str] = []
    cursor = EventCursor(0)
    for _ in range(20):
        page = read_page(read, 3, after=cursor, kind_prefix="a.", limit=1)
        seen += names(page.events)
        cursor = page.next_after
        if page.at_tip:
            break
    assert seen == ["1:1:a.x", "1:3:a.z", "2:1:a.x", "2:3:a.z", "3:1:a.x", "3:3:a.z"]
    page = read_page(read, 3, after=EventCursor(1), limit=2)
    assert names(page.events) == ["2:0:system.due", "2:1:a.x"]
    assert str(page.next_after) == "2:1"
    page = read_page(read, 3, after=page.next_after, limit=3)
    assert names(page.events) == ["2:2:b.y", "2:3:a.z", "3:0:system.due"]
    assert page.next_after == EventCursor(3, 0)


def test_a_page_full_at_a_height_boundary_continues_at_the_next_height() -> None:
    page = read_page(reader(), 3, after=EventCursor(0), kind_prefix="b.", limit=1)
    assert names(page.events) == ["1:2:b.y"]
    assert page.next_after == EventCursor(2, 1)
    again = read_page(reader(), 3, after=page.next_after, kind_prefix="b.", limit=1)
    assert names(again.events) == ["2:2:b.y"]


def test_scanning_is_bounded_by_heights_and_bytes_and_skips_unkept_heights() -> None:
    page = read_page(reader(), 50, after=EventCursor(0), kind_prefix="c.", max_heights=10)
    assert page.events == () and page.next_after == EventCursor(10) and not page.at_tip
    by_bytes = read_page(reader(), 50, after=EventCursor(0), max_scan_bytes=250, limit=1000)
    assert by_bytes.next_after == EventCursor(3)
    skipping = read_page(reader(frozenset({2})), 3, after=EventCursor(1), kind_prefix="a.x")
    assert names(skipping.events) == ["3:1:a.x"] and skipping.at_tip
    ahead = read_page(reader(), 3, after=EventCursor(7))
    assert ahead.events == () and ahead.next_after == EventCursor(7) and ahead.at_tip


@pytest.mark.parametrize(
    ("text", "cursor"), [("0", EventCursor(0)), ("12", EventCursor(12)), ("3:4", EventCursor(3, 4))]
)
def test_cursors_read_back(text: str, cursor: EventCursor) -> None:
    assert EventCursor.parse(text) == cursor and str(cursor) == text


@pytest.mark.parametrize("text", ["", "-1", "1:", ":2", "a", "1:2:3", "1" * 30, " 1"])
def test_bad_cursors_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        EventCursor.parse(text)


@pytest.mark.parametrize(("kind", "limit"), [("A.", 10), ("a b", 10), ("a." * 40, 10), ("", 0)])
def test_bad_page_requests_are_refused(kind: str, limit: int) -> None:
    with pytest.raises(ValueError):
        check_page_request(kind, limit)

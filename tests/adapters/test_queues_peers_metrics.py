"""Small building blocks: the bounded queue, the peer table, the counters."""

from __future__ import annotations

import pytest

from node.adapters.handshake import Hello
from node.adapters.metrics import MAX_TOPICS_TRACKED, OTHER_TOPICS, Drop, NetworkCounters
from node.adapters.peers import Admission, PeerTable
from node.adapters.queues import BoundedQueue

HELLO = Hello(1, "chain", "agent", b"")


def test_the_queue_refuses_what_would_pass_either_limit() -> None:
    queue: BoundedQueue[str] = BoundedQueue(max_items=3, max_bytes=10)
    assert queue.push("a", 4) and queue.push("b", 4)
    assert not queue.push("c", 3)  # 11 bytes
    assert queue.push("c", 2)
    assert not queue.push("d", 0)  # 4 items
    assert (len(queue), queue.queued_bytes) == (3, 10)
    assert queue.pop_many(2) == ["a", "b"]
    assert queue.queued_bytes == 2
    assert queue.clear() == 1 and len(queue) == 0
    with pytest.raises(ValueError):
        BoundedQueue(0, 1)


def test_pop_many_stops_at_the_byte_budget_but_always_takes_one() -> None:
    queue: BoundedQueue[str] = BoundedQueue(max_items=10, max_bytes=200)
    for name, size in [("a", 40), ("b", 40), ("c", 40)]:
        queue.push(name, size)
    assert queue.pop_many(10, max_bytes=30) == ["a"]
    assert queue.pop_many(10, max_bytes=80) == ["b", "c"]


def test_admission_respects_max_peers_except_for_persistent_peers() -> None:
    table = PeerTable(max_peers=2)
    assert table.admit("a", 0, persistent=False) is Admission.ADMITTED
    assert table.admit("a", 0, persistent=False) is Admission.ALREADY_CONNECTED
    assert table.admit("b", 0, persistent=False) is Admission.ADMITTED
    assert table.admit("c", 0, persistent=False) is Admission.FULL
    assert table.admit("v", 0, persistent=True) is Admission.ADMITTED
    assert table.connected() == ("a", "b", "v")


def test_only_peers_with_an_accepted_hello_are_ready_and_known() -> None:
    table = PeerTable(max_peers=5, max_known=2)
    assert not table.mark_ready("ghost", HELLO, 0)  # not connected
    table.admit("b", 0, persistent=False)
    table.admit("a", 0, persistent=False)
    assert table.ready() == ()
    assert table.mark_ready("b", HELLO, 5) and not table.mark_ready("b", HELLO, 6)
    assert table.ready() == ("b",) and table.is_ready("b") and not table.is_ready("a")
    removed = table.remove("b")
    assert removed is not None and removed.ready_at_ms == 5
    assert table.was_known("b") and not table.is_connected("b")
    for peer in ["c", "d"]:
        table.admit(peer, 0, persistent=False)
        table.mark_ready(peer, HELLO, 0)
    assert not table.was_known("b")  # the least recently seen is forgotten first


def test_counters_snapshot_is_a_frozen_copy_and_topics_are_bounded() -> None:
    counters = NetworkCounters()
    counters.message_in("votes", 100)
    counters.message_out("votes", 7)
    counters.drop(Drop.INBOUND_FULL, 3)
    snap = counters.snapshot(peers_connected=2, peers_ready=1, peers_banned=0, inbound_queued=4)
    counters.message_in("votes", 1)
    assert snap.topics["votes"].messages_in == 1 and snap.topics["votes"].bytes_in == 100
    assert snap.topics["votes"].bytes_out == 7
    assert snap.dropped["inbound_full"] == 3 and snap.dropped["invalid"] == 0
    for i in range(MAX_TOPICS_TRACKED + 10):
        counters.message_in(f"topic-{i}", 1)
    later = counters.snapshot(peers_connected=0, peers_ready=0, peers_banned=0, inbound_queued=0)
    assert len(later.topics) == MAX_TOPICS_TRACKED + 1
    assert later.topics[OTHER_TOPICS].messages_in == 11

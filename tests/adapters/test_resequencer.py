"""The gossip reorder buffer: publisher order restored, gaps waited for a bounded time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from node.adapters.resequencer import Resequencer

EPOCH = b"e" * 8


def push_all(buffer: Resequencer[int], order: list[int], now_ms: int = 0) -> list[int]:
    out: list[int] = []
    for sequence in order:
        out += buffer.push("pub", "t", EPOCH, sequence, sequence, now_ms=now_ms)
    return out


@settings(max_examples=80)
@given(st.permutations(list(range(30))))
def test_any_permutation_comes_out_in_order(order: list[int]) -> None:
    buffer: Resequencer[int] = Resequencer(window_ms=50)
    assert push_all(buffer, order) == list(range(30))
    assert buffer.held_count == 0
    assert buffer.next_deadline_ms() is None


def test_a_gap_is_waited_for_then_skipped() -> None:
    buffer: Resequencer[int] = Resequencer(window_ms=50)
    assert push_all(buffer, [0, 1, 3, 4], now_ms=100) == [0, 1]
    assert buffer.next_deadline_ms() == 150
    assert buffer.expire(149) == []
    assert buffer.expire(150) == [3, 4]
    assert buffer.stats.gaps_skipped == 1
    assert buffer.push("pub", "t", EPOCH, 2, 2, now_ms=200) == [2]  # late: released at once
    assert buffer.stats.late == 1
    assert buffer.push("pub", "t", EPOCH, 5, 5, now_ms=200) == [5]


def test_a_stream_joined_midway_waits_one_window_for_earlier_messages() -> None:
    buffer: Resequencer[int] = Resequencer(window_ms=10)
    assert buffer.push("pub", "t", EPOCH, 7, 7, now_ms=0) == []
    assert buffer.push("pub", "t", EPOCH, 6, 6, now_ms=1) == []
    assert buffer.expire(10) == [6, 7]
    assert buffer.push("pub", "t", EPOCH, 8, 8, now_ms=11) == [8]


def test_streams_are_independent_per_publisher_and_topic() -> None:
    buffer: Resequencer[str] = Resequencer(window_ms=10)
    assert buffer.push("a", "t", EPOCH, 1, "a1", now_ms=0) == []
    assert buffer.push("b", "t", EPOCH, 0, "b0", now_ms=0) == ["b0"]
    assert buffer.push("a", "u", EPOCH, 0, "au0", now_ms=0) == ["au0"]
    assert buffer.push("a", "t", EPOCH, 0, "a0", now_ms=0) == ["a0", "a1"]


def test_a_new_epoch_is_a_restart_not_a_replay() -> None:
    buffer: Resequencer[str] = Resequencer(window_ms=10)
    assert buffer.push("a", "t", EPOCH, 0, "old0", now_ms=0) == ["old0"]
    assert buffer.push("a", "t", EPOCH, 2, "old2", now_ms=0) == []
    # The publisher restarted: what was held is flushed, the new stream starts over at 0.
    assert buffer.push("a", "t", b"n" * 8, 0, "new0", now_ms=1) == ["old2", "new0"]
    assert buffer.push("a", "t", b"n" * 8, 1, "new1", now_ms=1) == ["new1"]
    assert buffer.stats.late == 0


def test_held_messages_and_streams_are_bounded() -> None:
    buffer: Resequencer[int] = Resequencer(window_ms=1000, max_streams=2, max_held_per_stream=3)
    assert push_all(buffer, [1, 2, 3]) == []
    assert push_all(buffer, [4]) == [1, 2, 3, 4]  # a fourth held message flushes the stream
    assert buffer.stats.overflows == 1
    assert buffer.push("b", "t", EPOCH, 5, 50, now_ms=0) == []
    # A third stream evicts the least recently used one, releasing what it held.
    assert buffer.push("c", "t", EPOCH, 0, 60, now_ms=0) == [60]
    assert buffer.push("d", "t", EPOCH, 0, 70, now_ms=0) == [50, 70]
    assert buffer.stats.streams_evicted == 2

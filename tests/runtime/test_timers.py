"""``TimerQueue``: due order, replacement by key, cancellation, bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.runtime.timers import COMPACTION_SLACK, TimerOverflowError, TimerQueue


def test_timers_fire_in_due_order_and_only_when_due() -> None:
    timers: TimerQueue[str] = TimerQueue()
    timers.set("late", 3.0)
    timers.set("early", 1.0)
    timers.set("middle", 2.0)
    assert timers.next_due() == 1.0
    assert timers.pop_due(0.5) == []
    assert timers.pop_due(2.0) == ["early", "middle"]
    assert timers.pop_due(10.0) == ["late"]
    assert timers.next_due() is None
    assert len(timers) == 0


def test_setting_a_pending_key_replaces_its_timer() -> None:
    timers: TimerQueue[str] = TimerQueue()
    timers.set("a", 1.0)
    timers.set("a", 5.0)  # replaced: the old due time must not fire
    assert len(timers) == 1
    assert timers.pop_due(2.0) == []
    assert timers.next_due() == 5.0
    assert timers.pop_due(5.0) == ["a"]


def test_cancel_and_discard_forget_timers() -> None:
    timers: TimerQueue[tuple[str, int]] = TimerQueue()
    for height in range(5):
        timers.set(("propose", height), float(height))
    assert timers.cancel(("propose", 0))
    assert not timers.cancel(("propose", 0))
    assert timers.discard(lambda key: key[1] <= 2) == 2
    assert ("propose", 3) in timers
    assert timers.pop_due(100.0) == [("propose", 3), ("propose", 4)]


def test_the_number_of_live_timers_is_bounded() -> None:
    timers: TimerQueue[int] = TimerQueue(max_timers=3)
    for key in range(3):
        timers.set(key, 1.0)
    timers.set(2, 2.0)  # replacing is always allowed
    with pytest.raises(TimerOverflowError):
        timers.set(3, 1.0)
    timers.cancel(0)
    timers.set(3, 1.0)
    assert sorted(timers.pop_due(5.0)) == [1, 2, 3]


def test_replacing_one_timer_forever_keeps_the_heap_small() -> None:
    timers: TimerQueue[str] = TimerQueue()
    for step in range(10_000):
        timers.set("tick", float(step))
    assert len(timers._heap) <= 2 * len(timers) + COMPACTION_SLACK
    assert timers.pop_due(1e9) == ["tick"]


def test_a_nan_due_time_is_refused() -> None:
    with pytest.raises(ValueError, match="number"):
        TimerQueue[str]().set("a", float("nan"))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["set", "cancel", "pop"]), st.integers(0, 7), st.integers(0, 50)),
        max_size=60,
    )
)
def test_the_queue_behaves_like_a_dict_of_due_times(ops: list[tuple[str, int, int]]) -> None:
    timers: TimerQueue[int] = TimerQueue()
    model: dict[int, int] = {}
    for op, key, time in ops:
        if op == "set":
            timers.set(key, float(time))
            model[key] = time
        elif op == "cancel":
            assert timers.cancel(key) == (key in model)
            model.pop(key, None)
        else:
            fired = timers.pop_due(float(time))
            due = sorted((t, k) for k, t in model.items() if t <= time)
            assert sorted(fired) == sorted(k for _, k in due)
            assert [model[k] for k in fired] == sorted(model[k] for k in fired)
            for k in fired:
                del model[k]
        assert len(timers) == len(model)
        assert timers.next_due() == (min(model.values()) if model else None)

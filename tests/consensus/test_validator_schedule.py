"""Restoring a validator-set schedule from its persisted state, updates still pending."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import (
    InvalidConfigError,
    InvalidValidatorSetError,
    UsageError,
    Validator,
    ValidatorSet,
    ValidatorSetSchedule,
    ValidatorUpdate,
)
from consensus.limits import MAX_HEIGHT
from tests.consensus.factories import key_pair

KEYS = [key_pair(i).public_key for i in range(6)]
GENESIS = ValidatorSet(Validator(key, 1) for key in KEYS[:3])


def test_a_restored_schedule_keeps_the_updates_still_waiting_to_take_effect() -> None:
    live = ValidatorSetSchedule(GENESIS, update_delay_heights=2)
    live.commit(1, [ValidatorUpdate(KEYS[4], 5)])  # rules height 3; height 2 is fixed already
    restored = ValidatorSetSchedule.restore(live.last_committed_height, live.upcoming, 2)
    assert KEYS[4] not in restored.set_at(2)
    assert restored.set_at(3).power_of(KEYS[4]) == 5
    assert restored.set_at(3).priorities == live.set_at(3).priorities
    assert restored.last_committed_height == 1 and restored.update_delay_heights == 2
    with pytest.raises(UsageError):
        restored.set_at(1)  # committed heights are not known to a schedule


def test_upcoming_lists_the_known_sets_in_height_order() -> None:
    schedule = ValidatorSetSchedule(GENESIS, first_height=7, update_delay_heights=3)
    assert schedule.upcoming == tuple(schedule.set_at(h) for h in (7, 8, 9))
    schedule.commit(7)
    assert schedule.upcoming == tuple(schedule.set_at(h) for h in (8, 9, 10))


heights_of_updates = st.lists(
    st.lists(
        st.builds(ValidatorUpdate, st.sampled_from(KEYS), st.integers(0, 9)),
        max_size=3,
        unique_by=lambda update: update.public_key,
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=60, deadline=None)
@given(delay=st.integers(1, 4), batches=heights_of_updates, restore_after=st.integers(0, 9))
def test_a_schedule_restored_at_any_height_goes_on_exactly_like_the_live_one(
    delay: int, batches: list[list[ValidatorUpdate]], restore_after: int
) -> None:
    live = ValidatorSetSchedule(GENESIS, update_delay_heights=delay)
    restore_at = restore_after % len(batches)  # committed heights when restoring
    schedules = [live]
    for height, batch in enumerate(batches, start=1):
        if height - 1 == restore_at:
            last = live.last_committed_height
            schedules.append(ValidatorSetSchedule.restore(last, live.upcoming, delay))
        for schedule in schedules:
            try:
                schedule.commit(height, batch)
            except InvalidValidatorSetError:
                schedule.commit(height)  # what a node does with a batch every node refuses
    restored = schedules[1]
    assert restored.last_committed_height == live.last_committed_height == len(batches)
    assert restored.upcoming == live.upcoming  # members, powers and priorities


@pytest.mark.parametrize(
    ("height", "sets", "delay", "match"),
    [
        (-1, (GENESIS, GENESIS), 2, "last_committed_height"),
        (True, (GENESIS, GENESIS), 2, "last_committed_height"),
        (MAX_HEIGHT - 1, (GENESIS, GENESIS), 2, "last_committed_height"),
        (4, (GENESIS,), 2, "knows 2 sets, got 1"),
        (4, (GENESIS, GENESIS, GENESIS), 2, "knows 2 sets, got 3"),
        (4, (GENESIS, "a set"), 2, "ValidatorSet"),
        (4, (GENESIS, GENESIS), 0, "update_delay_heights"),
    ],
)
def test_restore_refuses_a_state_no_schedule_can_have(
    height: int, sets: tuple[object, ...], delay: int, match: str
) -> None:
    with pytest.raises(InvalidConfigError, match=match):
        ValidatorSetSchedule.restore(height, sets, delay)  # type: ignore[arg-type]


def test_a_schedule_needs_a_validator_set_to_start_from() -> None:
    with pytest.raises(InvalidConfigError, match="ValidatorSet"):
        ValidatorSetSchedule([Validator(KEYS[0], 1)])  # type: ignore[arg-type]

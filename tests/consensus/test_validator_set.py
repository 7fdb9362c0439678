"""Validator sets: integer thresholds, weighted round-robin proposers, hashing and updates."""

from __future__ import annotations

from collections import Counter

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
from consensus.limits import MAX_TOTAL_VOTING_POWER
from crypto_core import hash_leaf, merkle_root
from tests.consensus.factories import key_pair

KEYS = [key_pair(i).public_key for i in range(10)]


def make_set(powers: list[int]) -> ValidatorSet:
    return ValidatorSet(Validator(KEYS[i], power) for i, power in enumerate(powers))


@pytest.mark.parametrize(
    ("total", "quorum", "f_plus_one"),
    [(1, 1, 1), (3, 3, 2), (4, 3, 2), (6, 5, 3), (7, 5, 3), (10, 7, 4), (100, 67, 34)],
)
def test_thresholds_are_integers_strictly_above_two_and_one_thirds(
    total: int, quorum: int, f_plus_one: int
) -> None:
    validator_set = make_set([total] if total == 1 else [total - 1, 1])
    assert validator_set.total_voting_power == total
    assert validator_set.quorum_power == quorum
    assert validator_set.f_plus_one_power == f_plus_one
    assert 3 * quorum > 2 * total >= 3 * (quorum - 1)
    assert 3 * f_plus_one > total >= 3 * (f_plus_one - 1)
    assert validator_set.has_quorum(quorum) and not validator_set.has_quorum(quorum - 1)


def test_members_are_in_canonical_order_whatever_the_input_order() -> None:
    forward = make_set([3, 1, 2])
    backward = ValidatorSet(reversed(forward.validators))
    assert forward == backward and hash(forward) == hash(backward)
    assert [v.public_key for v in forward] == sorted(KEYS[:3])
    assert forward.power_of(KEYS[0]) == 3 and forward.power_of(KEYS[9]) == 0
    assert KEYS[1] in forward and KEYS[9] not in forward
    assert forward.index_of(min(KEYS[:3])) == 0 and forward.index_of(KEYS[9]) is None


@pytest.mark.parametrize(
    ("validators", "match"),
    [
        ([], "at least one"),
        ([Validator(KEYS[0], 1), Validator(KEYS[0], 2)], "twice"),
        ([Validator(KEYS[0], 0)], "positive"),
        ([Validator(KEYS[0], -1)], "positive"),
        ([Validator(KEYS[0], True)], "positive"),
        ([Validator(b"short", 1)], "32 bytes"),
        ([Validator(KEYS[0], MAX_TOTAL_VOTING_POWER), Validator(KEYS[1], 1)], "exceeds"),
        (["not a validator"], "expected a Validator"),
    ],
)
def test_invalid_sets(validators: list[Validator], match: str) -> None:
    with pytest.raises(InvalidValidatorSetError, match=match):
        ValidatorSet(validators)


def test_proposers_follow_power() -> None:
    validator_set = make_set([5, 3, 1, 1])
    rounds = 1_000
    counts = Counter(validator_set.proposer(r) for r in range(rounds))
    assert counts == {KEYS[0]: 500, KEYS[1]: 300, KEYS[2]: 100, KEYS[3]: 100}


def test_equal_powers_rotate_through_every_validator() -> None:
    validator_set = make_set([1] * 7)
    for start in range(0, 21, 7):
        assert {validator_set.proposer(r) for r in range(start, start + 7)} == set(KEYS[:7])


def test_proposer_sequence_continues_across_heights() -> None:
    validator_set = make_set([4, 2, 1])
    within_height = [validator_set.proposer(r) for r in range(10)]
    across_heights = []
    current = validator_set
    for _ in range(10):
        across_heights.append(current.proposer(0))
        current = current.for_next_height()
    assert within_height == across_heights


def test_far_rounds_past_the_cache_agree_with_step_by_step() -> None:
    validator_set = make_set([3, 2, 2])
    step_by_step = make_set([3, 2, 2])
    expected = [step_by_step.proposer(r) for r in range(1_100)]
    assert validator_set.proposer(1_099) == expected[1_099]
    assert [validator_set.proposer(r) for r in (0, 1_023, 1_024, 1_050)] == [
        expected[0],
        expected[1_023],
        expected[1_024],
        expected[1_050],
    ]
    with pytest.raises(ValueError):
        validator_set.proposer(-1)


def test_a_joining_validator_starts_last_in_line() -> None:
    validator_set = make_set([1, 1, 1]).advanced(2)
    grown = validator_set.updated([ValidatorUpdate(KEYS[5], 1)])
    index = grown.index_of(KEYS[5])
    assert index is not None
    others = [p for i, p in enumerate(grown.priorities) if i != index]
    assert grown.priorities[index] < min(others)  # -1.125 x total, then centred
    counts = Counter(grown.proposer(r) for r in range(400))
    assert 99 <= counts[KEYS[5]] <= 100  # and then takes its fair share


def test_updates_change_power_and_remove() -> None:
    validator_set = make_set([1, 2, 3])
    updated = validator_set.updated(
        [ValidatorUpdate(KEYS[0], 0), ValidatorUpdate(KEYS[1], 5), ValidatorUpdate(KEYS[3], 1)]
    )
    assert {v.public_key: v.voting_power for v in updated} == {KEYS[1]: 5, KEYS[2]: 3, KEYS[3]: 1}
    assert updated.total_voting_power == 9
    assert validator_set.total_voting_power == 6  # immutable


@pytest.mark.parametrize(
    ("updates", "match"),
    [
        ([ValidatorUpdate(KEYS[9], 0)], "non-member"),
        ([ValidatorUpdate(KEYS[0], 1), ValidatorUpdate(KEYS[0], 2)], "twice"),
        ([ValidatorUpdate(KEYS[0], -3)], ">= 0"),
        ([ValidatorUpdate(KEYS[0], 0), ValidatorUpdate(KEYS[1], 0)], "every validator"),
        ([ValidatorUpdate(b"x", 1)], "32 bytes"),
    ],
)
def test_invalid_updates(updates: list[ValidatorUpdate], match: str) -> None:
    with pytest.raises(InvalidValidatorSetError, match=match):
        make_set([1, 1]).updated(updates)


def test_hash_is_the_merkle_root_of_keys_and_powers() -> None:
    validator_set = make_set([2, 1])
    leaves = [hash_leaf(v.public_key + v.voting_power.to_bytes(8, "big")) for v in validator_set]
    assert validator_set.hash() == merkle_root(leaves)
    assert validator_set.hash() == validator_set.for_next_height().hash()  # priorities excluded
    assert validator_set.hash() != make_set([2, 2]).hash()
    assert validator_set.hash() != make_set([2, 1, 1]).hash()


@settings(max_examples=50, deadline=None)
@given(
    powers=st.lists(st.integers(1, 50), min_size=1, max_size=8),
    churn=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 50)), max_size=12),
)
def test_priorities_stay_bounded_and_centred_under_churn(
    powers: list[int], churn: list[tuple[int, int]]
) -> None:
    validator_set = make_set(powers)
    for key_index, power in churn:
        update = ValidatorUpdate(KEYS[key_index], power)
        try:
            validator_set = validator_set.for_next_height([update])
        except InvalidValidatorSetError:
            validator_set = validator_set.for_next_height()
        total = validator_set.total_voting_power
        priorities = validator_set.priorities
        assert max(priorities) - min(priorities) <= 4 * total
        assert abs(sum(priorities)) <= len(priorities) * (total + 1)
        assert validator_set.proposer(0) in validator_set


def test_schedule_applies_updates_after_the_delay() -> None:
    genesis = make_set([1, 1, 1])
    schedule = ValidatorSetSchedule(genesis, first_height=1, update_delay_heights=2)
    assert schedule.set_at(1) == genesis
    assert schedule.set_at(2) == genesis.for_next_height()
    schedule.commit(1, [ValidatorUpdate(KEYS[4], 2)])
    assert KEYS[4] not in schedule.set_at(2)
    assert KEYS[4] in schedule.set_at(3)
    schedule.commit(2)
    schedule.commit(3)
    assert schedule.set_at(5) == schedule.set_at(4).for_next_height()
    with pytest.raises(UsageError):
        schedule.set_at(3)  # committed heights are forgotten: the schedule is bounded
    with pytest.raises(UsageError):
        schedule.commit(5)  # heights in order


def test_schedule_leaves_itself_unchanged_on_invalid_updates() -> None:
    schedule = ValidatorSetSchedule(make_set([1]), update_delay_heights=1)
    with pytest.raises(InvalidValidatorSetError):
        schedule.commit(1, [ValidatorUpdate(KEYS[0], 0)])
    assert schedule.last_committed_height == 0
    schedule.commit(1)
    assert schedule.set_at(2) == make_set([1]).for_next_height()


@pytest.mark.parametrize("delay", [0, 17, True])
def test_schedule_delay_is_validated(delay: int) -> None:
    with pytest.raises(InvalidConfigError):
        ValidatorSetSchedule(make_set([1]), update_delay_heights=delay)

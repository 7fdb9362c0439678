"""The vote keeper: unit tests, and a stateful property test against a from-scratch model."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from consensus import UnknownValidatorError, Validator, ValidatorSet, Vote, VoteType
from consensus.limits import MAX_POLKA_HISTORY_ROUNDS, MAX_VALUES_PER_VALIDATOR_STEP
from consensus.votekeeper import ThresholdEvent, ThresholdKind, VoteKeeper, VoteStatus
from tests.consensus.factories import CHAIN_ID, key_pair, value_id

V, W, X = value_id("v"), value_id("w"), value_id("x")
PREVOTE, PRECOMMIT = VoteType.PREVOTE, VoteType.PRECOMMIT
SIGNATURE = b"\x00" * 64  # the keeper never checks signatures
KEYS = [key_pair(i).public_key for i in range(7)]


def vote(index: int, round_: int, vote_type: VoteType, value: bytes | None) -> Vote:
    return Vote(CHAIN_ID, 1, round_, vote_type, value, KEYS[index], SIGNATURE)


def keeper_of(powers: list[int]) -> VoteKeeper:
    return VoteKeeper(ValidatorSet(Validator(KEYS[i], p) for i, p in enumerate(powers)))


def test_events_of_a_round_in_order() -> None:
    keeper = keeper_of([1, 1, 1, 1])
    assert keeper.add_vote(vote(0, 0, PREVOTE, V)).events == ()
    assert keeper.add_vote(vote(1, 0, PREVOTE, V)).events == (
        ThresholdEvent(ThresholdKind.SKIP_ROUND, 0),
    )
    assert keeper.add_vote(vote(2, 0, PREVOTE, V)).events == (
        ThresholdEvent(ThresholdKind.POLKA_VALUE, 0, V),
        ThresholdEvent(ThresholdKind.POLKA_ANY, 0),
    )
    assert keeper.add_vote(vote(3, 0, PREVOTE, None)).events == ()  # each event once
    assert keeper.has_polka_for(0, V) and keeper.has_polka_any(0)
    assert not keeper.has_polka_nil(0)


def test_precommit_events_and_no_event_for_a_nil_precommit_quorum() -> None:
    keeper = keeper_of([1, 1, 1, 1])
    for index in range(3):
        result = keeper.add_vote(vote(index, 2, PRECOMMIT, None))
    assert result.events == (ThresholdEvent(ThresholdKind.PRECOMMIT_ANY, 2),)
    keeper = keeper_of([1, 1, 1, 1])
    for index in range(3):
        result = keeper.add_vote(vote(index, 2, PRECOMMIT, V))
    assert ThresholdEvent(ThresholdKind.PRECOMMIT_VALUE, 2, V) in result.events
    assert [v.validator for v in keeper.votes_for(2, PRECOMMIT, V)] == sorted(KEYS[:3])


def test_duplicates_and_equivocations() -> None:
    keeper = keeper_of([1, 1, 1, 1])
    assert keeper.add_vote(vote(0, 0, PREVOTE, V)).status is VoteStatus.ADDED
    assert keeper.add_vote(vote(0, 0, PREVOTE, V)).status is VoteStatus.DUPLICATE
    result = keeper.add_vote(vote(0, 0, PREVOTE, W))
    assert result.status is VoteStatus.EQUIVOCATION
    assert result.evidence is not None
    assert {result.evidence.vote_a.value_id, result.evidence.vote_b.value_id} == {V, W}
    assert keeper.power_for(0, PREVOTE, W) == 1  # counted for its value...
    keeper.add_vote(vote(1, 0, PREVOTE, None))
    assert not keeper.has_polka_any(0)  # ...but once only for "any": 2 validators of 4
    keeper.add_vote(vote(2, 0, PREVOTE, None))
    assert keeper.has_polka_any(0) and not keeper.has_polka_nil(0)
    keeper.add_vote(vote(3, 0, PREVOTE, None))
    assert keeper.has_polka_nil(0)
    assert keeper.vote_of(KEYS[0], 0, PREVOTE) == vote(0, 0, PREVOTE, V)


def test_an_equivocator_counts_for_a_bounded_number_of_values() -> None:
    keeper = keeper_of([1, 1, 1, 1])
    values = [value_id(f"value-{i}") for i in range(MAX_VALUES_PER_VALIDATOR_STEP + 3)]
    for value in values:
        keeper.add_vote(vote(0, 0, PREVOTE, value))
    counted = [value for value in values if keeper.power_for(0, PREVOTE, value)]
    assert counted == values[:MAX_VALUES_PER_VALIDATOR_STEP]


def test_non_members_are_rejected() -> None:
    keeper = keeper_of([1, 1, 1])
    with pytest.raises(UnknownValidatorError):
        keeper.add_vote(vote(5, 0, PREVOTE, V))


def test_dropped_rounds_keep_only_their_polka_within_the_history() -> None:
    keeper = keeper_of([1, 1, 1, 1])
    for round_ in range(MAX_POLKA_HISTORY_ROUNDS + 2):
        for index in range(3):
            keeper.add_vote(vote(index, round_, PREVOTE, V))
        keeper.add_vote(vote(0, round_, PRECOMMIT, V))
    keeper.drop_rounds(keeper.rounds())
    assert keeper.rounds() == []
    assert not keeper.has_polka_for(0, V) and not keeper.has_polka_for(1, V)
    assert keeper.has_polka_for(2, V) and not keeper.has_polka_for(2, W)
    assert keeper.power_for(5, PRECOMMIT, V) == 0
    assert keeper.votes_for(5, PREVOTE, V) == []


# --- stateful property test ------------------------------------------------------------------

Step = tuple[int, VoteType]


class VoteKeeperMachine(RuleBasedStateMachine):
    """Random votes of up to 7 weighted validators over 3 rounds, checked against a model
    that recomputes every tally from the list of accepted (validator, value) pairs."""

    def __init__(self) -> None:
        super().__init__()
        self.keeper = keeper_of([1])
        self.powers: list[int] = [1]
        self.first: dict[tuple[int, VoteType, int], bytes | None] = {}
        self.counted: dict[Step, list[tuple[int, bytes | None]]] = defaultdict(list)
        self.emitted: set[tuple[ThresholdKind, int, bytes | None]] = set()

    @initialize(powers=st.lists(st.integers(1, 10), min_size=1, max_size=7))
    def make_set(self, powers: list[int]) -> None:
        self.powers = powers
        self.keeper = keeper_of(powers)

    def thresholds(self) -> set[tuple[ThresholdKind, int, bytes | None]]:
        """Every threshold crossed, from scratch."""
        total = sum(self.powers)
        quorum = total * 2 // 3 + 1
        crossed: set[tuple[ThresholdKind, int, bytes | None]] = set()
        voters: dict[int, set[int]] = defaultdict(set)
        for (round_, vote_type), pairs in self.counted.items():
            by_value: dict[bytes | None, int] = defaultdict(int)
            for index, value in pairs:
                by_value[value] += self.powers[index]
                voters[round_].add(index)
            distinct = sum(self.powers[i] for i in {index for index, _ in pairs})
            prevote = vote_type is VoteType.PREVOTE
            for value, power in by_value.items():
                if power >= quorum and (prevote or value is not None):
                    if prevote:
                        kind = (
                            ThresholdKind.POLKA_NIL if value is None else ThresholdKind.POLKA_VALUE
                        )
                    else:
                        kind = ThresholdKind.PRECOMMIT_VALUE
                    crossed.add((kind, round_, value))
            if distinct >= quorum:
                any_kind = ThresholdKind.POLKA_ANY if prevote else ThresholdKind.PRECOMMIT_ANY
                crossed.add((any_kind, round_, None))
        for round_, indices in voters.items():
            if sum(self.powers[i] for i in indices) >= total // 3 + 1:
                crossed.add((ThresholdKind.SKIP_ROUND, round_, None))
        return crossed

    @rule(
        data=st.data(),
        round_=st.integers(0, 2),
        vote_type=st.sampled_from(VoteType),
        value=st.sampled_from([V, W, X, None]),
    )
    def add(
        self, data: st.DataObject, round_: int, vote_type: VoteType, value: bytes | None
    ) -> None:
        index = data.draw(st.integers(0, len(self.powers) - 1))
        result = self.keeper.add_vote(vote(index, round_, vote_type, value))
        pairs = self.counted[(round_, vote_type)]
        first_key = (index, vote_type, round_)
        if (index, value) in pairs:
            assert result.status is VoteStatus.DUPLICATE and result.events == ()
            return
        if first_key in self.first:
            assert result.status is VoteStatus.EQUIVOCATION
            assert result.evidence is not None
            assert result.evidence.validator == KEYS[index]
            values = {result.evidence.vote_a.value_id, result.evidence.vote_b.value_id}
            assert values == {self.first[first_key], value}
            if sum(1 for i, _ in pairs if i == index) >= MAX_VALUES_PER_VALIDATOR_STEP:
                assert result.events == ()
                return
        else:
            assert result.status is VoteStatus.ADDED and result.evidence is None
            self.first[first_key] = value
        pairs.append((index, value))
        crossed = self.thresholds()
        new = {(e.kind, e.round, e.value_id) for e in result.events}
        assert new == crossed - self.emitted, "each threshold is reported once, when crossed"
        self.emitted |= new

    @invariant()
    def queries_agree_with_the_model(self) -> None:
        crossed = self.thresholds()
        for round_ in range(3):
            for value in (V, W, X):
                polka = (ThresholdKind.POLKA_VALUE, round_, value) in crossed
                assert self.keeper.has_polka_for(round_, value) == polka
                commit = (ThresholdKind.PRECOMMIT_VALUE, round_, value) in crossed
                assert self.keeper.has_precommit_quorum_for(round_, value) == commit
            assert self.keeper.has_polka_nil(round_) == (
                (ThresholdKind.POLKA_NIL, round_, None) in crossed
            )
            assert self.keeper.has_polka_any(round_) == (
                (ThresholdKind.POLKA_ANY, round_, None) in crossed
            )
            assert self.keeper.has_precommit_any(round_) == (
                (ThresholdKind.PRECOMMIT_ANY, round_, None) in crossed
            )
            assert self.keeper.has_f_plus_one_voters(round_) == (
                (ThresholdKind.SKIP_ROUND, round_, None) in crossed
            )

    @invariant()
    def no_value_ever_exceeds_the_total_power(self) -> None:
        total = sum(self.powers)
        for round_ in range(3):
            for vote_type in VoteType:
                assert self.keeper.power_for(round_, vote_type, V) <= total


VoteKeeperMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None
)
TestVoteKeeper = VoteKeeperMachine.TestCase

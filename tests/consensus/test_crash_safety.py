"""Crash safety: Persist before signing, replay to the same state, no conflicting signature."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import (
    ConsensusCore,
    ConsensusError,
    Effect,
    Input,
    Persist,
    ProposalReceived,
    SignAndBroadcastProposal,
    SignAndBroadcastVote,
    SignGuard,
    SigningRecord,
    SigningStep,
    StartHeight,
    TimeoutElapsed,
    TimeoutKind,
    ValueValidity,
    VoteReceived,
    VoteType,
)
from tests.consensus.factories import CHAIN_ID, value_id
from tests.consensus.scenario import Scenario, own_votes

PREVOTE, PRECOMMIT = VoteType.PREVOTE, VoteType.PRECOMMIT
V, W = value_id("v"), value_id("w")


def prevoted_v() -> tuple[Scenario, list[Effect]]:
    s = Scenario(not_proposer_of=(0, 1, 2))
    s.start()
    effects = s.propose(0, V)
    assert own_votes(effects) == [(PREVOTE, 0, V)]
    return s, effects


def test_a_replayed_core_refuses_a_different_vote_for_the_same_step() -> None:
    s, _ = prevoted_v()
    assert s.me is not None
    own_key = s.keys[s.me].public_key
    restarted, resumed = ConsensusCore.replay(CHAIN_ID, own_key, s.log)
    assert restarted.round_state == s.core.round_state
    assert restarted.last_signed == s.core.last_signed
    assert own_votes(resumed) == [(PREVOTE, 0, V)]  # the same vote, safe to re-send
    assert not [e for e in resumed if isinstance(e, Persist)]

    timeout = TimeoutElapsed(TimeoutKind.PROPOSE, 1, 0)
    assert own_votes(restarted.handle(timeout)) == []
    amnesiac = ConsensusCore(CHAIN_ID, own_key)  # what a restart without the log would do
    amnesiac.handle(StartHeight(1, s.validator_set))
    assert own_votes(amnesiac.handle(timeout)) == [(PREVOTE, 0, None)]


def test_the_last_signed_record_alone_refuses_conflicts_but_allows_the_same_vote() -> None:
    s, effects = prevoted_v()
    assert s.me is not None
    [persist] = [e for e in effects if isinstance(e, Persist)]
    own_key = s.keys[s.me].public_key

    conflicting = ConsensusCore(CHAIN_ID, own_key, last_signed=persist.record)
    conflicting.handle(StartHeight(1, s.validator_set))
    assert own_votes(conflicting.handle(TimeoutElapsed(TimeoutKind.PROPOSE, 1, 0))) == []
    assert conflicting.stats.refused_signatures == 1

    same = ConsensusCore(CHAIN_ID, own_key, last_signed=persist.record)
    same.handle(StartHeight(1, s.validator_set))
    assert own_votes(same.handle(ProposalReceived(s.proposal(0, V), True))) == [(PREVOTE, 0, V)]


def test_sign_guard_orders_positions() -> None:
    def record(height: int, round_: int, step: SigningStep, data: bytes) -> SigningRecord:
        return SigningRecord(height, round_, step, data)

    guard = SignGuard()
    assert guard.permit(record(1, 0, SigningStep.PREVOTE, b"a"))
    assert guard.permit(record(1, 0, SigningStep.PREVOTE, b"a"))  # identical: re-sign
    assert not guard.permit(record(1, 0, SigningStep.PREVOTE, b"b"))  # conflicting
    assert not guard.permit(record(1, 0, SigningStep.PROPOSAL, b"c"))  # going back
    assert guard.permit(record(1, 0, SigningStep.PRECOMMIT, b"d"))
    assert guard.permit(record(1, 1, SigningStep.PROPOSAL, b"e"))
    assert not guard.permit(record(0, 9, SigningStep.PRECOMMIT, b"f"))
    assert guard.last == record(1, 1, SigningStep.PROPOSAL, b"e")


# --- random runs -------------------------------------------------------------------------------

VALUES = [V, W, None]
ROUNDS = st.integers(0, 2)
action = st.one_of(
    st.tuples(st.just("vote"), st.integers(0, 3), ROUNDS, st.sampled_from(VoteType),
              st.sampled_from(VALUES)),
    st.tuples(st.just("quorum"), ROUNDS, st.sampled_from(VoteType), st.sampled_from(VALUES)),
    st.tuples(st.just("proposal"), ROUNDS, st.sampled_from([V, W]),
              st.sampled_from([True, False, None])),
    st.tuples(st.just("validity"), st.sampled_from([V, W]), st.booleans()),
    st.tuples(st.just("timeout"), st.sampled_from(TimeoutKind), ROUNDS),
)  # fmt: skip


def to_inputs(s: Scenario, step: tuple[Any, ...]) -> list[Input]:
    """The inputs of one generated action ("quorum": the three other validators' votes)."""
    kind = step[0]
    if kind == "vote":
        _, index, round_, vote_type, value = step
        return [VoteReceived(s.vote(index, round_, vote_type, value))]
    if kind == "quorum":
        _, round_, vote_type, value = step
        return [VoteReceived(s.vote(i, round_, vote_type, value)) for i in s.others()]
    if kind == "proposal":
        _, round_, value, valid = step
        return [ProposalReceived(s.proposal(round_, value), valid)]
    if kind == "validity":
        _, value, valid = step
        return [ValueValidity(1, value, valid)]
    _, timeout_kind, round_ = step
    return [TimeoutElapsed(timeout_kind, 1, round_)]


def inputs_of(s: Scenario, steps: list[tuple[Any, ...]]) -> list[Input]:
    return [event for step in steps for event in to_inputs(s, step)]


def run(s: Scenario, inputs: list[Input]) -> list[Effect]:
    """Feed ``inputs`` (skipping rejected ones, e.g. conflicting verdicts), looping back."""
    effects: list[Effect] = []
    for event in inputs:
        try:
            produced = s.feed(event)
        except ConsensusError:
            continue
        effects += produced
        effects += s.loop_back(produced)
    return effects


def outcome(core: ConsensusCore, event: Input) -> list[Effect] | type[ConsensusError]:
    """The effects of ``event``, or the type of error it raised."""
    try:
        return core.handle(event)
    except ConsensusError as exc:
        return type(exc)


@settings(max_examples=60, deadline=None)
@given(st.lists(action, max_size=40), st.lists(action, max_size=10))
def test_replay_rebuilds_the_state_and_signing_stays_unique(
    before_crash: list[tuple[Any, ...]], after_crash: list[tuple[Any, ...]]
) -> None:
    s = Scenario(me=1)  # proposes in some rounds, not in others
    s.start()
    effects = run(s, inputs_of(s, before_crash))
    assert s.me is not None
    restarted, _ = ConsensusCore.replay(CHAIN_ID, s.keys[s.me].public_key, s.log)
    assert restarted.round_state == s.core.round_state
    assert restarted.last_signed == s.core.last_signed
    assert restarted.buffered_inputs == s.core.buffered_inputs

    for event in inputs_of(s, after_crash):
        expected = outcome(s.core, event)
        assert outcome(restarted, event) == expected
        if isinstance(expected, list):
            effects += expected
    signed: dict[tuple[int, int, int], bytes] = {}
    for effect in effects:
        if isinstance(effect, SignAndBroadcastVote | SignAndBroadcastProposal):
            message = effect.vote if isinstance(effect, SignAndBroadcastVote) else effect.proposal
            step = int(effect.vote.vote_type) if isinstance(effect, SignAndBroadcastVote) else 0
            position = (message.height, message.round, step)
            assert signed.setdefault(position, effect.sign_bytes) == effect.sign_bytes
    assert s.core.stats.refused_signatures == 0


def test_replay_needs_the_previous_height_for_early_messages() -> None:
    s = Scenario(not_proposer_of=(0,))
    s.start()
    s.propose(0, V)
    # Height 2's proposal and a polka arrive while height 1 still runs: they wait.
    s.feed(ProposalReceived(s.proposal(0, W, height=2), True))
    s.votes(s.others(), 0, PREVOTE, W, height=2)
    s.votes(s.others(), 0, PRECOMMIT, V)  # height 1 decided
    effects = s.start(height=2)
    assert own_votes(effects) == [(PREVOTE, 0, W), (PRECOMMIT, 0, W)]
    assert s.me is not None
    own_key = s.keys[s.me].public_key

    restarted, resumed = ConsensusCore.replay(CHAIN_ID, own_key, s.log)
    assert restarted.round_state == s.core.round_state
    assert own_votes(resumed) == [(PREVOTE, 0, W), (PRECOMMIT, 0, W)]  # height 2 only
    assert {e.vote.height for e in resumed if isinstance(e, SignAndBroadcastVote)} == {2}

    second_start = max(i for i, e in enumerate(s.log) if isinstance(e, StartHeight))
    too_short, _ = ConsensusCore.replay(CHAIN_ID, own_key, s.log[second_start:])
    assert too_short.round_state != s.core.round_state  # the early messages are missing

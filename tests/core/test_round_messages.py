"""What a node holds of the current height for catching peers up, and what it plans to send:
``node.chain.round_messages`` and ``node.chain.catch_up`` on their own, limits included."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import RoundState
from node.chain.catch_up import PeerRounds, TickBudget, catch_up_messages
from node.chain.round_messages import (
    KEPT_PAST_ROUNDS,
    MAX_OWN_VOTES,
    MAX_PROPOSALS_PER_ROUND,
    MAX_VALUES_PER_VALIDATOR_STEP,
    RoundMessages,
)
from node.codec import encode_message
from node.types import Proposal, Vote, VoteType
from tests.core.helpers import CHAIN, GENESIS_SET, VALIDATORS

KEYS = [k.public_key for k in VALIDATORS.keys]
ME = KEYS[0]
HEIGHT = 3
A = b"\xaa" * 32
B = b"\xbb" * 32
PREVOTE, PRECOMMIT = VoteType.PREVOTE, VoteType.PRECOMMIT


def vote(
    signer: int, round_: int, vote_type: VoteType, value: bytes | None, height: int = HEIGHT
) -> Vote:
    """A vote (the store never checks signatures: the core verified them)."""
    return Vote(CHAIN, height, round_, vote_type, value, KEYS[signer], bytes(64))


def proposal(round_: int, value: bytes, signer: int = 1, valid_round: int = -1) -> Proposal:
    return Proposal(CHAIN, HEIGHT, round_, value, valid_round, KEYS[signer], bytes(64))


def held() -> RoundMessages:
    messages = RoundMessages(ME)
    messages.reset(HEIGHT, GENESIS_SET)
    return messages


def add(messages: RoundMessages, message: Vote | Proposal) -> bytes:
    data = encode_message(message)
    if isinstance(message, Vote):
        messages.add_vote(message, data)
    else:
        messages.add_proposal(message, data)
    return data


def test_held_messages_are_recognised_byte_for_byte() -> None:
    messages = held()
    theirs, mine = vote(1, 0, PREVOTE, A), vote(0, 0, PREVOTE, A)
    data, own = add(messages, theirs), add(messages, mine)
    offered = add(messages, proposal(0, A))
    assert messages.is_held(theirs, data) and messages.is_held(mine, own)
    assert messages.is_held(proposal(0, A), offered)
    assert not messages.is_held(theirs, data + b"\x00")
    assert not messages.is_held(vote(2, 0, PREVOTE, A), encode_message(vote(2, 0, PREVOTE, A)))
    messages.reset(HEIGHT + 1, GENESIS_SET)
    assert not messages.is_held(theirs, data)


def test_a_reset_without_a_validator_set_holds_nothing() -> None:
    messages = RoundMessages(ME)
    messages.reset(HEIGHT, None)
    add(messages, vote(1, 0, PREVOTE, A))
    assert messages.rounds_held == 0 and messages.height == 0


def test_quorums_count_each_validator_once_per_value() -> None:
    messages = held()
    for signer in (1, 2):
        add(messages, vote(signer, 0, PRECOMMIT, None))
    add(messages, vote(2, 0, PRECOMMIT, None))  # a repeat adds no power
    assert messages.quorum_value(0, PRECOMMIT) == (False, None)
    assert messages.highest_precommit_quorum() is None
    add(messages, vote(3, 0, PRECOMMIT, None))
    assert messages.quorum_value(0, PRECOMMIT) == (True, None)
    for signer in (1, 2, 3):
        add(messages, vote(signer, 1, PRECOMMIT, A))
    assert messages.highest_precommit_quorum() == (1, A)
    assert len(messages.votes_for(1, PRECOMMIT, A)) == 3


def test_an_equivocator_is_held_for_two_values_per_step_at_most() -> None:
    messages = held()
    values = [A, B, None, b"\xcc" * 32]
    for value in values:
        add(messages, vote(1, 0, PREVOTE, value))
    kept = [value for value in values if messages.votes_for(0, PREVOTE, value)]
    assert kept == values[:MAX_VALUES_PER_VALIDATOR_STEP]


def test_rounds_outside_the_window_go_unless_protected() -> None:
    messages = held()
    add(messages, vote(1, 0, PREVOTE, A))
    add(messages, vote(1, 1, PREVOTE, A))
    assert messages.votes_for(5, PREVOTE, A) == [] and messages.rounds_held == 2
    add(messages, vote(1, 2, PREVOTE, A))  # two above the current round: not held
    assert messages.rounds_held == 2

    messages.follow(1 + KEPT_PAST_ROUNDS, protected=(0, -1))

    assert messages.votes_for(0, PREVOTE, A) != []  # the valid round stays
    assert messages.votes_for(1, PREVOTE, A) != []  # still in the window
    messages.follow(2 + KEPT_PAST_ROUNDS, protected=(-1, -1))
    assert messages.votes_for(0, PREVOTE, A) == messages.votes_for(1, PREVOTE, A) == []


def test_the_highest_precommit_quorum_outlives_the_window() -> None:
    messages = held()
    for signer in (1, 2, 3):
        add(messages, vote(signer, 0, PRECOMMIT, None))
    messages.follow(10, protected=())
    assert messages.highest_precommit_quorum() == (0, None)


def test_own_votes_of_every_round_are_held_up_to_the_limit_newest_first() -> None:
    messages = held()
    rounds = MAX_OWN_VOTES // 2 + 3
    for round_ in range(rounds):
        messages.follow(round_, protected=())
        add(messages, vote(0, round_, PREVOTE, None))
        add(messages, vote(0, round_, PRECOMMIT, None))
    add(messages, vote(0, rounds - 1, PRECOMMIT, A))  # one vote per step: the first stays

    own = messages.own_votes()

    assert len(own) == messages.own_votes_held == MAX_OWN_VOTES
    newest = [encode_message(vote(0, rounds - 1, t, None)) for t in (PREVOTE, PRECOMMIT)]
    assert own[:2] == newest
    assert own[-1] == encode_message(vote(0, rounds - MAX_OWN_VOTES // 2, PRECOMMIT, None))
    assert messages.own_votes(above_round=rounds - 2) == newest


def test_proposals_per_round_are_bounded_and_own_ones_recognised() -> None:
    messages = held()
    for value in range(MAX_PROPOSALS_PER_ROUND + 2):
        add(messages, proposal(0, bytes([value]) * 32))
    held_values = [v for v in range(8) if messages.proposal_for(0, bytes([v]) * 32) is not None]
    assert held_values == list(range(MAX_PROPOSALS_PER_ROUND))
    assert messages.own_proposal(0) is None
    data = add(messages, proposal(1, A, signer=0))
    assert messages.own_proposal(1) == (A, data)
    assert messages.own_proposal(2) is None


VOTES = st.tuples(
    st.integers(0, 3),
    st.integers(0, 40),
    st.sampled_from([PREVOTE, PRECOMMIT]),
    st.sampled_from([A, B, None]),
)
MOVES = st.tuples(st.integers(0, 6), st.integers(-1, 40))
"""Round advances and the protected (valid) round given with them."""


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.one_of(VOTES, MOVES), max_size=120))
def test_whatever_arrives_the_held_rounds_stay_within_the_window(
    steps: list[tuple[int, int, VoteType, bytes | None] | tuple[int, int]],
) -> None:
    messages = held()
    current, protected = 0, -1
    for step in steps:
        if len(step) == 4:
            signer, round_, vote_type, value = step
            add(messages, vote(signer, round_, vote_type, value))
        else:
            advance, protected = step
            current += advance
            messages.follow(current, protected=(protected,))
    outside = [
        r
        for r in messages.rounds()
        if not current - KEPT_PAST_ROUNDS <= r <= current + 1 and r != protected
    ]
    assert len(outside) <= 1  # the highest precommit quorum when the window last moved
    assert all(messages.quorum_value(r, PRECOMMIT)[0] for r in outside)
    assert messages.own_votes_held <= MAX_OWN_VOTES


# -- the plan and its budget -----------------------------------------------------------------------


def state(round_: int, valid_round: int = -1, valid_value: bytes | None = None) -> RoundState:
    return RoundState(
        height=HEIGHT,
        round=round_,
        locked_round=valid_round,
        locked_value=valid_value,
        valid_round=valid_round,
        valid_value=valid_value,
    )


def test_the_plan_relays_only_quorums_of_others_never_loose_votes() -> None:
    messages = held()
    loose = add(messages, vote(1, 1, PREVOTE, B))
    polka = [add(messages, vote(s, 0, PREVOTE, A)) for s in (1, 2, 3)]
    nil = [add(messages, vote(s, 0, PREVOTE, None)) for s in (2,)]
    block = b"block-of-A"

    plan = catch_up_messages(messages, state(1, 0, A), {A: block}.get)

    assert loose not in plan and nil[0] not in plan
    assert plan == polka  # no proposal of round 0 held: no block either


def test_a_lagging_peer_gets_no_block_of_a_round_it_is_past() -> None:
    messages = held()
    offered = add(messages, proposal(0, A))
    polka = [add(messages, vote(s, 0, PREVOTE, A)) for s in (1, 2, 3)]
    blocks = {A: b"block-of-A"}

    assert catch_up_messages(messages, state(2, 0, A), blocks.get, peer_round=0) == [
        *polka,
        b"block-of-A",
        offered,
    ]
    assert catch_up_messages(messages, state(2, 0, A), blocks.get, peer_round=1) == polka


def test_the_budget_counts_messages_and_bytes_and_refills() -> None:
    budget = TickBudget(max_messages=2, max_bytes=100)
    assert not budget.take(101)
    assert budget.take(60) and not budget.take(50) and budget.take(40)
    assert budget.exhausted() and not budget.take(1)
    budget.refill()
    assert not budget.exhausted() and budget.take(100)


def test_peer_rounds_remember_the_highest_round_within_their_limit() -> None:
    rounds = PeerRounds(max_peers=2)
    assert rounds.note("a", 3) == 3 and rounds.note("a", 1) == 3
    assert rounds.note("b", 0) == 0 and rounds.note("c", 5) is None
    assert rounds.answer_due("a") and not rounds.answer_due("a")
    rounds.new_tick()
    assert rounds.answer_due("a")
    rounds.reset()
    assert rounds.note("c", 1) == 1

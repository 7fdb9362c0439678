"""The bounded structures on their own: round window, future-height buffer, verdicts."""

from __future__ import annotations

import pytest

from consensus import TimeoutElapsed, TimeoutKind, ValueValidity, VoteReceived, VoteType
from consensus.future_buffer import LOCAL_SENDER, FutureBuffer
from consensus.limits import MAX_FUTURE_ROUNDS_PER_VALIDATOR, MAX_VALUE_VERDICTS, PAST_ROUNDS_KEPT
from consensus.round_window import RoundWindow
from tests.consensus.factories import key_pair, signed_vote, value_id
from tests.consensus.scenario import Scenario, own_votes

A, B = key_pair(0).public_key, key_pair(1).public_key


def test_window_admits_near_rounds_and_budgets_far_ones() -> None:
    window = RoundWindow()
    assert window.admit(0, A) and window.admit(1, A)
    for far in range(10, 10 + MAX_FUTURE_ROUNDS_PER_VALIDATOR):
        assert window.admit(far, A)
    assert not window.admit(50, A)  # A's budget is spent...
    assert window.admit(50, B)  # ...B's is not
    assert window.admit(50, A)  # and a tracked round admits anyone


def test_window_returns_budgets_and_drops_old_unprotected_rounds() -> None:
    window = RoundWindow()
    for round_ in range(3):
        window.admit(round_, A)
    window.admit(40, A)
    window.admit(41, A)
    dropped = window.advance(PAST_ROUNDS_KEPT + 1, protected={1})
    assert dropped == [0]
    assert window.is_tracked(1) and window.is_tracked(2) and window.is_tracked(40)
    window.advance(40, protected=())
    assert window.admit(90, A)  # rounds 40 and 41 became ordinary: budget returned
    with pytest.raises(AssertionError):
        window.advance(3, protected=())


def test_future_buffer_limits_and_takes_by_height() -> None:
    buffer = FutureBuffer(max_total=4, max_per_sender=2)
    vote = VoteReceived(signed_vote(key_pair(0), 2, 0, VoteType.PREVOTE, None))
    verdict = ValueValidity(3, value_id("v"), True)
    assert buffer.add(2, A, vote) and buffer.add(2, A, vote)
    assert not buffer.add(2, A, vote)  # per sender
    assert buffer.add(3, LOCAL_SENDER, verdict) and buffer.add(2, B, vote)
    assert not buffer.add(2, key_pair(5).public_key, vote)  # total
    assert buffer.take(3) == [verdict]  # height 2 is discarded on the way
    assert len(buffer) == 0
    assert buffer.add(4, A, vote)  # budgets were returned
    with pytest.raises(ValueError):
        FutureBuffer(max_per_sender=0)


def test_validity_verdicts_are_bounded_but_never_forget_the_locked_value() -> None:
    s = Scenario(not_proposer_of=(0, 1))
    s.start()
    value = value_id("locked")
    s.loop_back(s.propose(0, value))
    s.votes(s.others(), 0, VoteType.PREVOTE, value)  # locked on it
    for index in range(MAX_VALUE_VERDICTS + 10):
        s.feed(ValueValidity(1, value_id(f"other-{index}"), True))
    s.votes(s.others(), 0, VoteType.PRECOMMIT, None)
    s.feed(TimeoutElapsed(TimeoutKind.PRECOMMIT, 1, 0))
    proposal_effects = s.propose(1, value, valid=None, valid_round=0)
    assert own_votes(proposal_effects) == [(VoteType.PREVOTE, 1, value)]  # verdict kept

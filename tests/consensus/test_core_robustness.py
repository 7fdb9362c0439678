"""Bad, stale and excessive inputs: typed errors, no state change, and bounded memory."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consensus import (
    CommitCertificateReceived,
    ConsensusCore,
    InvalidConfigError,
    MalformedMessageError,
    NotProposerError,
    ProposalReceived,
    ProposeValue,
    ReportEvidence,
    StartHeight,
    TimeoutElapsed,
    TimeoutKind,
    UnknownValidatorError,
    UsageError,
    ValueValidity,
    Vote,
    VoteReceived,
    VoteType,
    WrongChainError,
    build_commit_certificate,
)
from consensus.limits import (
    MAX_BUFFERED_FUTURE_INPUTS_PER_SENDER,
    MAX_FUTURE_ROUNDS_PER_VALIDATOR,
    PAST_ROUNDS_KEPT,
    PROPOSAL_LOOKAHEAD_ROUNDS,
)
from tests.consensus.factories import CHAIN_ID, key_pair, signed_proposal, signed_vote, value_id
from tests.consensus.scenario import Scenario, own_votes

PREVOTE, PRECOMMIT = VoteType.PREVOTE, VoteType.PRECOMMIT
V, W = value_id("v"), value_id("w")


def started() -> Scenario:
    s = Scenario(not_proposer_of=(0, 1, 2))
    s.start()
    return s


def good_vote(s: Scenario) -> Vote:
    return s.vote(s.others()[0], 0, PREVOTE, V)


@pytest.mark.parametrize(
    ("mutation", "error"),
    [
        ({"chain_id": "another-chain"}, WrongChainError),
        ({"chain_id": ""}, MalformedMessageError),
        ({"chain_id": "x" * 65}, MalformedMessageError),
        ({"height": 0}, MalformedMessageError),
        ({"height": True}, MalformedMessageError),
        ({"round": -1}, MalformedMessageError),
        ({"round": 2**31}, MalformedMessageError),
        ({"vote_type": 1}, MalformedMessageError),
        ({"value_id": b"\x00" * 31}, MalformedMessageError),
        ({"value_id": "not bytes"}, MalformedMessageError),
        ({"validator": b"\x01" * 31}, MalformedMessageError),
        ({"signature": b""}, MalformedMessageError),
        ({"validator": key_pair(99).public_key}, UnknownValidatorError),
    ],
)
def test_bad_votes_raise_typed_errors_and_change_nothing(
    mutation: dict[str, object], error: type[Exception]
) -> None:
    s = started()
    state, stats = s.core.round_state, replace(s.core.stats)
    with pytest.raises(error):
        s.feed(VoteReceived(replace(good_vote(s), **mutation)))  # type: ignore[arg-type]
    assert s.core.round_state == state
    assert s.core.stats.inputs_handled == stats.inputs_handled + 1
    assert s.core.stats.duplicate_votes == stats.duplicate_votes


def test_proposal_from_a_validator_that_is_not_the_proposer() -> None:
    s = started()
    impostor = s.keys[s.index_of_proposer(1)]
    with pytest.raises(NotProposerError):
        s.feed(ProposalReceived(signed_proposal(impostor, 1, 0, V), True))
    assert s.feed(TimeoutElapsed(TimeoutKind.PROPOSE, 1, 0))  # still waiting: prevotes nil


@pytest.mark.parametrize("valid_round", [0, 1, -2])
def test_proposal_with_an_impossible_valid_round(valid_round: int) -> None:
    s = started()
    proposal = replace(s.proposal(0, V), valid_round=valid_round)
    with pytest.raises(MalformedMessageError, match="valid round"):
        s.feed(ProposalReceived(proposal, True))


def test_proposal_from_a_non_validator() -> None:
    s = started()
    with pytest.raises(UnknownValidatorError):
        s.feed(ProposalReceived(signed_proposal(key_pair(77), 1, 0, V), True))


def test_each_validator_counts_once() -> None:
    s = started()
    a, b, _ = s.others()
    s.loop_back(s.propose(0, V))
    for _ in range(3):
        assert own_votes(s.votes([a], 0, PREVOTE, V)) == []
    assert s.core.stats.duplicate_votes == 2
    assert own_votes(s.votes([b], 0, PREVOTE, V)) == [(PRECOMMIT, 0, V)]


def test_an_equivocation_becomes_evidence_once() -> None:
    s = started()
    a = s.others()[0]
    s.votes([a], 0, PREVOTE, V)
    effects = s.votes([a], 0, PREVOTE, W) + s.votes([a], 0, PREVOTE, None)
    reports = [e for e in effects if isinstance(e, ReportEvidence)]
    assert len(reports) == 1
    evidence = reports[0].evidence
    assert {evidence.vote_a.value_id, evidence.vote_b.value_id} == {V, W}
    assert evidence.validator == s.keys[a].public_key
    assert s.core.evidence.pending() == (evidence,)
    assert s.core.stats.equivocations == 2


# --- routing by height -------------------------------------------------------------------------


def test_messages_of_the_next_height_wait_for_it() -> None:
    s = started()
    a, b, c = s.others()
    next_round_proposal = ProposalReceived(s.proposal(0, V, height=2), True)
    assert s.feed(next_round_proposal) == []
    assert s.votes([a, b, c], 0, PREVOTE, V, height=2) == []
    assert s.core.buffered_inputs == 4
    effects = s.start(height=2)
    assert own_votes(effects) == [(PREVOTE, 0, V), (PRECOMMIT, 0, V)]
    assert s.core.buffered_inputs == 0


def test_messages_beyond_the_next_height_are_dropped() -> None:
    s = started()
    assert s.votes([s.others()[0]], 0, PREVOTE, V, height=3) == []
    assert s.core.buffered_inputs == 0
    assert s.core.stats.dropped_inputs == 1


def test_the_future_height_buffer_is_bounded_per_sender() -> None:
    s = started()
    a = s.others()[0]
    for round_ in range(MAX_BUFFERED_FUTURE_INPUTS_PER_SENDER + 5):
        s.votes([a], round_, PREVOTE, V, height=2)
    assert s.core.buffered_inputs == MAX_BUFFERED_FUTURE_INPUTS_PER_SENDER
    assert s.core.stats.dropped_inputs == 5


def test_buffered_messages_of_non_validators_are_rejected_when_their_height_starts() -> None:
    s = started()
    outsider = signed_vote(key_pair(50), 2, 0, PREVOTE, V)
    s.feed(VoteReceived(outsider))  # cannot be checked yet: no validator set for height 2
    s.start(height=2)
    assert s.core.stats.rejected_buffered_inputs == 1


def test_messages_of_earlier_heights_are_ignored() -> None:
    s = started()
    s.start(height=2)
    assert s.votes(s.others(), 0, PREVOTE, V, height=1) == []
    assert s.core.stats.stale_inputs == 3


# --- bounded rounds ----------------------------------------------------------------------------


def test_one_validator_opens_a_bounded_number_of_future_rounds() -> None:
    s = started()
    a = s.others()[0]
    for round_ in range(10, 60):
        s.votes([a], round_, PREVOTE, None)
    assert s.core.tracked_rounds == MAX_FUTURE_ROUNDS_PER_VALIDATOR
    assert s.core.stats.dropped_inputs == 50 - MAX_FUTURE_ROUNDS_PER_VALIDATOR


def test_rounds_far_behind_are_forgotten() -> None:
    s = started()
    for round_ in range(PAST_ROUNDS_KEPT + 10):
        s.votes([s.others()[0]], round_, PREVOTE, None)
        s.feed(TimeoutElapsed(TimeoutKind.PRECOMMIT, 1, round_))
    assert s.core.tracked_rounds <= PAST_ROUNDS_KEPT + 2
    assert s.votes([s.others()[1]], 0, PREVOTE, None) == []  # round 0 is gone
    assert s.core.stats.stale_inputs >= 1


def test_proposals_beyond_the_lookahead_are_dropped_cheaply() -> None:
    s = started()
    far = PROPOSAL_LOOKAHEAD_ROUNDS + 1
    proposer = s.keys[0]  # whoever signed it: its proposer is not even computed
    assert s.feed(ProposalReceived(signed_proposal(proposer, 1, far, V), True)) == []
    assert s.core.stats.dropped_inputs == 1


# --- the caller's contract ---------------------------------------------------------------------


def test_inputs_before_the_first_height_are_a_usage_error() -> None:
    core = ConsensusCore(CHAIN_ID, key_pair(0).public_key)
    with pytest.raises(UsageError, match="StartHeight"):
        core.handle(VoteReceived(signed_vote(key_pair(1), 1, 0, PREVOTE, V)))


def test_heights_only_increase() -> None:
    s = started()
    with pytest.raises(UsageError, match="not above"):
        s.start(height=1)


def test_conflicting_validity_verdicts() -> None:
    s = started()
    s.feed(ValueValidity(1, V, True))
    with pytest.raises(UsageError, match="conflicting"):
        s.feed(ValueValidity(1, V, False))
    with pytest.raises(UsageError, match="conflicting"):
        s.propose(0, V, valid=False)


@pytest.mark.parametrize(
    "bad_input",
    [
        ValueValidity(1, V, 1),  # type: ignore[arg-type]
        ValueValidity(1, b"short", True),
        ProposeValue(2, 0, V),
        TimeoutElapsed(4, 1, 0),  # type: ignore[arg-type]
        TimeoutElapsed(TimeoutKind.PROPOSE, 1, -1),
        "not an input",
    ],
)
def test_caller_mistakes_are_usage_errors(bad_input: object) -> None:
    s = started()
    with pytest.raises(UsageError):
        s.feed(bad_input)  # type: ignore[arg-type]


def test_start_height_needs_a_validator_set() -> None:
    core = ConsensusCore(CHAIN_ID)
    with pytest.raises(UsageError):
        core.handle(StartHeight(1, [key_pair(0).public_key]))  # type: ignore[arg-type]


@pytest.mark.parametrize(("chain_id", "own_key"), [("", None), (CHAIN_ID, b"short")])
def test_bad_configuration(chain_id: str, own_key: bytes | None) -> None:
    with pytest.raises(InvalidConfigError):
        ConsensusCore(chain_id, own_key)


def test_certificates_of_other_heights_are_ignored() -> None:
    s = started()
    precommits = [s.vote(i, 0, PRECOMMIT, V, height=5) for i in s.others()]
    certificate = build_commit_certificate(CHAIN_ID, 5, 0, V, precommits)
    assert s.feed(CommitCertificateReceived(certificate)) == []
    assert s.core.stats.stale_inputs == 1

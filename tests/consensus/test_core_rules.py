"""Step tests of the whole core, one or more per rule of the paper, driven by signed inputs."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from consensus import (
    CommitCertificateReceived,
    Decide,
    InvalidCertificateError,
    Persist,
    ProposeValue,
    RequestValue,
    SignAndBroadcastProposal,
    SignAndBroadcastVote,
    Step,
    TimeoutConfig,
    TimeoutElapsed,
    TimeoutKind,
    ValueValidity,
    VoteType,
    build_commit_certificate,
    verify_commit_certificate,
)
from tests.consensus.factories import CHAIN_ID, value_id
from tests.consensus.scenario import Scenario, own_votes, timeouts_of

PREVOTE, PRECOMMIT = VoteType.PREVOTE, VoteType.PRECOMMIT
V, W = value_id("v"), value_id("w")


def next_round(s: Scenario, from_round: int) -> None:
    """Leave ``from_round`` through its precommit timeout (L65)."""
    s.feed(TimeoutElapsed(TimeoutKind.PRECOMMIT, 1, from_round))
    assert s.core.round_state is not None and s.core.round_state.round == from_round + 1


def lock_on(s: Scenario, value: bytes, round_: int) -> None:
    """Make the core lock ``value`` in ``round_`` (proposal + polka of the three others)."""
    s.loop_back(s.propose(round_, value))
    effects = s.votes(s.others(), round_, PREVOTE, value)
    assert (PRECOMMIT, round_, value) in own_votes(effects)
    state = s.core.round_state
    assert state is not None and (state.locked_value, state.locked_round) == (value, round_)


def three_round_scenario() -> Scenario:
    """Four validators; the core proposes in none of rounds 0-2."""
    s = Scenario(not_proposer_of=(0, 1, 2))
    s.start()
    return s


# --- L22 / L28: what to prevote for a proposal -------------------------------------------------


@pytest.mark.parametrize(
    ("case", "lock", "proposed", "valid_round", "polka", "valid", "expected"),
    [
        ("L24 fresh valid value, not locked", None, V, -1, None, True, V),
        ("L26 fresh invalid value", None, V, -1, None, False, None),
        ("L24 fresh value equal to the locked one", (V, 0), V, -1, None, True, V),
        ("L26 fresh value, locked on another", (W, 0), V, -1, None, True, None),
        ("L30 valid round at or after the lock", (W, 0), V, 1, 1, True, V),
        ("L32 valid round with a polka, invalid value", (W, 0), V, 1, 1, False, None),
        ("L32 valid round before a lock on another", (W, 1), V, 0, 0, True, None),
        ("L30 no lock, valid round with its polka", None, V, 1, 1, True, V),
    ],
)
def test_prevote_for_a_proposal(
    case: str,
    lock: tuple[bytes, int] | None,
    proposed: bytes,
    valid_round: int,
    polka: int | None,
    valid: bool,
    expected: bytes | None,
) -> None:
    s = three_round_scenario()
    if lock is not None:
        locked_value, locked_round = lock
        if locked_round == 1:
            next_round(s, 0)
        lock_on(s, locked_value, locked_round)
    if polka is not None:  # late prevotes of an earlier round: a polka, but no L36
        s.votes(s.others(), polka, PREVOTE, proposed)
    while s.core.round_state is not None and s.core.round_state.round < 2:
        next_round(s, s.core.round_state.round)
    effects = s.propose(2, proposed, valid, valid_round)
    assert own_votes(effects) == [(PREVOTE, 2, expected)], case


def test_l28_waits_for_the_polka_of_the_valid_round() -> None:
    s = three_round_scenario()
    next_round(s, 0)
    next_round(s, 1)
    assert own_votes(s.propose(2, V, True, valid_round=1)) == []
    assert own_votes(s.votes(s.others(2), 1, PREVOTE, V)) == []
    assert own_votes(s.votes(s.others()[2:], 1, PREVOTE, V)) == [(PREVOTE, 2, V)]


def test_validity_learned_after_the_proposal() -> None:
    s = three_round_scenario()
    assert own_votes(s.propose(0, V, valid=None)) == []
    effects = s.feed(ValueValidity(1, V, True))
    assert own_votes(effects) == [(PREVOTE, 0, V)]


def test_validity_learned_before_the_proposal() -> None:
    s = three_round_scenario()
    assert s.feed(ValueValidity(1, V, False)) == []
    assert own_votes(s.propose(0, V, valid=None)) == [(PREVOTE, 0, None)]


# --- L34 L36 L44 L47 ---------------------------------------------------------------------------


def test_l34_polka_for_anything_schedules_the_prevote_timeout_once() -> None:
    s = three_round_scenario()
    s.loop_back(s.propose(0, V))
    a, b, c = s.others()
    effects = s.votes([a], 0, PREVOTE, W) + s.votes([b], 0, PREVOTE, None)
    prevote_timeouts = [t for t in timeouts_of(effects) if t.kind is TimeoutKind.PREVOTE]
    assert [(t.round, t.duration_ms) for t in prevote_timeouts] == [(0, 1_000)]
    assert timeouts_of(s.votes([c], 0, PREVOTE, None)) == []


def test_l36_locks_and_precommits_on_a_polka_for_the_proposal() -> None:
    s = three_round_scenario()
    lock_on(s, V, 0)
    state = s.core.round_state
    assert state is not None
    assert (state.valid_value, state.valid_round, state.step) == (V, 0, Step.PRECOMMIT)


def test_l36_relocks_on_a_newer_polka() -> None:
    s = three_round_scenario()
    lock_on(s, V, 0)
    next_round(s, 0)
    effects = s.propose(1, W)
    assert own_votes(effects) == [(PREVOTE, 1, None)]  # L26: locked on V
    effects = s.votes(s.others(), 1, PREVOTE, W)
    assert own_votes(effects) == [(PRECOMMIT, 1, W)]
    state = s.core.round_state
    assert state is not None and (state.locked_value, state.locked_round) == (W, 1)


def test_l36_after_precommitting_only_updates_the_valid_value() -> None:
    s = three_round_scenario()
    s.loop_back(s.propose(0, V))
    s.feed(TimeoutElapsed(TimeoutKind.PREVOTE, 1, 0))  # precommit nil first
    effects = s.votes(s.others(), 0, PREVOTE, V)
    assert own_votes(effects) == []
    state = s.core.round_state
    assert state is not None
    assert (state.locked_round, state.valid_value, state.valid_round) == (-1, V, 0)


def test_l44_polka_for_nil_precommits_nil() -> None:
    s = three_round_scenario()
    s.loop_back(s.propose(0, V))
    assert own_votes(s.votes(s.others(), 0, PREVOTE, None)) == [(PRECOMMIT, 0, None)]


def test_l47_precommits_for_anything_schedule_the_precommit_timeout_once() -> None:
    s = three_round_scenario()
    a, b, c = s.others()
    effects = s.votes([a], 0, PRECOMMIT, V) + s.votes([b], 0, PRECOMMIT, None)
    assert timeouts_of(effects) == []
    effects = s.votes([c], 0, PRECOMMIT, W)
    assert [(t.kind, t.round, t.duration_ms) for t in timeouts_of(effects)] == [
        (TimeoutKind.PRECOMMIT, 0, 1_000)
    ]


# --- L49: decide -------------------------------------------------------------------------------


def decisions(effects: Sequence[object]) -> list[Decide]:
    return [e for e in effects if isinstance(e, Decide)]


def test_l49_decides_on_a_precommit_quorum_and_certifies_it() -> None:
    s = three_round_scenario()
    s.loop_back(s.propose(0, V))
    s.loop_back(s.votes(s.others(), 0, PREVOTE, V))  # own precommit V comes back signed
    effects = s.votes(s.others(2), 0, PRECOMMIT, V)
    [decide] = decisions(effects)
    assert (decide.height, decide.round, decide.value_id) == (1, 0, V)
    verify_commit_certificate(decide.certificate, s.validator_set, CHAIN_ID)
    signers = {sig.validator for sig in decide.certificate.signatures}
    assert s.keys[s.me or 0].public_key in signers and len(signers) == 3
    state = s.core.round_state
    assert state is not None and (state.step, state.decision) == (Step.COMMIT, V)


def test_l49_decides_a_quorum_of_an_earlier_round() -> None:
    s = three_round_scenario()
    next_round(s, 0)
    s.propose(0, V)  # a late proposal of round 0 is still stored
    assert decisions(s.votes(s.others(2), 0, PRECOMMIT, V)) == []
    [decide] = decisions(s.votes(s.others()[2:], 0, PRECOMMIT, V))
    assert (decide.round, decide.value_id) == (0, V)


def test_l49_needs_the_proposal_and_its_validity() -> None:
    s = three_round_scenario()
    assert decisions(s.votes(s.others(), 0, PRECOMMIT, V)) == []
    assert decisions(s.propose(0, V, valid=None)) == []
    [decide] = decisions(s.feed(ValueValidity(1, V, True)))
    assert decide.value_id == V


def test_l49_never_decides_an_invalid_value() -> None:
    s = three_round_scenario()
    s.propose(0, V, valid=False)
    assert decisions(s.votes(s.others(), 0, PRECOMMIT, V)) == []


def test_decision_from_a_commit_certificate() -> None:
    s = three_round_scenario()
    precommits = [s.vote(i, 3, PRECOMMIT, V) for i in s.others()]
    certificate = build_commit_certificate(CHAIN_ID, 1, 3, V, precommits)
    [decide] = decisions(s.feed(CommitCertificateReceived(certificate)))
    assert (decide.round, decide.value_id, decide.certificate) == (3, V, certificate)
    assert s.feed(CommitCertificateReceived(certificate)) == []  # decided once


def test_a_certificate_without_quorum_is_rejected() -> None:
    s = three_round_scenario()
    precommits = [s.vote(i, 0, PRECOMMIT, V) for i in s.others(2)]
    certificate = build_commit_certificate(CHAIN_ID, 1, 0, V, precommits)
    with pytest.raises(InvalidCertificateError, match="not above 2/3"):
        s.feed(CommitCertificateReceived(certificate))
    state = s.core.round_state
    assert state is not None and state.decision is None


# --- L55: round skip ---------------------------------------------------------------------------


def test_l55_skips_to_a_round_with_f_plus_one_voters() -> None:
    s = three_round_scenario()
    a, b, _ = s.others()
    assert s.votes([a], 5, PREVOTE, None) == []  # power 1 of 4: not more than 1/3
    effects = s.votes([b], 5, PRECOMMIT, V)
    [timeout] = timeouts_of(effects)
    assert (timeout.kind, timeout.round, timeout.duration_ms) == (
        TimeoutKind.PROPOSE,
        5,
        3_000 + 5 * 500,
    )
    state = s.core.round_state
    assert state is not None and (state.round, state.step) == (5, Step.PROPOSE)


def test_l55_counts_each_validator_once_across_vote_types() -> None:
    s = three_round_scenario()
    a = s.others()[0]
    s.votes([a], 5, PREVOTE, None)
    s.votes([a], 5, PRECOMMIT, None)
    state = s.core.round_state
    assert state is not None and state.round == 0


# --- L57 L61 L65: timeouts ---------------------------------------------------------------------


def test_l57_timeout_propose_prevotes_nil() -> None:
    s = three_round_scenario()
    effects = s.feed(TimeoutElapsed(TimeoutKind.PROPOSE, 1, 0))
    assert own_votes(effects) == [(PREVOTE, 0, None)]


def test_l61_timeout_prevote_precommits_nil() -> None:
    s = three_round_scenario()
    s.feed(TimeoutElapsed(TimeoutKind.PROPOSE, 1, 0))
    effects = s.feed(TimeoutElapsed(TimeoutKind.PREVOTE, 1, 0))
    assert own_votes(effects) == [(PRECOMMIT, 0, None)]


def test_l65_timeout_precommit_starts_the_next_round_with_longer_timeouts() -> None:
    timeouts = TimeoutConfig(timeout_propose_ms=100, timeout_propose_delta_ms=10)
    s = Scenario(not_proposer_of=(0, 1, 2), timeouts=timeouts)
    s.start()
    effects = s.feed(TimeoutElapsed(TimeoutKind.PRECOMMIT, 1, 0))
    assert [(t.kind, t.round, t.duration_ms) for t in timeouts_of(effects)] == [
        (TimeoutKind.PROPOSE, 1, 110)
    ]


@pytest.mark.parametrize(
    "stale",
    [
        TimeoutElapsed(TimeoutKind.PROPOSE, 1, 1),  # another round
        TimeoutElapsed(TimeoutKind.PREVOTE, 1, 0),  # a step not reached
        TimeoutElapsed(TimeoutKind.PROPOSE, 7, 0),  # another height
    ],
)
def test_stale_timeouts_are_ignored(stale: TimeoutElapsed) -> None:
    s = three_round_scenario()
    before = s.core.round_state
    assert s.feed(stale) == []
    assert s.core.round_state == before
    assert s.core.stats.stale_inputs == 1


# --- the proposer's side (L14-L19) -------------------------------------------------------------


def test_proposer_requests_a_value_and_proposes_it() -> None:
    probe = Scenario(not_proposer_of=())
    s = Scenario(me=probe.index_of_proposer(0))
    effects = s.start()
    assert [e for e in effects if isinstance(e, RequestValue)] == [RequestValue(1, 0)]
    effects = s.feed(ProposeValue(1, 0, V))
    assert [type(e) for e in effects] == [Persist, SignAndBroadcastProposal]
    proposal = effects[1].proposal  # type: ignore[union-attr]
    assert (proposal.round, proposal.value_id, proposal.valid_round) == (0, V, -1)
    assert own_votes(s.loop_back(effects)) == [(PREVOTE, 0, V)]  # own value: valid
    assert s.feed(ProposeValue(1, 0, W)) == []  # one proposal per round


def test_proposer_reproposes_its_valid_value_with_its_round() -> None:
    probe = Scenario(not_proposer_of=())
    me = probe.index_of_proposer(1)
    s = Scenario(me=me)
    s.start()
    s.loop_back(s.propose(0, V))
    s.loop_back(s.votes(s.others(), 0, PREVOTE, V))  # valid value V in round 0
    effects = s.feed(TimeoutElapsed(TimeoutKind.PRECOMMIT, 1, 0))
    [sign] = [e for e in effects if isinstance(e, SignAndBroadcastProposal)]
    assert (sign.proposal.round, sign.proposal.value_id, sign.proposal.valid_round) == (1, V, 0)
    assert not [e for e in effects if isinstance(e, RequestValue)]


def test_late_value_answer_is_ignored() -> None:
    probe = Scenario(not_proposer_of=())
    s = Scenario(me=probe.index_of_proposer(0))
    s.start()
    s.feed(TimeoutElapsed(TimeoutKind.PROPOSE, 1, 0))
    assert s.feed(ProposeValue(1, 0, V)) == []


# --- observers and weights ---------------------------------------------------------------------


def test_an_observer_decides_but_never_signs() -> None:
    observer = Scenario(me=None, not_proposer_of=())
    effects = observer.start()
    effects += observer.propose(0, V)
    effects += observer.votes(range(4), 0, PREVOTE, V)
    effects += observer.votes(range(3), 0, PRECOMMIT, V)
    assert not observer.core.is_validator
    assert not [e for e in effects if isinstance(e, Persist | SignAndBroadcastVote)]
    assert [d.value_id for d in decisions(effects)] == [V]


def test_weighted_quorum_and_skip() -> None:
    # powers 5, 1, 1, 1 (total 8): quorum is 6, f+1 is 3.
    s = Scenario(powers=(5, 1, 1, 1), me=None, not_proposer_of=())
    s.start()
    s.propose(0, V)
    assert decisions(s.votes([0], 0, PRECOMMIT, V)) == []  # 5 of 8 is not > 2/3
    assert [d.value_id for d in decisions(s.votes([1], 0, PRECOMMIT, V))] == [V]
    s2 = Scenario(powers=(5, 1, 1, 1), me=None, not_proposer_of=())
    s2.start()
    s2.votes([1, 2], 4, PREVOTE, None)  # power 2 of 8: no skip
    assert s2.core.round_state is not None and s2.core.round_state.round == 0
    s2.votes([0], 4, PREVOTE, None)
    assert s2.core.round_state is not None and s2.core.round_state.round == 4


def test_proposal_received_before_round_is_used_on_arrival() -> None:
    s = three_round_scenario()
    s.propose(1, V)  # next round's proposal arrives early
    effects = s.feed(TimeoutElapsed(TimeoutKind.PRECOMMIT, 1, 0))
    assert own_votes(effects) == [(PREVOTE, 1, V)]


def test_every_own_signature_is_preceded_by_its_persist() -> None:
    s = three_round_scenario()
    effects = s.propose(0, V)
    effects += s.loop_back(effects)
    effects += s.votes(s.others(), 0, PREVOTE, V)
    for index, effect in enumerate(effects):
        if isinstance(effect, SignAndBroadcastVote):
            persist = effects[index - 1]
            assert isinstance(persist, Persist)
            assert persist.record.sign_bytes == effect.sign_bytes

"""A node partitioned for many rounds learns the polka of an old round after the heal.

Tendermint's L28 ("upon a proposal from proposer(h, r) with vr >= 0 and 2f+1 prevotes for
(h, vr, id(v))") lets a node locked in an earlier round prevote a re-proposed value once it
sees that value's polka of round vr. The round window keeps only the latest
PAST_ROUNDS_KEPT rounds, so a polka older than that would never be admitted: a node locked
before a long partition could then never unlock, and when its prevote is needed for a
quorum the height would stall forever. The window therefore admits the old rounds that kept
proposals of the current or later rounds cite as their valid round (MAX_CITED_ROUNDS of
them, nearest citing round first).
"""

from __future__ import annotations

from consensus import Decide, Effect, TimeoutElapsed, TimeoutKind, VoteType
from consensus.limits import (
    MAX_CITED_ROUNDS,
    MAX_PROTECTED_QUORUM_ROUNDS,
    PAST_ROUNDS_KEPT,
)
from consensus.round_window import RoundWindow
from tests.consensus.factories import key_pair, value_id
from tests.consensus.scenario import Scenario, own_votes

PREVOTE, PRECOMMIT = VoteType.PREVOTE, VoteType.PRECOMMIT
V, W = value_id("v-polka-of-round-2"), value_id("w-locked-in-round-0")
PARTITION_ROUNDS = 40
HEAL_ROUND = PARTITION_ROUNDS + 2
POLKA_ROUND = 2
A = key_pair(0).public_key


def locked_then_partitioned() -> Scenario:
    """The node under test locks on W in round 0 (it saw W's polka, no precommit quorum
    came) and then hears nothing while the others go on to round HEAL_ROUND."""
    s = Scenario(not_proposer_of=(0, HEAL_ROUND))
    s.start()
    s.loop_back(s.propose(0, W))
    effects = s.votes(s.others(2), 0, PREVOTE, W)
    assert own_votes(effects) == [(PRECOMMIT, 0, W)]  # locked on W in round 0
    s.loop_back(effects)
    state = s.core.round_state
    assert state is not None and (state.locked_round, state.locked_value) == (0, W)
    return s


def heal(s: Scenario) -> list[Effect]:
    """The partition heals: f+1 prevotes of round HEAL_ROUND make the node skip there (L55),
    and that round's proposer re-proposes V, citing the polka of POLKA_ROUND."""
    s.votes(s.others(2), HEAL_ROUND, PREVOTE, V)
    state = s.core.round_state
    assert state is not None and state.round == HEAL_ROUND
    return s.propose(HEAL_ROUND, V, valid_round=POLKA_ROUND)


def test_a_node_partitioned_for_40_rounds_learns_an_old_polka_unlocks_and_decides() -> None:
    s = locked_then_partitioned()
    # without the old polka, the node locked on W in round 0 cannot accept V (L28)
    assert own_votes(heal(s)) == []
    # its peers re-send the polka of the re-proposal's valid round (node.chain.catch_up)
    effects = s.votes(s.others(), POLKA_ROUND, PREVOTE, V)
    assert own_votes(effects) == [(PREVOTE, HEAL_ROUND, V)]  # unlocked by the old polka
    # two others prevoted V in round 42 (their votes made the node skip there) and the
    # third is gone: the node's own prevote makes the quorum
    effects = s.loop_back(effects)
    assert own_votes(effects) == [(PRECOMMIT, HEAL_ROUND, V)]
    s.loop_back(effects)
    effects = s.votes(s.others(2), HEAL_ROUND, PRECOMMIT, V)
    decided = [e for e in effects if isinstance(e, Decide)]
    assert [(d.height, d.round, d.value_id) for d in decided] == [(1, HEAL_ROUND, V)]


def test_old_rounds_no_proposal_cites_stay_closed() -> None:
    s = locked_then_partitioned()
    heal(s)
    stale = s.core.stats.stale_inputs
    assert s.votes(s.others(), POLKA_ROUND + 1, PREVOTE, V) == []  # nobody cites round 3
    assert s.core.stats.stale_inputs == stale + len(s.others())
    s.feed(TimeoutElapsed(TimeoutKind.PROPOSE, 1, HEAL_ROUND))
    bound = PAST_ROUNDS_KEPT + 2 + 2 + MAX_PROTECTED_QUORUM_ROUNDS + MAX_CITED_ROUNDS
    assert s.core.tracked_rounds <= bound


def test_the_window_tracks_at_most_the_nearest_cited_old_rounds() -> None:
    window = RoundWindow()
    window.admit(0, A)
    current = PAST_ROUNDS_KEPT + 40
    cited = [5, 5, 1, 2, 3, 4, 6, current - 1]  # current - 1 is within the window anyway
    dropped = window.advance(current, protected=(), cited=cited)
    assert dropped == [0]
    assert window.cited == frozenset({5, 1, 2, 3}) and len(window.cited) == MAX_CITED_ROUNDS
    assert window.admit(5, A) and not window.admit(4, A)
    # a nearer proposal cites round 4: the farthest citation gives way, its votes go
    dropped = window.cite([4, *cited], protected={3})
    assert window.cited == frozenset({4, 5, 1, 2})
    assert dropped == []  # round 3 is protected (say, the locked round)
    dropped = window.advance(current + 1, protected=(), cited=[])
    assert dropped == [1, 2, 3, 4, 5] and window.cited == frozenset()

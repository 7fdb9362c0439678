"""Table-driven step tests of the round machine: one row per branch of each paper rule."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from consensus.round_machine import (
    DecideOut,
    NewRoundOut,
    PolkaAny,
    PolkaNil,
    PrecommitAny,
    ProposalFresh,
    ProposalWithCommitQuorum,
    ProposalWithPolka,
    ProposalWithPriorPolka,
    ProposeOut,
    RequestValueOut,
    RoundEvent,
    RoundOutput,
    RoundSkip,
    RoundState,
    StartRound,
    Step,
    TimeoutFired,
    TimeoutOut,
    ValueReady,
    VoteOut,
    apply,
)
from consensus.timeouts import TimeoutKind
from consensus.types import VoteType
from tests.consensus.factories import value_id

V = value_id("v")
W = value_id("w")
PREVOTE, PRECOMMIT = VoteType.PREVOTE, VoteType.PRECOMMIT

UNSTARTED = RoundState(height=1)
PROPOSE = RoundState(height=1, round=0, step=Step.PROPOSE)
PREVOTING = replace(PROPOSE, step=Step.PREVOTE)
PRECOMMITTING = replace(PROPOSE, step=Step.PRECOMMIT)
ROUND3_PROPOSE = replace(PROPOSE, round=3)
LOCKED_W_ROUND2 = replace(
    ROUND3_PROPOSE, locked_value=W, locked_round=2, valid_value=W, valid_round=2
)
LOCKED_V_ROUND2 = replace(
    ROUND3_PROPOSE, locked_value=V, locked_round=2, valid_value=V, valid_round=2
)
DECIDED = replace(PRECOMMITTING, round=2, step=Step.COMMIT, decision=V)

NO_TRANSITION = None

# (rule, state before, event, changed fields of the state after (None: no transition), outputs)
Row = tuple[str, RoundState, RoundEvent, dict[str, Any] | None, tuple[RoundOutput, ...]]

# fmt: off
TABLE: list[Row] = [
    # StartRound, L11-L21
    ("L18 proposer asks for a value", UNSTARTED, StartRound(0, True),
     {"step": Step.PROPOSE, "awaiting_value": True},
     (RequestValueOut(0), TimeoutOut(TimeoutKind.PROPOSE, 0))),
    ("L16 proposer re-proposes its valid value", replace(PRECOMMITTING, round=3,
     valid_value=V, valid_round=2), StartRound(4, True),
     {"round": 4, "step": Step.PROPOSE},
     (ProposeOut(4, V, 2), TimeoutOut(TimeoutKind.PROPOSE, 4))),
    ("L21 non-proposer schedules timeoutPropose", UNSTARTED, StartRound(0, False),
     {"step": Step.PROPOSE}, (TimeoutOut(TimeoutKind.PROPOSE, 0),)),
    ("L11 flags reset at a new round", replace(PRECOMMITTING, prevote_timeout_started=True,
     polka_value_seen=True, precommit_timeout_started=True), StartRound(1, False),
     {"round": 1, "step": Step.PROPOSE, "prevote_timeout_started": False,
      "polka_value_seen": False, "precommit_timeout_started": False},
     (TimeoutOut(TimeoutKind.PROPOSE, 1),)),
    ("L11 never an earlier round", ROUND3_PROPOSE, StartRound(2, False), NO_TRANSITION, ()),
    ("L11 never the same round twice", ROUND3_PROPOSE, StartRound(3, False), NO_TRANSITION, ()),
    ("L11 never after a decision", DECIDED, StartRound(3, False), NO_TRANSITION, ()),
    # getValue answer, L19
    ("L19 propose the application's value", replace(PROPOSE, awaiting_value=True),
     ValueReady(0, V), {"awaiting_value": False}, (ProposeOut(0, V, -1),)),
    ("L19 only when a value was requested", PROPOSE, ValueReady(0, V), NO_TRANSITION, ()),
    ("L19 not for another round", replace(PROPOSE, awaiting_value=True), ValueReady(1, V),
     NO_TRANSITION, ()),
    # L22: proposal with valid round -1
    ("L24 fresh valid value, not locked", PROPOSE, ProposalFresh(0, V, True),
     {"step": Step.PREVOTE}, (VoteOut(PREVOTE, 0, V),)),
    ("L24 fresh valid value, locked on it", LOCKED_V_ROUND2, ProposalFresh(3, V, True),
     {"step": Step.PREVOTE}, (VoteOut(PREVOTE, 3, V),)),
    ("L26 fresh value, locked on another", LOCKED_W_ROUND2, ProposalFresh(3, V, True),
     {"step": Step.PREVOTE}, (VoteOut(PREVOTE, 3, None),)),
    ("L26 fresh invalid value", PROPOSE, ProposalFresh(0, V, False),
     {"step": Step.PREVOTE}, (VoteOut(PREVOTE, 0, None),)),
    ("L22 only in the propose step", PREVOTING, ProposalFresh(0, V, True), NO_TRANSITION, ()),
    ("L22 only for the current round", PROPOSE, ProposalFresh(1, V, True), NO_TRANSITION, ()),
    # L28: proposal with valid round vr and a polka for it in vr
    ("L30 polka in vr, locked no later than vr", replace(ROUND3_PROPOSE, locked_value=W,
     locked_round=1), ProposalWithPriorPolka(3, V, 2, True),
     {"step": Step.PREVOTE}, (VoteOut(PREVOTE, 3, V),)),
    ("L30 polka in vr, locked in vr itself", LOCKED_W_ROUND2,
     ProposalWithPriorPolka(3, V, 2, True), {"step": Step.PREVOTE}, (VoteOut(PREVOTE, 3, V),)),
    ("L30 polka in vr, locked on the same value later", LOCKED_V_ROUND2,
     ProposalWithPriorPolka(3, V, 1, True), {"step": Step.PREVOTE}, (VoteOut(PREVOTE, 3, V),)),
    ("L32 polka in vr, locked on another value later", LOCKED_W_ROUND2,
     ProposalWithPriorPolka(3, V, 1, True), {"step": Step.PREVOTE},
     (VoteOut(PREVOTE, 3, None),)),
    ("L32 polka in vr, invalid value", ROUND3_PROPOSE, ProposalWithPriorPolka(3, V, 1, False),
     {"step": Step.PREVOTE}, (VoteOut(PREVOTE, 3, None),)),
    ("L28 needs vr < round", ROUND3_PROPOSE, ProposalWithPriorPolka(3, V, 3, True),
     NO_TRANSITION, ()),
    ("L28 only in the propose step", replace(ROUND3_PROPOSE, step=Step.PREVOTE),
     ProposalWithPriorPolka(3, V, 1, True), NO_TRANSITION, ()),
    # L34
    ("L35 polka for anything: prevote timeout", PREVOTING, PolkaAny(0),
     {"prevote_timeout_started": True}, (TimeoutOut(TimeoutKind.PREVOTE, 0),)),
    ("L34 for the first time only", replace(PREVOTING, prevote_timeout_started=True),
     PolkaAny(0), NO_TRANSITION, ()),
    ("L34 only in the prevote step", PROPOSE, PolkaAny(0), NO_TRANSITION, ()),
    # L36
    ("L37-L43 polka for the proposal while prevoting: lock and precommit", PREVOTING,
     ProposalWithPolka(0, V),
     {"step": Step.PRECOMMIT, "locked_value": V, "locked_round": 0, "valid_value": V,
      "valid_round": 0, "polka_value_seen": True}, (VoteOut(PRECOMMIT, 0, V),)),
    ("L42 polka for the proposal after precommitting: only valid value", PRECOMMITTING,
     ProposalWithPolka(0, V), {"valid_value": V, "valid_round": 0, "polka_value_seen": True}, ()),
    ("L36 relock on a newer polka", replace(LOCKED_W_ROUND2, step=Step.PREVOTE),
     ProposalWithPolka(3, V),
     {"step": Step.PRECOMMIT, "locked_value": V, "locked_round": 3, "valid_value": V,
      "valid_round": 3, "polka_value_seen": True}, (VoteOut(PRECOMMIT, 3, V),)),
    ("L36 for the first time only", replace(PRECOMMITTING, polka_value_seen=True),
     ProposalWithPolka(0, W), NO_TRANSITION, ()),
    ("L36 not in the propose step", PROPOSE, ProposalWithPolka(0, V), NO_TRANSITION, ()),
    # L44
    ("L45 polka for nil: precommit nil", PREVOTING, PolkaNil(0), {"step": Step.PRECOMMIT},
     (VoteOut(PRECOMMIT, 0, None),)),
    ("L44 only in the prevote step", PRECOMMITTING, PolkaNil(0), NO_TRANSITION, ()),
    # L47
    ("L48 precommits for anything: precommit timeout", PRECOMMITTING, PrecommitAny(0),
     {"precommit_timeout_started": True}, (TimeoutOut(TimeoutKind.PRECOMMIT, 0),)),
    ("L47 also in the propose step", PROPOSE, PrecommitAny(0),
     {"precommit_timeout_started": True}, (TimeoutOut(TimeoutKind.PRECOMMIT, 0),)),
    ("L47 for the first time only", replace(PRECOMMITTING, precommit_timeout_started=True),
     PrecommitAny(0), NO_TRANSITION, ()),
    # L49
    ("L49 decide on a commit quorum of an earlier round", replace(PROPOSE, round=2),
     ProposalWithCommitQuorum(0, V), {"step": Step.COMMIT, "decision": V},
     (DecideOut(0, V),)),
    ("L49 decide on a commit quorum of a later round", PREVOTING,
     ProposalWithCommitQuorum(5, V), {"step": Step.COMMIT, "decision": V},
     (DecideOut(5, V),)),
    ("L49 decide once", DECIDED, ProposalWithCommitQuorum(2, W), NO_TRANSITION, ()),
    # L55
    ("L55 f+1 messages of a higher round: skip", PREVOTING, RoundSkip(5), {},
     (NewRoundOut(5),)),
    ("L55 not for the current round", PREVOTING, RoundSkip(0), NO_TRANSITION, ()),
    ("L55 not after a decision", DECIDED, RoundSkip(7), NO_TRANSITION, ()),
    # L57, L61, L65
    ("L59 timeoutPropose in the propose step: prevote nil", PROPOSE,
     TimeoutFired(TimeoutKind.PROPOSE, 0), {"step": Step.PREVOTE},
     (VoteOut(PREVOTE, 0, None),)),
    ("L57 timeoutPropose after prevoting is stale", PREVOTING,
     TimeoutFired(TimeoutKind.PROPOSE, 0), NO_TRANSITION, ()),
    ("L57 timeoutPropose of another round is stale", PROPOSE,
     TimeoutFired(TimeoutKind.PROPOSE, 1), NO_TRANSITION, ()),
    ("L63 timeoutPrevote in the prevote step: precommit nil", PREVOTING,
     TimeoutFired(TimeoutKind.PREVOTE, 0), {"step": Step.PRECOMMIT},
     (VoteOut(PRECOMMIT, 0, None),)),
    ("L61 timeoutPrevote after precommitting is stale", PRECOMMITTING,
     TimeoutFired(TimeoutKind.PREVOTE, 0), NO_TRANSITION, ()),
    ("L67 timeoutPrecommit: next round", PRECOMMITTING,
     TimeoutFired(TimeoutKind.PRECOMMIT, 0), {}, (NewRoundOut(1),)),
    ("L67 timeoutPrecommit in any step of the round", PROPOSE,
     TimeoutFired(TimeoutKind.PRECOMMIT, 0), {}, (NewRoundOut(1),)),
    ("L65 timeoutPrecommit of another round is stale", PRECOMMITTING,
     TimeoutFired(TimeoutKind.PRECOMMIT, 1), NO_TRANSITION, ()),
    ("L65 no new round after a decision", DECIDED,
     TimeoutFired(TimeoutKind.PRECOMMIT, 2), NO_TRANSITION, ()),
]
# fmt: on


@pytest.mark.parametrize(
    ("rule", "before", "event", "changes", "outputs"), TABLE, ids=[row[0] for row in TABLE]
)
def test_rule(
    rule: str,
    before: RoundState,
    event: RoundEvent,
    changes: dict[str, Any] | None,
    outputs: tuple[RoundOutput, ...],
) -> None:
    transition = apply(before, event)
    if changes is None:
        assert transition is None, rule
        return
    assert transition is not None, rule
    assert transition.state == replace(before, **changes)
    assert transition.outputs == outputs


def test_every_transition_changes_the_state_or_has_outputs() -> None:
    for rule, before, event, changes, _ in TABLE:
        transition = apply(before, event)
        if changes is not None:
            assert transition is not None
            assert transition.state != before or transition.outputs, rule

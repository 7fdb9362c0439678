"""The round state machine: the paper's "upon" rules as a pure transition function.

``apply(state, event) -> Transition | None`` implements Algorithm 1 of "The latest gossip on
BFT consensus" (Buchman, Kwon, Milosevic; arXiv:1807.04938) for one process. Each branch
cites the pseudo-code line it implements (``# L22``). Events are *facts* the driver has
established from the message log (e.g. "a proposal for v with a polka for v in this round");
the machine checks the rule's state guard (step, round, "for the first time") and returns the
new state and the outputs, or None when the rule does not apply in this state. No I/O, no
clock: timeouts are outputs to schedule and events when they fire.

Deviation from the paper, on purpose: the proposer of a round schedules timeoutPropose too
(L21 only schedules it for the others). If its application never answers the value request,
it still moves on; otherwise its own proposal moves it past the propose step first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any, TypeAlias

from consensus.timeouts import TimeoutKind
from consensus.types import ValueId, VoteType


class Step(IntEnum):
    """Step of the current round (UNSTARTED before round 0, COMMIT once decided)."""

    UNSTARTED = 0
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3
    COMMIT = 4


@dataclass(frozen=True, slots=True)
class RoundState:
    """The paper's per-process variables for one height, plus "for the first time" flags.

    ``locked_round``/``valid_round`` are -1 when nothing is locked/valid. The flags reset at
    every new round: ``prevote_timeout_started`` (L34), ``polka_value_seen`` (L36),
    ``precommit_timeout_started`` (L47); ``awaiting_value`` is set while the proposer waits
    for its application's value (L18).
    """

    height: int
    round: int = 0
    step: Step = Step.UNSTARTED
    locked_value: ValueId | None = None
    locked_round: int = -1
    valid_value: ValueId | None = None
    valid_round: int = -1
    decision: ValueId | None = None
    awaiting_value: bool = False
    prevote_timeout_started: bool = False
    polka_value_seen: bool = False
    precommit_timeout_started: bool = False


# --- events (what the driver established) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartRound:
    """Enter ``round``; ``is_proposer`` says whether this process proposes in it."""

    round: int
    is_proposer: bool


@dataclass(frozen=True, slots=True)
class ValueReady:
    """The application's answer to a value request for ``round``."""

    round: int
    value_id: ValueId


@dataclass(frozen=True, slots=True)
class ProposalFresh:
    """A proposal of ``value_id`` with valid round -1 in ``round``; validity known."""

    round: int
    value_id: ValueId
    is_valid: bool


@dataclass(frozen=True, slots=True)
class ProposalWithPriorPolka:
    """A proposal of ``value_id`` with valid round ``valid_round`` in ``round`` and a polka
    for ``value_id`` in ``valid_round``; validity known."""

    round: int
    value_id: ValueId
    valid_round: int
    is_valid: bool


@dataclass(frozen=True, slots=True)
class PolkaAny:
    """+2/3 prevotes for anything in ``round``."""

    round: int


@dataclass(frozen=True, slots=True)
class ProposalWithPolka:
    """A proposal of a *valid* ``value_id`` and +2/3 prevotes for it, both in ``round``."""

    round: int
    value_id: ValueId


@dataclass(frozen=True, slots=True)
class PolkaNil:
    """+2/3 prevotes for nil in ``round``."""

    round: int


@dataclass(frozen=True, slots=True)
class PrecommitAny:
    """+2/3 precommits for anything in ``round``."""

    round: int


@dataclass(frozen=True, slots=True)
class ProposalWithCommitQuorum:
    """A proposal of a *valid* ``value_id`` and +2/3 precommits for it, both in ``round``
    (any round of the height)."""

    round: int
    value_id: ValueId


@dataclass(frozen=True, slots=True)
class RoundSkip:
    """Validators with more than 1/3 of the power sent messages of ``round``."""

    round: int


@dataclass(frozen=True, slots=True)
class TimeoutFired:
    """The ``kind`` timeout of ``round`` (at this height) elapsed."""

    kind: TimeoutKind
    round: int


RoundEvent: TypeAlias = (
    StartRound
    | ValueReady
    | ProposalFresh
    | ProposalWithPriorPolka
    | PolkaAny
    | ProposalWithPolka
    | PolkaNil
    | PrecommitAny
    | ProposalWithCommitQuorum
    | RoundSkip
    | TimeoutFired
)

# --- outputs (what the driver must do) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProposeOut:
    """Sign and broadcast PROPOSAL(height, round, value_id, valid_round)."""

    round: int
    value_id: ValueId
    valid_round: int


@dataclass(frozen=True, slots=True)
class RequestValueOut:
    """Ask the application for a value to propose in ``round`` (paper: getValue())."""

    round: int


@dataclass(frozen=True, slots=True)
class VoteOut:
    """Sign and broadcast a vote (``value_id`` None = nil)."""

    vote_type: VoteType
    round: int
    value_id: ValueId | None


@dataclass(frozen=True, slots=True)
class TimeoutOut:
    """Schedule the ``kind`` timeout of ``round``."""

    kind: TimeoutKind
    round: int


@dataclass(frozen=True, slots=True)
class DecideOut:
    """``value_id`` is decided, by the precommits of ``round``."""

    round: int
    value_id: ValueId


@dataclass(frozen=True, slots=True)
class NewRoundOut:
    """Start ``round`` (the driver answers with a StartRound event)."""

    round: int


RoundOutput: TypeAlias = (
    ProposeOut | RequestValueOut | VoteOut | TimeoutOut | DecideOut | NewRoundOut
)


@dataclass(frozen=True, slots=True)
class Transition:
    """The state after a rule fired and what the driver must do, in order."""

    state: RoundState
    outputs: tuple[RoundOutput, ...]


# --- rules ---------------------------------------------------------------------------------


def _start_round(state: RoundState, event: StartRound) -> Transition | None:
    if event.round < state.round or (event.round == state.round and state.step != Step.UNSTARTED):
        return None
    if state.step == Step.COMMIT:
        return None
    # L11-L13: round_p <- round; step_p <- propose; the "first time" flags are per round.
    new_state = replace(
        state,
        round=event.round,
        step=Step.PROPOSE,
        awaiting_value=False,
        prevote_timeout_started=False,
        polka_value_seen=False,
        precommit_timeout_started=False,
    )
    outputs: list[RoundOutput] = []
    if event.is_proposer:
        if state.valid_value is not None:
            # L15-L16: re-propose the value seen with a polka, with the round of that polka.
            outputs.append(ProposeOut(event.round, state.valid_value, state.valid_round))
        else:
            # L17-L18: getValue(); the answer arrives as a ValueReady event.
            new_state = replace(new_state, awaiting_value=True)
            outputs.append(RequestValueOut(event.round))
    # L21 (for every process, see the module docstring).
    outputs.append(TimeoutOut(TimeoutKind.PROPOSE, event.round))
    return Transition(new_state, tuple(outputs))


def _value_ready(state: RoundState, event: ValueReady) -> Transition | None:
    if event.round != state.round or state.step != Step.PROPOSE or not state.awaiting_value:
        return None
    # L19: broadcast PROPOSAL(h_p, round_p, proposal, validRound_p) with validRound_p = -1.
    new_state = replace(state, awaiting_value=False)
    return Transition(new_state, (ProposeOut(event.round, event.value_id, -1),))


def _proposal_fresh(state: RoundState, event: ProposalFresh) -> Transition | None:
    if event.round != state.round or state.step != Step.PROPOSE:
        return None
    # L22-L27: prevote v if valid and (not locked or locked on v), else nil.
    acceptable = state.locked_round == -1 or state.locked_value == event.value_id
    value = event.value_id if event.is_valid and acceptable else None
    return _prevote(state, value)


def _proposal_with_prior_polka(
    state: RoundState, event: ProposalWithPriorPolka
) -> Transition | None:
    if event.round != state.round or state.step != Step.PROPOSE:
        return None
    if not 0 <= event.valid_round < state.round:
        return None
    # L28-L33: prevote v if valid and (locked no later than vr, or locked on v), else nil.
    acceptable = state.locked_round <= event.valid_round or state.locked_value == event.value_id
    value = event.value_id if event.is_valid and acceptable else None
    return _prevote(state, value)


def _prevote(state: RoundState, value_id: ValueId | None) -> Transition:
    new_state = replace(state, step=Step.PREVOTE, awaiting_value=False)
    return Transition(new_state, (VoteOut(VoteType.PREVOTE, state.round, value_id),))


def _polka_any(state: RoundState, event: PolkaAny) -> Transition | None:
    if event.round != state.round or state.step != Step.PREVOTE:
        return None
    if state.prevote_timeout_started:
        return None
    # L34-L35: schedule OnTimeoutPrevote(h_p, round_p), for the first time only.
    new_state = replace(state, prevote_timeout_started=True)
    return Transition(new_state, (TimeoutOut(TimeoutKind.PREVOTE, state.round),))


def _proposal_with_polka(state: RoundState, event: ProposalWithPolka) -> Transition | None:
    if event.round != state.round or state.polka_value_seen:
        return None
    if state.step not in (Step.PREVOTE, Step.PRECOMMIT):
        return None
    outputs: tuple[RoundOutput, ...] = ()
    new_state = replace(state, polka_value_seen=True)
    if state.step == Step.PREVOTE:
        # L37-L41: lock on v and precommit it.
        new_state = replace(
            new_state,
            locked_value=event.value_id,
            locked_round=state.round,
            step=Step.PRECOMMIT,
        )
        outputs = (VoteOut(VoteType.PRECOMMIT, state.round, event.value_id),)
    # L42-L43: v is the latest value seen with a polka.
    new_state = replace(new_state, valid_value=event.value_id, valid_round=state.round)
    return Transition(new_state, outputs)


def _polka_nil(state: RoundState, event: PolkaNil) -> Transition | None:
    if event.round != state.round or state.step != Step.PREVOTE:
        return None
    # L44-L46: precommit nil.
    new_state = replace(state, step=Step.PRECOMMIT)
    return Transition(new_state, (VoteOut(VoteType.PRECOMMIT, state.round, None),))


def _precommit_any(state: RoundState, event: PrecommitAny) -> Transition | None:
    if event.round != state.round or state.precommit_timeout_started:
        return None
    if state.step in (Step.UNSTARTED, Step.COMMIT):
        return None
    # L47-L48: schedule OnTimeoutPrecommit(h_p, round_p), for the first time only.
    new_state = replace(state, precommit_timeout_started=True)
    return Transition(new_state, (TimeoutOut(TimeoutKind.PRECOMMIT, state.round),))


def _commit_quorum(state: RoundState, event: ProposalWithCommitQuorum) -> Transition | None:
    if state.decision is not None or state.step == Step.UNSTARTED:
        return None
    # L49-L54: decide v (in any round r). The next height is the driver's business.
    new_state = replace(state, decision=event.value_id, step=Step.COMMIT)
    return Transition(new_state, (DecideOut(event.round, event.value_id),))


def _round_skip(state: RoundState, event: RoundSkip) -> Transition | None:
    if event.round <= state.round or state.step in (Step.UNSTARTED, Step.COMMIT):
        return None
    # L55-L56: StartRound(round).
    return Transition(state, (NewRoundOut(event.round),))


def _timeout(state: RoundState, event: TimeoutFired) -> Transition | None:
    if event.round != state.round:
        return None
    if event.kind == TimeoutKind.PROPOSE and state.step == Step.PROPOSE:
        # L57-L60: OnTimeoutPropose: prevote nil.
        return _prevote(state, None)
    if event.kind == TimeoutKind.PREVOTE and state.step == Step.PREVOTE:
        # L61-L64: OnTimeoutPrevote: precommit nil.
        new_state = replace(state, step=Step.PRECOMMIT)
        return Transition(new_state, (VoteOut(VoteType.PRECOMMIT, state.round, None),))
    if event.kind == TimeoutKind.PRECOMMIT and state.step not in (Step.UNSTARTED, Step.COMMIT):
        # L65-L67: OnTimeoutPrecommit: StartRound(round_p + 1).
        return Transition(state, (NewRoundOut(state.round + 1),))
    return None


# Each rule takes its own event type; the table is keyed by that type, hence ``Any``.
_RULES: dict[type, Callable[[RoundState, Any], Transition | None]] = {
    StartRound: _start_round,
    ValueReady: _value_ready,
    ProposalFresh: _proposal_fresh,
    ProposalWithPriorPolka: _proposal_with_prior_polka,
    PolkaAny: _polka_any,
    ProposalWithPolka: _proposal_with_polka,
    PolkaNil: _polka_nil,
    PrecommitAny: _precommit_any,
    ProposalWithCommitQuorum: _commit_quorum,
    RoundSkip: _round_skip,
    TimeoutFired: _timeout,
}


def apply(state: RoundState, event: RoundEvent) -> Transition | None:
    """The transition ``event`` causes in ``state``, or None if no rule applies.

    A returned transition always changes the state or produces outputs, so a driver that
    re-offers events until none applies terminates.
    """
    return _RULES[type(event)](state, event)

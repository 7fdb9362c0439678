"""The vote keeper: tallies the votes of one height by voting power and reports thresholds.

For every round and vote type it keeps, per value (nil included), the validators that voted
for it and their power. Adding a vote costs O(1) and returns the threshold events it caused;
each event is reported exactly once, when the power first crosses its threshold:

================  ===========================================================  ===========
event             condition (``q`` = quorum power, more than 2/3 of the total)  paper
================  ===========================================================  ===========
POLKA_VALUE       prevotes for one value reach ``q``                           L28 L36
POLKA_NIL         prevotes for nil reach ``q``                                 L44
POLKA_ANY         prevotes for anything reach ``q``                            L34
PRECOMMIT_VALUE   precommits for one value reach ``q``                         L49
PRECOMMIT_ANY     precommits for anything reach ``q``                          L47
SKIP_ROUND        validators that voted (either type) in the round hold more   L55
                  than 1/3 of the power (``f+1``)
================  ===========================================================  ===========

A validator counts once towards each threshold: a repeated vote is a duplicate. A vote for a
different value than the validator's first one in the same (round, type) is an equivocation:
it is returned as evidence and, as in the paper's message-counting rules, still counts for its
own value (another correct process may have seen a polka that needs it), but never twice for
"any" and for at most MAX_VALUES_PER_VALIDATOR_STEP values. With at most f Byzantine power no
round can then hold polkas for two values, so safety is the paper's.

Which rounds are tracked is the caller's policy (see :mod:`consensus.round_window`); the
keeper holds what it is given and drops rounds when told to, remembering only the polka of
each dropped round (at most MAX_POLKA_HISTORY_ROUNDS of them), since a later proposal may cite
it (L28).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from consensus.errors import UnknownValidatorError
from consensus.evidence import DuplicateVoteEvidence
from consensus.limits import MAX_POLKA_HISTORY_ROUNDS, MAX_VALUES_PER_VALIDATOR_STEP
from consensus.types import PublicKey, ValueId, Vote, VoteType
from consensus.validator_set import ValidatorSet


class ThresholdKind(IntEnum):
    """Which threshold a :class:`ThresholdEvent` reports."""

    POLKA_VALUE = 1
    POLKA_NIL = 2
    POLKA_ANY = 3
    PRECOMMIT_VALUE = 4
    PRECOMMIT_ANY = 5
    SKIP_ROUND = 6


@dataclass(frozen=True, slots=True)
class ThresholdEvent:
    """A threshold crossed in ``round`` (``value_id`` set for the two *_VALUE kinds)."""

    kind: ThresholdKind
    round: int
    value_id: ValueId | None = None


class VoteStatus(IntEnum):
    """What happened to an added vote."""

    ADDED = 1
    DUPLICATE = 2
    EQUIVOCATION = 3
    """Conflicts with the validator's first vote of that step; counted for its value unless
    the validator reached MAX_VALUES_PER_VALIDATOR_STEP values."""


@dataclass(frozen=True, slots=True)
class VoteResult:
    """Outcome of :meth:`VoteKeeper.add_vote`."""

    status: VoteStatus
    events: tuple[ThresholdEvent, ...] = ()
    evidence: DuplicateVoteEvidence | None = None


_ADDED = VoteResult(VoteStatus.ADDED)
_DUPLICATE = VoteResult(VoteStatus.DUPLICATE)


class _Tally:
    """Votes of one type in one round."""

    __slots__ = ("first_votes", "power", "power_by_value", "values_per_validator", "votes_by_value")

    def __init__(self) -> None:
        self.first_votes: dict[PublicKey, Vote] = {}
        self.votes_by_value: dict[ValueId | None, dict[PublicKey, Vote]] = {}
        self.power_by_value: dict[ValueId | None, int] = {}
        self.values_per_validator: dict[PublicKey, int] = {}
        self.power = 0  # distinct validators only


class RoundVotes:
    """Prevotes and precommits of one round and the events already reported for it."""

    __slots__ = ("emitted", "precommits", "prevotes", "voters_power")

    def __init__(self) -> None:
        self.prevotes = _Tally()
        self.precommits = _Tally()
        self.voters_power = 0
        self.emitted: set[tuple[ThresholdKind, ValueId | None]] = set()

    def tally(self, vote_type: VoteType) -> _Tally:
        """The tally of ``vote_type``."""
        return self.prevotes if vote_type is VoteType.PREVOTE else self.precommits


class VoteKeeper:
    """Votes of one height, by round. Not thread-safe; O(1) work per vote."""

    __slots__ = (
        "_f_plus_one_power",
        "_polka_history",
        "_quorum_power",
        "_rounds",
        "_validator_set",
    )

    def __init__(self, validator_set: ValidatorSet) -> None:
        """An empty keeper for a height ruled by ``validator_set``."""
        self._validator_set = validator_set
        self._quorum_power = validator_set.quorum_power
        self._f_plus_one_power = validator_set.f_plus_one_power
        self._rounds: dict[int, RoundVotes] = {}
        self._polka_history: dict[int, ValueId] = {}

    @property
    def validator_set(self) -> ValidatorSet:
        """The validator set the votes are weighed with."""
        return self._validator_set

    def add_vote(self, vote: Vote) -> VoteResult:
        """Count ``vote`` (already checked for height, chain and form by the caller).

        Raises UnknownValidatorError if its signer is not in the set.
        """
        validator = vote.validator
        power = self._validator_set.power_of(validator)
        if power == 0:
            raise UnknownValidatorError(f"{validator.hex()} is not a validator")
        round_votes = self._rounds.get(vote.round)
        if round_votes is None:
            round_votes = self._rounds[vote.round] = RoundVotes()
        tally = round_votes.tally(vote.vote_type)
        same_value = tally.votes_by_value.get(vote.value_id)
        if same_value is not None and validator in same_value:
            return _DUPLICATE
        first = tally.first_votes.get(validator)
        evidence = None
        if first is None:
            tally.first_votes[validator] = vote
            tally.power += power
            other = (
                round_votes.precommits if tally is round_votes.prevotes else round_votes.prevotes
            )
            if validator not in other.first_votes:
                round_votes.voters_power += power
        else:
            evidence = DuplicateVoteEvidence.from_votes(first, vote)
            if tally.values_per_validator[validator] >= MAX_VALUES_PER_VALIDATOR_STEP:
                return VoteResult(VoteStatus.EQUIVOCATION, evidence=evidence)
        if same_value is None:
            same_value = tally.votes_by_value[vote.value_id] = {}
        same_value[validator] = vote
        tally.values_per_validator[validator] = tally.values_per_validator.get(validator, 0) + 1
        value_power = tally.power_by_value.get(vote.value_id, 0) + power
        tally.power_by_value[vote.value_id] = value_power
        events = self._new_events(vote, round_votes, tally, value_power)
        if evidence is not None:
            return VoteResult(VoteStatus.EQUIVOCATION, events, evidence)
        return VoteResult(VoteStatus.ADDED, events) if events else _ADDED

    def _new_events(
        self, vote: Vote, round_votes: RoundVotes, tally: _Tally, value_power: int
    ) -> tuple[ThresholdEvent, ...]:
        quorum, round_ = self._quorum_power, vote.round
        found: list[ThresholdEvent] = []
        value_kind: ThresholdKind | None
        if vote.vote_type is VoteType.PREVOTE:
            nil = vote.value_id is None
            value_kind = ThresholdKind.POLKA_NIL if nil else ThresholdKind.POLKA_VALUE
            any_kind = ThresholdKind.POLKA_ANY
        else:
            value_kind = None if vote.value_id is None else ThresholdKind.PRECOMMIT_VALUE
            any_kind = ThresholdKind.PRECOMMIT_ANY
        emitted = round_votes.emitted
        if value_kind is not None and value_power >= quorum:
            key = (value_kind, vote.value_id)
            if key not in emitted:
                emitted.add(key)
                value_id = None if value_kind is ThresholdKind.POLKA_NIL else vote.value_id
                found.append(ThresholdEvent(value_kind, round_, value_id))
        if tally.power >= quorum and (any_kind, None) not in emitted:
            emitted.add((any_kind, None))
            found.append(ThresholdEvent(any_kind, round_))
        skip_key = (ThresholdKind.SKIP_ROUND, None)
        if round_votes.voters_power >= self._f_plus_one_power and skip_key not in emitted:
            emitted.add(skip_key)
            found.append(ThresholdEvent(ThresholdKind.SKIP_ROUND, round_))
        return tuple(found)

    # --- queries (all O(1)) --------------------------------------------------------------------

    def has_polka_for(self, round_: int, value_id: ValueId) -> bool:
        """More than 2/3 of the power prevoted ``value_id`` in ``round_`` (dropped rounds
        included, within the polka history)."""
        round_votes = self._rounds.get(round_)
        if round_votes is None:
            return self._polka_history.get(round_) == value_id
        return round_votes.prevotes.power_by_value.get(value_id, 0) >= self._quorum_power

    def has_polka_nil(self, round_: int) -> bool:
        """More than 2/3 of the power prevoted nil in ``round_``."""
        round_votes = self._rounds.get(round_)
        return round_votes is not None and (
            round_votes.prevotes.power_by_value.get(None, 0) >= self._quorum_power
        )

    def has_polka_any(self, round_: int) -> bool:
        """More than 2/3 of the power prevoted (anything) in ``round_``."""
        round_votes = self._rounds.get(round_)
        return round_votes is not None and round_votes.prevotes.power >= self._quorum_power

    def has_precommit_quorum_for(self, round_: int, value_id: ValueId) -> bool:
        """More than 2/3 of the power precommitted ``value_id`` in ``round_``."""
        round_votes = self._rounds.get(round_)
        return round_votes is not None and (
            round_votes.precommits.power_by_value.get(value_id, 0) >= self._quorum_power
        )

    def has_precommit_any(self, round_: int) -> bool:
        """More than 2/3 of the power precommitted (anything) in ``round_``."""
        round_votes = self._rounds.get(round_)
        return round_votes is not None and round_votes.precommits.power >= self._quorum_power

    def has_f_plus_one_voters(self, round_: int) -> bool:
        """Validators with more than 1/3 of the power voted in ``round_``."""
        round_votes = self._rounds.get(round_)
        return round_votes is not None and round_votes.voters_power >= self._f_plus_one_power

    def vote_of(self, validator: PublicKey, round_: int, vote_type: VoteType) -> Vote | None:
        """The first vote of ``validator`` for (``round_``, ``vote_type``), if any."""
        round_votes = self._rounds.get(round_)
        if round_votes is None:
            return None
        return round_votes.tally(vote_type).first_votes.get(validator)

    def votes_for(self, round_: int, vote_type: VoteType, value_id: ValueId | None) -> list[Vote]:
        """Counted votes of that kind for ``value_id``, in canonical validator order."""
        round_votes = self._rounds.get(round_)
        if round_votes is None:
            return []
        matching = list(round_votes.tally(vote_type).votes_by_value.get(value_id, {}).values())
        matching.sort(key=self._position)
        return matching

    def _position(self, vote: Vote) -> int:
        index = self._validator_set.index_of(vote.validator)
        assert index is not None, "only members' votes are counted"
        return index

    def power_for(self, round_: int, vote_type: VoteType, value_id: ValueId | None) -> int:
        """Power behind ``value_id`` (None = nil) for that round and type."""
        round_votes = self._rounds.get(round_)
        if round_votes is None:
            return 0
        return round_votes.tally(vote_type).power_by_value.get(value_id, 0)

    def rounds(self) -> list[int]:
        """Tracked rounds, ascending."""
        return sorted(self._rounds)

    def drop_rounds(self, rounds: list[int]) -> None:
        """Forget every vote of ``rounds`` but their polka (unknown rounds are ignored)."""
        for round_ in rounds:
            round_votes = self._rounds.pop(round_, None)
            if round_votes is None:
                continue
            for value_id, power in round_votes.prevotes.power_by_value.items():
                if value_id is not None and power >= self._quorum_power:
                    self._polka_history[round_] = value_id
                    break
            if len(self._polka_history) > MAX_POLKA_HISTORY_ROUNDS:
                del self._polka_history[min(self._polka_history)]

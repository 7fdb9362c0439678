"""The signed consensus messages of the current height a node holds, to re-send and relay.

Tendermint's liveness after the network heals needs the messages that were lost to reach
the validators that missed them. Only the signer can make a vote, but anyone can pass a
signed vote on (receivers verify signatures as usual), so a node keeps, per height:

- its own signed votes of every round (at most ``MAX_OWN_VOTES``, the oldest round goes
  first): a vote of an earlier round may be exactly what a peer still waits for;
- the verified votes of other validators for the rounds that may still matter: from
  ``KEPT_PAST_ROUNDS`` below the current round to one above it, plus the *protected* rounds
  (the locked and valid rounds and the highest round holding a precommit quorum), whose
  quorums justify this node's state to others; at most ``MAX_VALUES_PER_VALIDATOR_STEP``
  distinct values per validator and (round, vote type), so an equivocator cannot grow it;
- the verified proposals of the same rounds, at most ``MAX_PROPOSALS_PER_ROUND`` each.

Every message is kept as the exact bytes it arrived (or was sent) as: the codec is
canonical, so a message whose bytes are held is a repeat of one already verified, and
``is_held`` lets the core drop it without checking its signature again.

Quorums are weighed with the height's validator set as votes arrive (a validator's power
counts once per value), so ``quorum_value`` answers in O(values of the round).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from consensus import ValidatorSet
from node.types import Proposal, PublicKey, Vote, VoteType

KEPT_PAST_ROUNDS: Final = 2
"""Rounds below the current one whose votes and proposals stay held, in rounds (besides the
protected rounds)."""
HELD_FUTURE_ROUNDS: Final = 1
"""Rounds above the current one whose messages are held, in rounds (an honest peer is at most
one round ahead before this node follows it; farther rounds are a Byzantine's to fill)."""
MAX_OWN_VOTES: Final = 128
"""Own signed votes held per height, in votes (two per round: the latest 64 rounds)."""
MAX_VALUES_PER_VALIDATOR_STEP: Final = 2
"""Distinct values held per validator and (round, vote type): an honest validator signs one;
two are enough to carry an equivocation on."""
MAX_PROPOSALS_PER_ROUND: Final = 4
"""Distinct proposals held per round (only an equivocating proposer signs more than one)."""


class _Step:
    """The held votes of one (round, vote type), by value, with the power behind each."""

    __slots__ = ("by_value", "power_by_value", "values_of")

    def __init__(self) -> None:
        self.by_value: dict[bytes | None, dict[PublicKey, bytes]] = {}
        self.power_by_value: dict[bytes | None, int] = {}
        self.values_of: dict[PublicKey, int] = {}

    def add(self, vote: Vote, data: bytes, power: int) -> None:
        voters = self.by_value.get(vote.value_id)
        if voters is not None and vote.validator in voters:
            return
        values = self.values_of.get(vote.validator, 0)
        if values >= MAX_VALUES_PER_VALIDATOR_STEP:
            return
        self.values_of[vote.validator] = values + 1
        self.by_value.setdefault(vote.value_id, {})[vote.validator] = data
        self.power_by_value[vote.value_id] = self.power_by_value.get(vote.value_id, 0) + power


class _Round:
    """The held votes and proposals of one round."""

    __slots__ = ("precommits", "prevotes", "proposals")

    def __init__(self) -> None:
        self.prevotes = _Step()
        self.precommits = _Step()
        self.proposals: dict[bytes, bytes] = {}
        """value id -> the proposal's bytes."""

    def step(self, vote_type: VoteType) -> _Step:
        return self.prevotes if vote_type is VoteType.PREVOTE else self.precommits


class RoundMessages:
    """Signed votes and proposals of one height, within the limits of the module docstring.

    The core resets it when it starts a height, adds what it verified (and what it signed),
    and tells it the round state after each event (``follow``) so that rounds no longer
    needed are let go. Not thread-safe; every operation is O(1) but ``follow`` (O(rounds
    held)) and the listings (O(what they return)).
    """

    __slots__ = (
        "_current_round",
        "_height",
        "_own",
        "_own_key",
        "_own_proposal",
        "_protected",
        "_rounds",
        "_validator_set",
    )

    def __init__(self, own_key: PublicKey | None) -> None:
        """Messages of ``own_key`` (None: an observer's) count as this node's own."""
        self._own_key = own_key
        self._height = 0
        self._validator_set: ValidatorSet | None = None
        self._rounds: dict[int, _Round] = {}
        self._own: dict[tuple[int, VoteType], bytes] = {}
        self._own_proposal: tuple[int, bytes, bytes] | None = None
        self._current_round = 0
        self._protected: frozenset[int] = frozenset()

    @property
    def height(self) -> int:
        """The height whose messages are held (0: none)."""
        return self._height

    @property
    def rounds_held(self) -> int:
        """Rounds with votes or proposals of other validators held."""
        return len(self._rounds)

    def rounds(self) -> list[int]:
        """The rounds with messages of other validators held, ascending."""
        return sorted(self._rounds)

    @property
    def own_votes_held(self) -> int:
        """Own signed votes held."""
        return len(self._own)

    def reset(self, height: int, validator_set: ValidatorSet | None) -> None:
        """Hold the messages of ``height`` (weighed with ``validator_set``) from now on;
        forget everything else. ``None`` holds nothing until the next reset."""
        self._height = height if validator_set is not None else 0
        self._validator_set = validator_set
        self._rounds = {}
        self._own = {}
        self._own_proposal = None
        self._current_round = 0
        self._protected = frozenset()

    # --- adding -----------------------------------------------------------------------------------

    def is_held(self, message: Vote | Proposal, data: bytes) -> bool:
        """True if exactly ``data`` is held as ``message`` (a repeat of a verified message)."""
        if message.height != self._height or self._height == 0:
            return False
        round_ = self._rounds.get(message.round)
        if isinstance(message, Vote):
            if message.validator == self._own_key:
                return self._own.get((message.round, message.vote_type)) == data
            if round_ is None:
                return False
            voters = round_.step(message.vote_type).by_value.get(message.value_id)
            return voters is not None and voters.get(message.validator) == data
        return round_ is not None and round_.proposals.get(message.value_id) == data

    def add_vote(self, vote: Vote, data: bytes) -> None:
        """Hold a verified vote of a member of the height's set (ignored outside the limits)."""
        validator_set = self._validator_set
        if vote.height != self._height or validator_set is None:
            return
        if vote.validator == self._own_key:
            self._add_own(vote, data)
        round_ = self._round_for(vote.round)
        if round_ is not None:
            round_.step(vote.vote_type).add(vote, data, validator_set.power_of(vote.validator))

    def add_proposal(self, proposal: Proposal, data: bytes) -> None:
        """Hold a verified proposal of the height (ignored outside the limits)."""
        if proposal.height != self._height or self._validator_set is None:
            return
        if proposal.proposer == self._own_key:
            self._own_proposal = (proposal.round, proposal.value_id, data)
        round_ = self._round_for(proposal.round)
        if round_ is None or proposal.value_id in round_.proposals:
            return
        if len(round_.proposals) < MAX_PROPOSALS_PER_ROUND:
            round_.proposals[proposal.value_id] = data

    def _add_own(self, vote: Vote, data: bytes) -> None:
        key = (vote.round, vote.vote_type)
        if key in self._own:
            return  # a node signs one vote per step: the first is the one
        if len(self._own) >= MAX_OWN_VOTES:
            del self._own[min(self._own)]
        self._own[key] = data

    def _round_for(self, round_: int) -> _Round | None:
        """The held round ``round_``, opened if it is in the kept window; None otherwise."""
        held = self._rounds.get(round_)
        if held is not None:
            return held
        current = self._current_round
        in_window = current - KEPT_PAST_ROUNDS <= round_ <= current + HELD_FUTURE_ROUNDS
        if not in_window and round_ not in self._protected:
            return None
        held = self._rounds[round_] = _Round()
        return held

    def follow(self, round_: int, protected: Iterable[int]) -> None:
        """The height is at ``round_`` and ``protected`` rounds (locked, valid) must stay:
        let go of every other round outside the kept window. The highest round holding a
        precommit quorum stays too (it justifies leaving it)."""
        keep = frozenset(r for r in protected if r >= 0)
        if round_ == self._current_round and keep == self._protected:
            return  # nothing fell out of the window
        self._current_round, self._protected = round_, keep
        oldest, newest = round_ - KEPT_PAST_ROUNDS, round_ + HELD_FUTURE_ROUNDS
        stale = [r for r in self._rounds if not oldest <= r <= newest and r not in keep]
        if not stale:
            return
        quorum = self.highest_precommit_quorum()
        for old in stale:
            if quorum is None or old != quorum[0]:
                del self._rounds[old]

    # --- reading ----------------------------------------------------------------------------------

    def own_votes(self, *, above_round: int = -1) -> list[bytes]:
        """Own signed votes of rounds above ``above_round``, newest round first (a round's
        prevote before its precommit)."""
        keys = sorted((k for k in self._own if k[0] > above_round), key=_newest_first)
        return [self._own[key] for key in keys]

    def own_proposal(self, round_: int) -> tuple[bytes, bytes] | None:
        """``(value id, bytes)`` of this node's own proposal of ``round_``, if it made one
        (the latest one only is held)."""
        own = self._own_proposal
        if own is None or own[0] != round_:
            return None
        return own[1], own[2]

    def votes_for(self, round_: int, vote_type: VoteType, value_id: bytes | None) -> list[bytes]:
        """Held votes of ``round_`` and ``vote_type`` for ``value_id`` (None: nil)."""
        held = self._rounds.get(round_)
        if held is None:
            return []
        return list(held.step(vote_type).by_value.get(value_id, {}).values())

    def quorum_value(self, round_: int, vote_type: VoteType) -> tuple[bool, bytes | None]:
        """``(True, value)`` if held votes of ``round_`` for one value (None: nil) carry more
        than 2/3 of the power; ``(False, None)`` otherwise."""
        held = self._rounds.get(round_)
        validator_set = self._validator_set
        if held is None or validator_set is None:
            return False, None
        for value_id, power in held.step(vote_type).power_by_value.items():
            if validator_set.has_quorum(power):
                return True, value_id
        return False, None

    def highest_precommit_quorum(self) -> tuple[int, bytes | None] | None:
        """``(round, value)`` of the highest held round whose precommits for one value (None:
        nil) carry more than 2/3 of the power, if any."""
        for round_ in sorted(self._rounds, reverse=True):
            found, value_id = self.quorum_value(round_, VoteType.PRECOMMIT)
            if found:
                return round_, value_id
        return None

    def proposal_for(self, round_: int, value_id: bytes) -> bytes | None:
        """The held proposal of ``round_`` for ``value_id``, if any."""
        held = self._rounds.get(round_)
        return None if held is None else held.proposals.get(value_id)


def _newest_first(key: tuple[int, VoteType]) -> tuple[int, int]:
    round_, vote_type = key
    return -round_, int(vote_type)

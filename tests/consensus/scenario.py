"""One core under test among n signed validators: the fixture of the core-level step tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from consensus import (
    ConsensusCore,
    Effect,
    Input,
    Proposal,
    ProposalReceived,
    ScheduleTimeout,
    SignAndBroadcastProposal,
    SignAndBroadcastVote,
    StartHeight,
    TimeoutConfig,
    ValidatorSet,
    ValueId,
    Vote,
    VoteReceived,
    VoteType,
)
from tests.consensus.factories import (
    CHAIN_ID,
    key_of,
    make_validators,
    signed_proposal,
    signed_vote,
)

OwnVote = tuple[VoteType, int, ValueId | None]
"""(type, round, value) of a vote the core asked to sign."""


class Scenario:
    """Validators with ``powers``; the core under test signs as validator ``me``
    (``me=None``: an observer). Heights share one validator set unless given."""

    def __init__(
        self,
        powers: Sequence[int] = (1, 1, 1, 1),
        me: int | None = None,
        timeouts: TimeoutConfig | None = None,
        not_proposer_of: Sequence[int] = (0,),
    ) -> None:
        self.keys, self.validator_set = make_validators(powers)
        if me is None and not_proposer_of:
            me = self.non_proposer(not_proposer_of)
        self.me = me
        own_key = None if me is None else self.keys[me].public_key
        self.core = ConsensusCore(CHAIN_ID, own_key, timeouts=timeouts)
        self.log: list[Input] = []

    def non_proposer(self, rounds: Iterable[int]) -> int:
        """Index of a validator proposing in none of ``rounds`` (at height 1)."""
        proposers = {self.validator_set.proposer(r) for r in rounds}
        return next(i for i, k in enumerate(self.keys) if k.public_key not in proposers)

    def index_of_proposer(self, round_: int, validator_set: ValidatorSet | None = None) -> int:
        """Index of the proposer of ``round_``."""
        chosen = (validator_set or self.validator_set).proposer(round_)
        return next(i for i, k in enumerate(self.keys) if k.public_key == chosen)

    def others(self, count: int | None = None) -> list[int]:
        """Indices of validators other than ``me`` (the first ``count`` of them)."""
        found = [i for i in range(len(self.keys)) if i != self.me]
        return found if count is None else found[:count]

    # --- inputs ----------------------------------------------------------------------------

    def feed(self, event: Input) -> list[Effect]:
        """Hand ``event`` to the core (and log it, for replay tests)."""
        self.log.append(event)
        return self.core.handle(event)

    def start(self, height: int = 1, validator_set: ValidatorSet | None = None) -> list[Effect]:
        """StartHeight(height)."""
        return self.feed(StartHeight(height, validator_set or self.validator_set))

    def proposal(
        self, round_: int, value: ValueId, valid_round: int = -1, height: int = 1
    ) -> Proposal:
        """The proposal of ``value`` signed by the proposer of ``round_``."""
        key = key_of(self.keys, self.validator_set.proposer(round_))
        return signed_proposal(key, height, round_, value, valid_round)

    def propose(
        self,
        round_: int,
        value: ValueId,
        valid: bool | None = True,
        valid_round: int = -1,
        height: int = 1,
    ) -> list[Effect]:
        """Feed the round's proposal with the verdict ``valid``."""
        return self.feed(ProposalReceived(self.proposal(round_, value, valid_round, height), valid))

    def vote(
        self, index: int, round_: int, vote_type: VoteType, value: ValueId | None, height: int = 1
    ) -> Vote:
        """A vote signed by validator ``index``."""
        return signed_vote(self.keys[index], height, round_, vote_type, value)

    def votes(
        self,
        indices: Iterable[int],
        round_: int,
        vote_type: VoteType,
        value: ValueId | None,
        height: int = 1,
    ) -> list[Effect]:
        """Feed one vote from each of ``indices``; returns all effects."""
        effects: list[Effect] = []
        for index in indices:
            effects += self.feed(VoteReceived(self.vote(index, round_, vote_type, value, height)))
        return effects

    def loop_back(self, effects: Iterable[Effect]) -> list[Effect]:
        """Act as the shell: sign this node's messages and feed them back."""
        assert self.me is not None
        key = self.keys[self.me]
        produced: list[Effect] = []
        for effect in effects:
            if isinstance(effect, SignAndBroadcastVote):
                signed = effect.vote.with_signature(key.sign(effect.sign_bytes))
                produced += self.feed(VoteReceived(signed))
            elif isinstance(effect, SignAndBroadcastProposal):
                signed_p = effect.proposal.with_signature(key.sign(effect.sign_bytes))
                produced += self.feed(ProposalReceived(signed_p))
        return produced


def own_votes(effects: Iterable[Effect]) -> list[OwnVote]:
    """The votes the core asked to sign, as (type, round, value)."""
    return [
        (e.vote.vote_type, e.vote.round, e.vote.value_id)
        for e in effects
        if isinstance(e, SignAndBroadcastVote)
    ]


def timeouts_of(effects: Iterable[Effect]) -> list[ScheduleTimeout]:
    """The ScheduleTimeout effects."""
    return [e for e in effects if isinstance(e, ScheduleTimeout)]

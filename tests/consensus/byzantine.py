"""Byzantine behaviours for the multi-core harness, kept apart from the honest shell.

:class:`SplitBrainAdversary` controls every Byzantine validator at once (the strongest,
coordinated adversary). It splits the honest nodes into two groups and tells each group a
different story: when a Byzantine validator proposes, group A gets value A and group B value
B; for every round, each Byzantine validator prevotes and precommits group A's value to group
A and group B's value (or nil) to group B. One honest node per round also gets both stories,
so honest nodes see equivocations and must turn them into evidence. It also sprays votes for
far-future rounds, which the round window must bound. With at most f Byzantine validators
Tendermint stays safe; with f+1 this is the classic attack that breaks agreement.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from consensus import (
    Input,
    Proposal,
    ProposalReceived,
    ValidatorSet,
    ValueId,
    VoteReceived,
    VoteType,
)
from crypto_core.signatures import Ed25519KeyPair
from tests.consensus.factories import signed_proposal, signed_vote, value_id

Delivery = tuple[int, Input]
"""(recipient node index, input)."""

FAR_ROUND_OFFSET = 40
"""How far ahead of the current round the spam votes go."""


class SplitBrainAdversary:
    """Coordinated equivocation by the validators at ``byzantine`` indices."""

    def __init__(
        self,
        keys: Sequence[Ed25519KeyPair],
        byzantine: Sequence[int],
        honest: Sequence[int],
        sets: Mapping[int, ValidatorSet],
        rng: random.Random,
    ) -> None:
        self._keys = keys
        self._byzantine = list(byzantine)
        self._byzantine_keys = {keys[i].public_key: i for i in byzantine}
        shuffled = list(honest)
        rng.shuffle(shuffled)
        half = (len(shuffled) + 1) // 2
        self.group_a, self.group_b = shuffled[:half], shuffled[half:]
        self._sets = sets
        self._rng = rng
        self._rounds_seen: set[tuple[int, int]] = set()
        self._stories: dict[tuple[int, int], tuple[ValueId, ValueId | None]] = {}

    def is_byzantine_proposer(self, height: int, round_: int) -> bool:
        """True iff a Byzantine validator proposes in (height, round)."""
        return self._sets[height].proposer(round_) in self._byzantine_keys

    def on_round_started(self, height: int, round_: int) -> list[Delivery]:
        """An honest node entered (height, round): propose two values if it is our turn."""
        if height not in self._sets or (height, round_) in self._rounds_seen:
            return []
        self._rounds_seen.add((height, round_))
        proposer = self._sets[height].proposer(round_)
        if proposer not in self._byzantine_keys:
            return []
        key = self._keys[self._byzantine_keys[proposer]]
        value_a = value_id(f"byzantine-A/{height}/{round_}")
        value_b = value_id(f"byzantine-B/{height}/{round_}")
        self._stories[(height, round_)] = (value_a, value_b)
        deliveries: list[Delivery] = []
        for group, value in ((self.group_a, value_a), (self.group_b, value_b)):
            proposal = signed_proposal(key, height, round_, value)
            deliveries.extend((node, ProposalReceived(proposal, True)) for node in group)
        deliveries.extend(self._votes(height, round_, value_a, value_b))
        return deliveries

    def on_honest_proposal(self, proposal: Proposal) -> list[Delivery]:
        """An honest proposer proposed: back its value to group A only, nil to group B."""
        story = (proposal.height, proposal.round)
        if story in self._stories:
            return []
        self._stories[story] = (proposal.value_id, None)
        return self._votes(proposal.height, proposal.round, proposal.value_id, None)

    def _votes(
        self, height: int, round_: int, value_a: ValueId, value_b: ValueId | None
    ) -> list[Delivery]:
        deliveries: list[Delivery] = []
        witness = self._rng.choice(self.group_a + self.group_b)
        for index in self._byzantine:
            key = self._keys[index]
            for vote_type in (VoteType.PREVOTE, VoteType.PRECOMMIT):
                vote_a = signed_vote(key, height, round_, vote_type, value_a)
                vote_b = signed_vote(key, height, round_, vote_type, value_b)
                deliveries.extend((node, VoteReceived(vote_a)) for node in self.group_a)
                deliveries.extend((node, VoteReceived(vote_b)) for node in self.group_b)
                other = vote_b if witness in self.group_a else vote_a
                deliveries.append((witness, VoteReceived(other)))
            far_vote = signed_vote(key, height, round_ + FAR_ROUND_OFFSET, VoteType.PREVOTE, None)
            deliveries.extend((node, VoteReceived(far_vote)) for node in self.group_a)
        return deliveries

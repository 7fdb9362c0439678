"""Seven NodeCores: a validator locked before a partition of more than 40 rounds learns,
after the heal, the old polka its peers re-send, unlocks and decides with them.

The story, forced with loss rules (``node.testing.cluster``):

1. round 0: only X sees a polka (for W), so X alone locks on W; then X is cut off;
2. round ``vr``: four validators (the set L) lock on V, the two others (U) do not see its
   polka; no quorum of precommits, so nobody decides;
3. rounds ``vr + 1`` to ``heal_round - 1``: every proposal is lost, every round ends nil;
4. from ``heal_round`` on U falls silent and X is back: L (4 of 7) re-propose V citing
   ``vr``, and a quorum (5) needs X's prevote. X, locked on W in round 0, may prevote V
   only after seeing the polka of round ``vr`` (L28), which is more than
   ``PAST_ROUNDS_KEPT`` rounds old: L re-sends it (``node.chain.catch_up``) and X's round
   window admits it because the proposal of the current round cites it.
"""

from __future__ import annotations

from collections.abc import Callable

from consensus.limits import PAST_ROUNDS_KEPT
from node.chain import ConsensusParams
from node.codec import Message
from node.testing.cluster import Cluster
from node.types import Proposal, Vote, VoteType

PREVOTE = VoteType.PREVOTE
FAST = ConsensusParams(
    timeout_propose_ms=300,
    timeout_propose_delta_ms=20,
    timeout_prevote_ms=150,
    timeout_prevote_delta_ms=20,
    timeout_precommit_ms=150,
    timeout_precommit_delta_ms=20,
)
PARTITION_ROUNDS = 40
HEIGHT = 1


class Story:
    """Who plays which part, from the proposer schedule of height 1."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        names = cluster.names
        self.name_of = {n.signer.public_key: name for name, n in cluster.nodes.items() if n.signer}
        p0 = self.proposer(0)
        self.x = next(n for n in names if n != p0)
        self.vr = next(r for r in range(1, 100) if self.proposer(r) != self.x)
        q = self.proposer(self.vr)
        others = [n for n in names if n not in (self.x, q)]
        self.u_nil, self.u_late, self.f = others[0], others[1], others[2]
        self.locked_set = [q, *others[2:]]  # L: Q, F and two more
        self.heal_round = next(
            r for r in range(self.vr + PARTITION_ROUNDS, 200) if self.proposer(r) in self.locked_set
        )
        self.nil_in_round_0 = [n for n in names if n not in (p0, self.x)][:2]
        self.proposed: dict[int, bytes] = {}
        self.x_precommit_0: bytes | None = None

    def proposer(self, round_: int) -> str:
        """The name of the proposer of ``round_`` at height 1."""
        return self.name_of[self.cluster.genesis.validator_set().proposer(round_)]

    def key(self, name: str) -> bytes:
        signer = self.cluster.nodes[name].signer
        assert signer is not None
        return signer.public_key

    def rules(self) -> list[Callable[[str, str, Message], bool]]:
        x_key, f_key = self.key(self.x), self.key(self.f)
        silent = {self.key(self.u_nil), self.key(self.u_late)}

        def round_0(sender: str, receiver: str, message: Message) -> bool:
            if isinstance(message, Proposal) and message.round == 0:
                return receiver in self.nil_in_round_0  # they prevote nil
            return isinstance(message, Vote) and (
                message.round,
                message.vote_type,
                message.validator,
            ) == (0, PREVOTE, x_key)  # nobody but X sees its polka

        def round_vr(sender: str, receiver: str, message: Message) -> bool:
            if isinstance(message, Proposal) and message.round == self.vr:
                return receiver == self.u_nil
            return (
                isinstance(message, Vote)
                and (message.round, message.vote_type, message.validator)
                == (self.vr, PREVOTE, f_key)
                and receiver in (self.u_nil, self.u_late)
            )  # U misses the polka of V

        def quiet_rounds(sender: str, receiver: str, message: Message) -> bool:
            return isinstance(message, Proposal) and (
                0 < message.round < self.vr or self.vr < message.round < self.heal_round
            )

        def u_silent_after_heal(sender: str, receiver: str, message: Message) -> bool:
            signer = message.validator if isinstance(message, Vote) else None
            if isinstance(message, Proposal):
                signer = message.proposer
            round_ = getattr(message, "round", -1)
            return signer in silent and round_ >= self.heal_round

        return [self.spy, round_0, round_vr, quiet_rounds, u_silent_after_heal]

    def spy(self, sender: str, receiver: str, message: Message) -> bool:
        """Loses nothing: notes the values proposed and X's precommit of round 0."""
        if isinstance(message, Proposal):
            self.proposed.setdefault(message.round, message.value_id)
        elif isinstance(message, Vote) and sender == self.x and message.round == 0:
            precommit = message.vote_type is VoteType.PRECOMMIT
            self.x_precommit_0 = message.value_id if precommit else self.x_precommit_0
        return False

    def round_of(self, name: str) -> int:
        return self.cluster.core(name).status().round


def test_a_validator_partitioned_for_40_rounds_learns_the_old_polka_and_decides() -> None:
    cluster = Cluster(validators=7, seed="long-partition", params=FAST)
    story = Story(cluster)
    for rule in story.rules():
        cluster.lose(rule)
    x = story.x

    def x_locked() -> bool:
        status = cluster.core(x).status()
        return (status.round, status.step) == (0, "precommit")

    cluster.run_while(lambda: not x_locked(), max_virtual_ms=20_000)
    cluster.isolate(x)
    last = story.heal_round - 1
    cluster.run_while(
        lambda: max(story.round_of(n) for n in story.locked_set) < last,
        max_virtual_ms=3_600_000,
    )
    assert all(cluster.height(n) == 0 for n in cluster.names)  # nobody decided yet
    assert story.round_of(x) == 0  # X stayed behind, locked on W
    assert story.heal_round - story.vr > PAST_ROUNDS_KEPT  # the polka is out of the window
    cluster.heal()
    cluster.run_until(HEIGHT, nodes=[x, *story.locked_set], max_virtual_ms=120_000)

    assert cluster.violations == []
    w, v = story.proposed[0], story.proposed[story.vr]
    assert w != v and story.x_precommit_0 == w  # X was locked on W, L on V
    assert {cluster.block_ids(n)[0] for n in [x, *story.locked_set]} == {v}
    committed = cluster.core(x).committed_block(HEIGHT)
    assert committed is not None and committed.commit.round >= story.heal_round
    assert any(s.validator == story.key(x) for s in committed.commit.signatures)  # X needed

"""Byzantine wrappers on the wire: equivocation, double votes, silence, amnesia and spam,
each shown on the messages a wrapped node actually sends."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from consensus.evidence import DuplicateVoteEvidence
from consensus.sign_bytes import proposal_sign_bytes_of, vote_sign_bytes_of
from consensus.types import Proposal, Vote, VoteType
from crypto_core.signatures import verify
from netsim.byzantine import (
    SPAM_TIMER,
    ByzantineNode,
    ByzantineRole,
    Coalition,
    parse_roles,
)
from netsim.clock import SimClock
from netsim.errors import ConfigError
from netsim.node_api import Decision, Envelope, NodeEnv, SimNode, TimerToken
from netsim.regions import LatencyTable
from netsim.rng import PortRng
from netsim.storage import SimStorage
from netsim.topology import Topology, build_topology
from node.codec import block_id, decode_message, encode_message, evidence_root
from node.errors import DecodeError
from node.ports import Clock, Rng
from node.testing.factories import key_pair
from node.types import Block, BlockHeader, BlockTxs, BlockTxsRequest

CHAIN = "netsim"
KEYS = [key_pair(f"byz-test-{i}") for i in range(6)]
TOPOLOGY = build_topology(6, 6, LatencyTable(("paris",)), random.Random(0))


@dataclass
class FakeEnv:
    """Records what the wrapper sends, per destination."""

    index: int
    topology: Topology = TOPOLOGY
    storage: SimStorage = field(default_factory=SimStorage)
    sent: list[tuple[int, Envelope]] = field(default_factory=list)
    timers: list[TimerToken] = field(default_factory=list)
    rng: Rng = field(default_factory=lambda: PortRng(random.Random(0)))

    @property
    def clock(self) -> Clock:
        return SimClock(lambda: 0)

    def send(self, dst: int, envelope: Envelope) -> None:
        self.sent.append((dst, envelope))

    def multicast(self, dsts: Sequence[int], envelope: Envelope) -> None:
        self.sent += [(dst, envelope) for dst in dsts if dst != self.index]

    def set_timer(self, delay_ms: int, token: TimerToken) -> int:
        self.timers.append(token)
        return len(self.timers)

    def cancel_timer(self, timer_id: int) -> None:
        pass

    def decided(self, decision: Decision) -> None:
        pass

    def accused(self, validator: bytes) -> None:
        pass

    def rejected(self, sender: int, reason: str) -> None:
        pass


class Scripted:
    """Honest node code that sends ``script`` to every validator when started."""

    def __init__(self, env: NodeEnv, script: list[bytes]) -> None:
        self.env = env
        self.script = script
        self.received: list[bytes] = []

    def start(self) -> None:
        for data in self.script:
            self.env.multicast(range(self.env.topology.validators), Envelope(data))

    def on_message(self, sender: int, envelope: Envelope) -> None:
        self.received.append(envelope.data)

    def on_timer(self, token: TimerToken) -> None:
        pass

    def submit_tx(self, tx: bytes) -> None:
        pass


def wrap(
    roles: Sequence[ByzantineRole], script: list[bytes], members: Sequence[int] = (0,)
) -> tuple[ByzantineNode, FakeEnv, Coalition]:
    coalition = Coalition(members, TOPOLOGY, random.Random(1), CHAIN)
    env = FakeEnv(index=members[0])

    def inner(inner_env: NodeEnv) -> SimNode:
        return Scripted(inner_env, script)

    node = ByzantineNode(env, inner, roles=roles, key=KEYS[members[0]], coalition=coalition)
    return node, env, coalition


def signed_vote(
    key_index: int, value: bytes | None, vote_type: VoteType = VoteType.PREVOTE
) -> Vote:
    key = KEYS[key_index]
    vote = Vote(CHAIN, 1, 0, vote_type, value, key.public_key, b"")
    return vote.with_signature(key.sign(vote_sign_bytes_of(vote)))


def proposal_and_block(key_index: int) -> tuple[bytes, bytes, bytes]:
    key = KEYS[key_index]
    header = BlockHeader(
        CHAIN, 1, 1_000, bytes(32), bytes(32), bytes(32), bytes(32), key.public_key, None
    )
    block = Block(header, ())
    value = block_id(header)
    proposal = Proposal(CHAIN, 1, 0, value, -1, key.public_key, b"")
    proposal = proposal.with_signature(key.sign(proposal_sign_bytes_of(proposal)))
    return encode_message(block), encode_message(proposal), value


def decoded(env: FakeEnv) -> list[tuple[int, object]]:
    return [(dst, decode_message(envelope.data)) for dst, envelope in env.sent]


def test_roles_parse_and_bad_names_are_explained() -> None:
    assert parse_roles("silent, spam") == (ByzantineRole.SILENT, ByzantineRole.SPAM)
    with pytest.raises(ConfigError, match="double-vote"):
        parse_roles("liar")


def test_the_coalition_splits_honest_validators_into_two_sides() -> None:
    coalition = Coalition((0, 1), TOPOLOGY, random.Random(1), CHAIN)
    sides = [coalition.side_of(v) for v in range(6)]
    assert sides[0] == sides[1] == 0  # members stand with side A
    assert sides[2:].count(1) == 2 and sides[2:].count(0) == 2


def test_an_equivocating_proposer_shows_each_side_its_own_block() -> None:
    block, proposal, value = proposal_and_block(0)
    node, env, coalition = wrap([ByzantineRole.EQUIVOCATE], [block, proposal])
    node.start()
    values_by_side: dict[int, set[bytes]] = {0: set(), 1: set()}
    for dst, message in decoded(env):
        if isinstance(message, Proposal):
            assert verify(KEYS[0].public_key, proposal_sign_bytes_of(message), message.signature)
            values_by_side[coalition.side_of(dst)].add(message.value_id)
        else:
            assert isinstance(message, Block)
    assert values_by_side[0] == {value}
    (twin,) = values_by_side[1]
    assert twin != value
    assert coalition.story(1, 0) == (value, twin)
    blocks = {block_id(m.header) for _, m in decoded(env) if isinstance(m, Block)}
    assert blocks == {value, twin}  # each side can validate the value it was shown


def test_the_twin_block_keeps_the_evidence_and_transactions_of_the_original() -> None:
    """Regression: the twin was once rebuilt from header and transactions only, dropping the
    evidence, so side B was shown a block whose evidence root did not match (an invalid
    value) and the adversary was weaker than meant."""
    key = KEYS[0]
    evidence = DuplicateVoteEvidence.from_votes(signed_vote(3, None), signed_vote(3, b"\x05" * 32))
    header = BlockHeader(
        CHAIN,
        1,
        1_000,
        bytes(32),
        bytes(32),
        bytes(32),
        bytes(32),
        key.public_key,
        None,
        evidence_root([evidence]),
    )
    original = Block(header, (b"tx-1", b"tx-2"), (evidence,))
    value = block_id(header)
    proposal = Proposal(CHAIN, 1, 0, value, -1, key.public_key, b"")
    proposal = proposal.with_signature(key.sign(proposal_sign_bytes_of(proposal)))
    node, env, coalition = wrap(
        [ByzantineRole.EQUIVOCATE], [encode_message(original), encode_message(proposal)]
    )
    node.start()
    blocks = {block_id(m.header): m for _, m in decoded(env) if isinstance(m, Block)}
    story = coalition.story(1, 0)
    assert story is not None and story[0] == value
    twin = blocks[story[1]]
    assert twin.evidence == (evidence,)
    assert twin.txs == original.txs
    assert twin.header.evidence_root == evidence_root(twin.evidence)
    assert twin.header.time_ms == header.time_ms + 1  # the one field that must differ


class Holder(Scripted):
    """Node code that holds one block's transactions and answers requests for them."""

    def __init__(self, env: NodeEnv, script: list[bytes], value: bytes, txs: list[bytes]):
        super().__init__(env, script)
        self.value, self.txs = value, txs

    def on_message(self, sender: int, envelope: Envelope) -> None:
        super().on_message(sender, envelope)
        request = decode_message(envelope.data)
        if isinstance(request, BlockTxsRequest) and request.block_id == self.value:
            txs = tuple(self.txs[i] for i in request.indexes)
            answer = BlockTxs(request.block_id, request.indexes, txs)
            self.env.send(sender, Envelope(encode_message(answer)))


def test_a_peer_asking_for_the_twins_transactions_gets_them_under_the_twins_id() -> None:
    block, proposal, value = proposal_and_block(0)
    coalition = Coalition((0,), TOPOLOGY, random.Random(1), CHAIN)
    env = FakeEnv(index=0)
    txs = [b"tx-a", b"tx-b"]

    def inner(inner_env: NodeEnv) -> SimNode:
        return Holder(inner_env, [block, proposal], value, txs)

    node = ByzantineNode(
        env, inner, roles=[ByzantineRole.EQUIVOCATE], key=KEYS[0], coalition=coalition
    )
    node.start()
    story = coalition.story(1, 0)
    assert story is not None
    twin = story[1]
    asker = next(d for d in range(1, 6) if coalition.side_of(d) == 1)
    env.sent.clear()
    node.on_message(asker, Envelope(encode_message(BlockTxsRequest(twin, (1,)))))
    assert decoded(env) == [(asker, BlockTxs(twin, (1,), (b"tx-b",)))]
    env.sent.clear()  # a request for the original is answered as before
    node.on_message(asker, Envelope(encode_message(BlockTxsRequest(value, (0,)))))
    assert decoded(env) == [(asker, BlockTxs(value, (0,), (b"tx-a",)))]


def test_a_double_voter_backs_the_story_and_shows_a_witness_both_votes() -> None:
    own = encode_message(signed_vote(0, b"\x07" * 32))
    node, env, coalition = wrap([ByzantineRole.DOUBLE_VOTE], [own])
    node.start()
    votes = [(dst, m) for dst, m in decoded(env) if isinstance(m, Vote)]
    by_side = {
        side: {m.value_id for d, m in votes if coalition.side_of(d) == side} for side in (0, 1)
    }
    assert b"\x07" * 32 in by_side[0]
    assert None in by_side[1]  # the other side hears nil
    per_node = {dst: {m.value_id for d, m in votes if d == dst} for dst, _ in votes}
    assert any(len(values) == 2 for values in per_node.values())  # one witness sees both
    for _, vote in votes:
        assert verify(KEYS[0].public_key, vote_sign_bytes_of(vote), vote.signature)


def test_when_a_member_equivocates_every_double_voter_votes_both_stories() -> None:
    coalition = Coalition((0, 1), TOPOLOGY, random.Random(1), CHAIN)
    env = FakeEnv(index=1)
    ByzantineNode(
        env,
        lambda e: Scripted(e, []),
        roles=[ByzantineRole.DOUBLE_VOTE],
        key=KEYS[1],
        coalition=coalition,
    )
    coalition.tell(1, 0, b"\x0a" * 32, b"\x0b" * 32)
    votes = [(dst, m) for dst, m in decoded(env) if isinstance(m, Vote)]
    assert {m.vote_type for _, m in votes} == {VoteType.PREVOTE, VoteType.PRECOMMIT}
    for dst, vote in votes:
        expected = b"\x0b" * 32 if coalition.side_of(dst) == 1 else b"\x0a" * 32
        assert vote.value_id == expected and vote.validator == KEYS[1].public_key


def test_a_silent_validator_sends_nothing() -> None:
    block, proposal, _ = proposal_and_block(0)
    node, env, _ = wrap([ByzantineRole.SILENT], [block, proposal])
    node.start()
    assert env.sent == []


def test_an_amnesiac_prevotes_the_proposal_its_lock_would_refuse() -> None:
    _, proposal, value = proposal_and_block(3)
    node, env, _ = wrap([ByzantineRole.AMNESIA], [])
    node.on_message(3, Envelope(proposal))  # round 0's proposal arrives
    env.sent.clear()
    node.outbound((1, 2), Envelope(encode_message(signed_vote(0, None))))
    ((_, first), (_, second)) = decoded(env)
    assert isinstance(first, Vote) and first.value_id == value == getattr(second, "value_id", None)
    assert verify(KEYS[0].public_key, vote_sign_bytes_of(first), first.signature)


def test_a_spammer_sends_invalid_messages_on_its_own_timer() -> None:
    node, env, _ = wrap([ByzantineRole.SPAM], [])
    node.start()
    assert env.timers == [SPAM_TIMER]
    for _ in range(60):
        node.on_timer(SPAM_TIMER)
    assert len(env.sent) == 60 and all(dst != 0 for dst, _ in env.sent)
    undecodable = 0
    for _, envelope in env.sent:
        try:
            decode_message(envelope.data)
        except DecodeError:
            undecodable += 1
    assert 0 < undecodable < 60  # garbage, and well-formed lies


def test_wrapped_node_code_cannot_use_the_wrappers_timer_tokens() -> None:
    node, _, _ = wrap([ByzantineRole.SILENT], [])
    with pytest.raises(ValueError, match="reserved"):
        node._inner.env.set_timer(1, SPAM_TIMER)  # type: ignore[attr-defined]

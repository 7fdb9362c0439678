"""Liveness after faults heal: validators left in different rounds of one height catch up.

The cluster test reproduces the stall the simulator found (regressions.json): a validator
leaves a round on precommits the others never received; once the links heal, only a re-send
of that earlier round's precommit moves them. The other tests drive one node by hand and
check what it re-sends, relays and answers (``node.chain.catch_up``), and within which bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

import node.core as node_core
from consensus import verify_vote
from crypto_core.signatures import Ed25519KeyPair
from node.chain import (
    Action,
    Broadcast,
    NodeConfig,
    SendTo,
    Start,
    TimerFired,
    TimerKey,
    TimerKind,
)
from node.chain.messages import TOPIC_CONSENSUS
from node.codec import block_id, decode_message
from node.core import NodeCore
from node.testing.cluster import Cluster, round_loss
from node.types import Block, CompactBlock, Proposal, Vote, VoteType
from tests.core.helpers import (
    VALIDATORS,
    Solo,
    first_block,
    id_of,
    key_of,
    kv_tx,
    of_type,
    set_at,
    signed_proposal,
    signed_vote,
)

PREVOTE = VoteType.PREVOTE
PRECOMMIT = VoteType.PRECOMMIT
HEIGHT = 1


def names_by_proposer(cluster: Cluster) -> tuple[str, list[str]]:
    """The proposer of round 0 at height 1 and the other validators, by name."""
    proposer_key = cluster.genesis.validator_set().proposer(0)
    by_key = {node.signer.public_key: name for name, node in cluster.nodes.items() if node.signer}
    proposer = by_key[proposer_key]
    return proposer, [name for name in cluster.names if name != proposer]


def test_a_validator_that_left_a_round_first_re_sends_what_the_others_still_wait_for() -> None:
    cluster = Cluster(validators=4, seed="catch-up")
    silent, (ahead, *behind) = names_by_proposer(cluster)
    # The round-0 proposer is gone for good: round 0 can only end with nil precommits, and
    # the three others are exactly a quorum, so each of them is needed in every round.
    cluster.isolate(silent)
    precommits = round_loss(HEIGHT, 0, senders=[ahead], receivers=behind, vote_type=PRECOMMIT)
    cluster.lose(precommits)
    cluster.run_for(20_000)

    assert cluster.core(ahead).status().round >= 1  # three nil precommits: on to round 1
    for name in behind:  # two precommits of round 0 each: waiting for a third, forever
        status = cluster.core(name).status()
        assert (status.round, status.step) == (0, "precommit")
    assert all(cluster.height(name) == 0 for name in cluster.names)

    cluster.stop_losing()
    cluster.run_until(HEIGHT, nodes=[ahead, *behind], max_virtual_ms=30_000)

    assert cluster.violations == []
    assert len({cluster.block_ids(name)[0] for name in (ahead, *behind)}) == 1
    assert cluster.core(ahead).stats.catch_up_messages > 0


# -- one node driven by hand -------------------------------------------------------------------

KEYS = list(VALIDATORS.keys)
SYNC_TICK = TimerKey(TimerKind.SYNC_TICK)


def peer(key: Ed25519KeyPair) -> str:
    """The peer id a validator's messages come from."""
    return f"peer-{KEYS.index(key)}"


@dataclass
class Locked:
    """A validator locked on ``block`` in round 0 of height 1 (it saw the proposal and a polka
    of ``voters`` and itself), in the precommit step; it proposes round 1."""

    solo: Solo
    block: Block
    voters: list[Ed25519KeyPair]
    """The two validators whose prevotes completed its polka."""
    last: Ed25519KeyPair
    """The fourth validator (no message of it was seen)."""

    @property
    def value(self) -> bytes:
        return id_of(self.block)

    @property
    def me(self) -> int:
        """The index of the node under test among the validators' keys."""
        assert self.solo.key is not None
        return KEYS.index(self.solo.key)

    def send(self, key: Ed25519KeyPair, message: object) -> list[Action]:
        return self.solo.send(peer(key), message)

    def tick(self) -> list[Action]:
        return self.solo.fire(SYNC_TICK)


def locked(config: NodeConfig | None = None, *, txs: tuple[bytes, ...] = ()) -> Locked:
    round1 = KEYS.index(key_of(set_at(HEIGHT).proposer(1)))
    solo = Solo(validator_index=round1, config=config or NodeConfig())
    proposer = key_of(set_at(HEIGHT).proposer(0))
    assert proposer != solo.key, "the node under test does not propose round 0"
    block = first_block(solo.core.app_state_root, txs=txs)
    solo.send(peer(proposer), block)
    solo.send(peer(proposer), signed_proposal(proposer, HEIGHT, 0, id_of(block)))
    others = [k for k in KEYS if k != solo.key]
    for key in others[:2]:
        solo.send(peer(key), signed_vote(key, HEIGHT, 0, PREVOTE, id_of(block)))
    status = solo.core.status()
    assert (status.round, status.step) == (0, "precommit")
    return Locked(solo, block, others[:2], others[2])


def to_round_1(node: Locked, nil_precommits: list[Ed25519KeyPair]) -> list[Action]:
    """Nil precommits of round 0 from ``nil_precommits``, then the precommit timeout: the
    node enters round 1 and re-proposes its locked block."""
    for key in nil_precommits:
        node.send(key, signed_vote(key, HEIGHT, 0, PRECOMMIT, None))
    actions = node.solo.fire(TimerKey(TimerKind.PRECOMMIT, HEIGHT, 0))
    assert node.solo.core.status().round == 1
    return actions


def consensus_sent(actions: list[Action]) -> list[object]:
    """The consensus messages broadcast or sent directly, decoded, in order."""
    return [
        decode_message(a.data)
        for a in actions
        if isinstance(a, Broadcast | SendTo) and a.topic == TOPIC_CONSENSUS
    ]


def describe(message: object) -> tuple[object, ...]:
    """A short, comparable description: vote/proposal/block, signer, round, value."""
    if isinstance(message, Vote):
        return (
            "vote",
            KEYS.index(key_of(message.validator)),
            message.round,
            message.vote_type.name,
            message.value_id,
        )
    if isinstance(message, Proposal):
        return (
            "proposal",
            KEYS.index(key_of(message.proposer)),
            message.round,
            message.valid_round,
            message.value_id,
        )
    assert isinstance(message, Block | CompactBlock)  # a block with txs travels compact
    return ("block", block_id(message.header))


def test_a_stalled_node_re_sends_its_votes_and_relays_its_polka_with_proposal_and_block() -> None:
    node = locked()
    me = node.me
    assert consensus_sent(node.tick()) == []  # the first tick only notes where the round is

    resent = [describe(m) for m in consensus_sent(node.tick())]

    v = node.value
    proposer = KEYS.index(key_of(set_at(HEIGHT).proposer(0)))
    assert resent == [
        ("vote", me, 0, "PREVOTE", v),
        ("vote", me, 0, "PRECOMMIT", v),
        *[("vote", KEYS.index(k), 0, "PREVOTE", v) for k in node.voters],
        ("block", v),
        ("proposal", proposer, 0, -1, v),
    ]
    assert node.solo.core.stats.catch_up_messages == len(resent)
    assert consensus_sent(node.send(node.last, signed_vote(node.last, HEIGHT, 0, PREVOTE, v))) == []


def test_a_round_that_moves_re_sends_nothing() -> None:
    node = locked()
    node.tick()
    to_round_1(node, node.voters)
    assert consensus_sent(node.tick()) == []


def test_a_re_proposal_carries_the_polka_of_its_valid_round() -> None:
    node = locked()
    actions = to_round_1(node, node.voters)

    sent = [describe(m) for m in consensus_sent(actions)]
    me, v = node.me, node.value
    assert sent[:2] == [("block", v), ("proposal", me, 1, 0, v)]
    polka = {("vote", i, 0, "PREVOTE", v) for i in [me, *map(KEYS.index, node.voters)]}
    assert set(sent[2:5]) == polka
    assert sent[5:] == [("vote", me, 1, "PREVOTE", v)]  # L28: its own polka, its own lock


def test_own_votes_of_earlier_rounds_and_the_latest_precommit_quorum_are_re_sent() -> None:
    node = locked()
    nil_voters = [*node.voters, node.last]
    to_round_1(node, nil_voters)
    node.tick()

    resent = [describe(m) for m in consensus_sent(node.tick())]

    me, v = node.me, node.value
    assert resent[:3] == [("block", v), ("proposal", me, 1, 0, v), ("vote", me, 1, "PREVOTE", v)]
    nil_quorum = {("vote", KEYS.index(k), 0, "PRECOMMIT", None) for k in nil_voters}
    assert set(resent[3:6]) == nil_quorum
    assert ("vote", me, 0, "PRECOMMIT", v) in resent  # round 0 is over for it, not for all
    assert ("vote", me, 0, "PREVOTE", v) in resent
    assert len(resent) == len(set(resent))


def test_a_lagging_peer_is_answered_directly_once_per_sync_tick() -> None:
    node = locked()
    to_round_1(node, node.voters)
    lagger = node.last

    answer = node.send(lagger, signed_vote(lagger, HEIGHT, 0, PREVOTE, None))

    assert {a.peer for a in of_type(answer, SendTo)} == {peer(lagger)}
    sent = [describe(m) for m in consensus_sent(answer)]
    me, v = node.me, node.value
    assert sent[:3] == [("block", v), ("proposal", me, 1, 0, v), ("vote", me, 1, "PREVOTE", v)]
    assert {("vote", i, 0, "PREVOTE", v) for i in map(KEYS.index, node.voters)} <= set(sent)
    assert ("vote", me, 0, "PRECOMMIT", v) in sent  # its own vote of the peer's round
    precommit = signed_vote(lagger, HEIGHT, 0, PRECOMMIT, None)
    assert of_type(node.send(lagger, precommit), SendTo) == []  # answered in this tick
    node.tick()

    later = {describe(m) for m in consensus_sent(node.send(lagger, precommit))}

    assert set(sent) <= later  # a repeat of a held vote still shows where the peer is
    nil_quorum = {("vote", KEYS.index(k), 0, "PRECOMMIT", None) for k in [*node.voters, lagger]}
    assert nil_quorum <= later  # its precommit completed a quorum of round 0 meanwhile
    assert node.solo.core.stats.repeated_messages == 1


def test_a_lagging_peer_gets_at_most_its_share_of_the_budget() -> None:
    node = locked(NodeConfig(max_catch_up_messages_per_peer=2))
    to_round_1(node, node.voters)
    answer = node.send(node.last, signed_vote(node.last, HEIGHT, 0, PREVOTE, None))
    assert [describe(m)[0] for m in consensus_sent(answer)] == ["block", "proposal"]


def test_a_peer_in_the_same_round_is_not_answered() -> None:
    node = locked()
    to_round_1(node, node.voters)
    key = node.voters[0]
    assert of_type(node.send(key, signed_vote(key, HEIGHT, 1, PREVOTE, None)), SendTo) == []
    # Heard in round 1 already: a late round-0 vote of it does not make it lag.
    assert (
        of_type(node.send(node.last, signed_vote(node.last, HEIGHT, 1, PREVOTE, None)), SendTo)
        == []
    )
    assert (
        of_type(node.send(node.last, signed_vote(node.last, HEIGHT, 0, PREVOTE, None)), SendTo)
        == []
    )


def test_catch_up_stays_within_the_message_budget_of_a_tick() -> None:
    node = locked(NodeConfig(max_catch_up_messages_per_tick=3))
    node.tick()
    first = consensus_sent(node.tick())
    assert len(first) == 3
    assert (
        consensus_sent(node.send(node.last, signed_vote(node.last, HEIGHT, 0, PREVOTE, None))) == []
    )
    node.tick()
    assert len(consensus_sent(node.tick())) == 3


def test_a_block_too_big_for_what_is_left_of_the_budget_waits_but_smaller_messages_go() -> None:
    # 160 transactions: even compact (34 bytes a transaction) the block exceeds 4 KiB.
    big = tuple(kv_tx(client, nonce) for nonce in range(40) for client in range(4))
    node = locked(NodeConfig(max_catch_up_bytes_per_tick=4 * 1024), txs=big)
    node.tick()

    resent = [describe(m)[0] for m in consensus_sent(node.tick())]

    assert "block" not in resent
    assert resent.count("vote") == 4 and resent.count("proposal") == 1


def test_a_repeated_vote_is_not_verified_again(monkeypatch: pytest.MonkeyPatch) -> None:
    node = locked()
    verified: list[Vote] = []

    def counting(vote: Vote, *args: Any, **kwargs: Any) -> None:
        verified.append(vote)
        verify_vote(vote, *args, **kwargs)

    monkeypatch.setattr(node_core, "verify_vote", counting)
    vote = signed_vote(node.last, HEIGHT, 0, PREVOTE, node.value)
    node.send(node.last, vote)
    node.send(node.voters[0], vote)

    assert verified == [vote]
    assert node.solo.core.stats.repeated_messages == 1
    assert node.solo.core.stats.misbehaviours == 0


def test_a_restarted_node_relays_the_messages_of_its_durable_log() -> None:
    node = locked()
    solo = node.solo
    restarted = NodeCore.open(solo.storage, solo.key, solo.genesis, solo.config)
    restarted.handle(Start(solo.now_ms))
    restarted.handle(TimerFired(SYNC_TICK, solo.now_ms))

    resent = {
        describe(m) for m in consensus_sent(restarted.handle(TimerFired(SYNC_TICK, solo.now_ms)))
    }

    v = node.value
    assert {("vote", KEYS.index(k), 0, "PREVOTE", v) for k in node.voters} <= resent
    proposer = KEYS.index(key_of(set_at(HEIGHT).proposer(0)))
    assert ("proposal", proposer, 0, -1, v) in resent

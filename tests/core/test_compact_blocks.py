"""Compact blocks (``node.chain.compact``): a proposed block with transactions travels as its
header and transaction hashes; a validator rebuilds it from its mempool, asks the sender for
what it lacks, checks every answer against the listed hashes, and answers others' requests
for a block it holds."""

from __future__ import annotations

from collections.abc import Sequence

from node.chain import Offence, SendTo, TxSubmitted, VerifiedTxsReceived
from node.chain.compact import REASK_MS, PendingBlocks, compact_message, rebuild
from node.chain.messages import TOPIC_CONSENSUS, TOPIC_TXS
from node.codec import decode_message, encode_message, tx_hash
from node.mempool import verify_transactions
from node.types import Block, BlockTxs, BlockTxsRequest, CompactBlock, TxBatch, VoteType
from tests.core.helpers import (
    CHAIN,
    VALIDATORS,
    Solo,
    first_block,
    id_of,
    key_of,
    kv_tx,
    misbehaviours,
    set_at,
    signed_proposal,
    votes_in,
)

PEER = "proposer-peer"
KEYS = list(VALIDATORS.keys)


def bystander() -> Solo:
    """A validator that does not propose round 0 of height 1."""
    busy = set_at(1).proposer(0)
    return Solo(validator_index=next(i for i, k in enumerate(KEYS) if k.public_key != busy))


def proposal_of(block: Block) -> object:
    return signed_proposal(key_of(set_at(1).proposer(0)), 1, 0, id_of(block))


def compact(block: Block) -> CompactBlock:
    message = decode_message(compact_message(block))
    assert isinstance(message, CompactBlock)
    return message


def sent(actions: Sequence[object]) -> list[object]:
    return [
        decode_message(a.data)
        for a in actions
        if isinstance(a, SendTo) and a.topic == TOPIC_CONSENSUS and a.peer == PEER
    ]


def prevotes(actions: Sequence[object]) -> list[bytes | None]:
    return [v.value_id for v in votes_in(actions) if v.vote_type is VoteType.PREVOTE]  # type: ignore[arg-type]


def test_a_compact_block_of_gossiped_transactions_is_rebuilt_without_asking() -> None:
    solo = bystander()
    txs = (kv_tx(0, 0), kv_tx(1, 0), kv_tx(0, 1))
    for raw in txs:
        solo.core.handle(TxSubmitted(raw, solo.now_ms))
    block = first_block(solo.core.app_state_root, txs=txs)

    actions = solo.send(PEER, compact(block)) + solo.send(PEER, proposal_of(block))

    assert sent(actions) == []
    assert prevotes(actions) == [id_of(block)]
    assert solo.core.stats.compact_blocks_incomplete == 0


def test_what_the_mempool_lacks_is_asked_of_the_sender_once_and_checked() -> None:
    solo = bystander()
    txs = (kv_tx(0, 0), kv_tx(1, 0), kv_tx(2, 0))
    solo.core.handle(TxSubmitted(txs[1], solo.now_ms))
    block = first_block(solo.core.app_state_root, txs=txs)

    asked = solo.send(PEER, compact(block)) + solo.send(PEER, compact(block))
    assert sent(asked) == [BlockTxsRequest(id_of(block), (0, 2))]  # the repeat asks nothing
    assert prevotes(solo.send(PEER, proposal_of(block))) == []  # waits for the block

    answered = solo.send(PEER, BlockTxs(id_of(block), (0, 2), (txs[0], txs[2])))
    assert prevotes(answered) == [id_of(block)]
    assert solo.core.stats.compact_blocks_incomplete == 1 and misbehaviours(answered) == []


def test_gossip_verified_after_the_block_arrived_completes_it_without_the_answer() -> None:
    solo = bystander()
    txs = (kv_tx(0, 0), kv_tx(1, 0), kv_tx(2, 0))
    block = first_block(solo.core.app_state_root, txs=txs)
    assert sent(solo.send(PEER, compact(block))) == [BlockTxsRequest(id_of(block), (0, 1, 2))]
    assert prevotes(solo.send(PEER, proposal_of(block))) == []

    # Another peer's batch, verified by the shell while the block waited.
    verified = VerifiedTxsReceived.from_results(
        "other-peer", verify_transactions(txs[:2], CHAIN), solo.now_ms
    )
    assert prevotes(solo.core.handle(verified)) == []  # one still missing
    batch = encode_message(TxBatch((txs[2],)))
    completed = solo.receive("third-peer", TOPIC_TXS, batch)  # a batch the core verifies
    assert prevotes(completed) == [id_of(block)]

    late = solo.send(PEER, BlockTxs(id_of(block), (0, 1, 2), txs))  # nothing pending
    assert misbehaviours(late) == [] and prevotes(late) == []


def test_a_transaction_announced_but_not_admitted_stays_missing_for_a_later_one() -> None:
    txs = (kv_tx(0, 0), kv_tx(1, 0))
    block = first_block(bystander().core.app_state_root, txs=txs)
    pending = PendingBlocks(4)
    pending.add(compact(block), PEER, [None, None])
    held: dict[bytes, bytes] = {}
    hashes = [tx_hash(raw) for raw in txs]
    assert pending.fill_from(hashes, held.get) == []  # both refused (e.g. mempool full)
    held[hashes[0]] = txs[0]
    assert pending.fill_from(hashes[:1], held.get) == []
    held[hashes[1]] = txs[1]
    ((_, rebuilt, sender),) = pending.fill_from(hashes[1:], held.get)
    assert rebuilt == list(txs) and sender == PEER and id_of(block) not in pending


def test_a_request_not_answered_is_made_again_when_the_block_is_heard_later() -> None:
    solo = bystander()
    txs = (kv_tx(0, 0), kv_tx(1, 0))
    block = first_block(solo.core.app_state_root, txs=txs)
    request = BlockTxsRequest(id_of(block), (0, 1))
    assert sent(solo.send(PEER, compact(block))) == [request]
    solo.now_ms += REASK_MS - 1
    assert sent(solo.send(PEER, compact(block))) == []
    solo.now_ms += 1
    assert sent(solo.send(PEER, compact(block))) == [request]


def test_an_answer_that_is_not_the_listed_transaction_is_the_senders_fault() -> None:
    solo = bystander()
    txs = (kv_tx(0, 0), kv_tx(1, 0))
    block = first_block(solo.core.app_state_root, txs=txs)
    solo.send(PEER, compact(block))

    wrong = solo.send(PEER, BlockTxs(id_of(block), (0, 1), (txs[1], txs[0])))

    assert [m.offence for m in misbehaviours(wrong)] == [Offence.INVALID_BLOCK]


def test_a_compact_block_listing_a_transaction_twice_is_refused() -> None:
    solo = bystander()
    block = first_block(solo.core.app_state_root, txs=(kv_tx(0, 0),))
    twice = CompactBlock(block.header, (tx_hash(block.txs[0]),) * 2)
    assert [m.offence for m in misbehaviours(solo.send(PEER, twice))] == [Offence.INVALID_BLOCK]


def test_a_holder_of_the_block_answers_requests_and_refuses_bad_indexes() -> None:
    solo = bystander()
    txs = tuple(kv_tx(client, 0) for client in range(3))
    block = first_block(solo.core.app_state_root, txs=txs)
    solo.send("someone", block)  # held whole

    answers = sent(solo.send(PEER, BlockTxsRequest(id_of(block), (0, 2))))
    assert answers == [BlockTxs(id_of(block), (0, 2), (txs[0], txs[2]))]
    for bad in [(2, 0), (1, 1), (3,)]:
        refused = solo.send(PEER, BlockTxsRequest(id_of(block), bad))
        assert sent(refused) == [] and [m.offence for m in misbehaviours(refused)] == [
            Offence.MALFORMED
        ]
    assert sent(solo.send(PEER, BlockTxsRequest(b"\x01" * 32, (0,)))) == []  # not held


def test_rebuild_finds_what_the_lookup_holds_in_block_order() -> None:
    txs = [kv_tx(0, 0), kv_tx(1, 0), kv_tx(2, 0)]
    held = {tx_hash(raw): raw for raw in txs[::2]}
    block = first_block(b"\x00" * 32, txs=tuple(txs))
    assert rebuild(compact(block), held.get) == [txs[0], None, txs[2]]
    assert len(compact_message(block)) < len(encode_message(block))

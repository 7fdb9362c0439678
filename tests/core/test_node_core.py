"""One NodeCore driven by hand: admission, proposing, judging blocks, committing, syncing."""

from __future__ import annotations

from typing import Any

import pytest

from node.app.blocks import build_block
from node.app.kv import MAX_KV_VALUE_BYTES
from node.app.state import verify_state_proof
from node.chain import (
    Action,
    BlockCommitted,
    BlocksReceived,
    Broadcast,
    ChainHaltError,
    EquivocationDetected,
    NodeConfig,
    PeerStatus,
    QueryError,
    RequestBlocks,
    SetTimer,
    Start,
    TimerKey,
    TimerKind,
    TxResult,
    TxSubmitted,
)
from node.chain.genesis import HEADER_OVERHEAD_BYTES
from node.chain.messages import TOPIC_TXS
from node.chain.store import read_meta
from node.codec import (
    BLOCK_CODEC,
    COMMIT_SIGNATURE_BYTES,
    COMMITTED_BLOCK_CODEC,
    MAX_TX_BYTES,
    StructCodec,
    decode_message,
)
from node.errors import RejectReason
from node.testing import TxFactory, key_pair
from node.testing.cluster import Cluster
from node.types import Block, CommittedBlock, Proposal, TxBatch, VoteType
from tests.core.helpers import (
    CHAIN,
    CLIENTS,
    GENESIS_MS,
    VALIDATORS,
    Solo,
    broadcast_messages,
    certificate,
    first_block,
    id_of,
    key_of,
    kv_tx,
    make_genesis,
    of_type,
    set_at,
    signed_proposal,
    signed_vote,
    votes_in,
)

KEYS = list(VALIDATORS.keys)


def index_of(public_key: bytes) -> int:
    return [k.public_key for k in KEYS].index(public_key)


def bystander(*heights: int) -> int:
    """A validator that proposes round 0 of none of ``heights``."""
    busy = {set_at(h).proposer(0) for h in heights}
    return next(i for i, k in enumerate(KEYS) if k.public_key not in busy)


def submit(solo: Solo, raw: bytes) -> TxResult:
    results = of_type(solo.core.handle(TxSubmitted(raw, solo.now_ms)), TxResult)
    assert len(results) == 1
    return results[0]


# -- admission and gossip ----------------------------------------------------------------------


def test_submitted_transactions_are_answered_and_gossiped_in_batches() -> None:
    solo = Solo(config=NodeConfig(max_tx_batch_txs=3))
    txs = [kv_tx(client, nonce) for nonce in range(2) for client in range(4)][:7]
    first = solo.core.handle(TxSubmitted(txs[0], solo.now_ms))
    assert [type(a) for a in first] == [TxResult, SetTimer]  # the first arms the flush timer
    assert all(submit(solo, raw).accepted for raw in txs[1:])
    assert solo.core.mempool_size == 7

    flushed = solo.fire(TimerKey(TimerKind.TX_GOSSIP))
    batches = [decode_message(a.data) for a in of_type(flushed, Broadcast)]
    assert all(a.topic == TOPIC_TXS for a in of_type(flushed, Broadcast))
    assert [len(b.txs) for b in batches if isinstance(b, TxBatch)] == [3, 3, 1]
    assert [tx for b in batches if isinstance(b, TxBatch) for tx in b.txs] == txs
    assert solo.fire(TimerKey(TimerKind.TX_GOSSIP)) == []  # nothing left to send


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (kv_tx(0, 0)[:-1] + b"\x01", RejectReason.BAD_SIGNATURE),
        (TxFactory("other").encoded(CLIENTS[0], "kv.set", b"", nonce=0), RejectReason.WRONG_CHAIN),
        (b"\x00\x01", RejectReason.MALFORMED),
        (
            TxFactory(CHAIN).encoded(key_pair("nobody"), "kv.set", b"", nonce=0),
            RejectReason.APP_REJECTED,
        ),
        (kv_tx(0, 5), RejectReason.NONCE_GAP),
    ],
    ids=["bad_signature", "wrong_chain", "malformed", "unknown_sender", "nonce_gap"],
)
def test_refused_transactions_say_why(raw: bytes, reason: RejectReason) -> None:
    solo = Solo()
    result = submit(solo, raw)
    assert not result.accepted and result.reason is reason and result.message
    assert solo.core.mempool_size == 0


def test_a_duplicate_submission_is_refused() -> None:
    solo = Solo()
    assert submit(solo, kv_tx(0, 0)).accepted
    again = submit(solo, kv_tx(0, 0))
    assert not again.accepted and again.reason is RejectReason.DUPLICATE
    assert solo.core.next_nonce(CLIENTS[0].public_key) == 1


# -- proposing -----------------------------------------------------------------------------------


def proposer_of_round_one(**params: int) -> Solo:
    """A node that proposes in round 1 of height 1, with the given chain parameters."""
    return Solo(validator_index=index_of(set_at(1).proposer(1)), genesis=make_genesis(**params))


def move_to_round_one(solo: Solo) -> list[object]:
    """Two other validators voting in round 1 (f+1) make the node skip to it."""
    others = [k for k in KEYS if k != solo.key][:2]
    actions = []
    for key in others:
        actions += solo.send("peer", signed_vote(key, 1, 1, VoteType.PREVOTE, None))
    return broadcast_messages(actions)


def test_the_proposer_takes_at_most_max_block_txs_in_nonce_order() -> None:
    solo = proposer_of_round_one(max_block_txs=5)
    for nonce in range(3):
        assert submit(solo, kv_tx(0, nonce)).accepted
    for nonce in range(3):
        assert submit(solo, kv_tx(1, nonce)).accepted
    messages = move_to_round_one(solo)
    blocks = [m for m in messages if isinstance(m, Block)]
    proposals = [m for m in messages if isinstance(m, Proposal)]
    assert len(blocks) == 1 and len(proposals) == 1
    block = blocks[0]
    assert len(block.txs) == 5 and proposals[0].value_id == id_of(block)
    assert messages.index(block) < messages.index(proposals[0])  # the block travels first
    nonces_0 = [n for n in range(3) if kv_tx(0, n) in block.txs]
    assert nonces_0 == list(range(len(nonces_0)))  # an account's run has no gap
    assert block.header.proposer == solo.core.public_key and block.header.last_commit is None


def test_the_proposer_keeps_its_block_within_max_block_bytes() -> None:
    limit = MAX_TX_BYTES + 4 * COMMIT_SIGNATURE_BYTES + HEADER_OVERHEAD_BYTES
    solo = proposer_of_round_one(max_block_bytes=limit)
    value = b"x" * MAX_KV_VALUE_BYTES
    for client in range(4):
        for nonce in range(6):
            assert submit(solo, kv_tx(client, nonce, key=bytes([nonce]), value=value)).accepted
    block = next(m for m in move_to_round_one(solo) if isinstance(m, Block))
    size = len(BLOCK_CODEC.encode(block))
    tx_size = len(block.txs[0])
    assert limit - 2 * tx_size < size <= limit
    assert len(block.txs) < 24  # not everything fitted


# -- judging proposed blocks ---------------------------------------------------------------------


@pytest.mark.parametrize("block_first", [True, False], ids=["block_first", "proposal_first"])
def test_a_valid_block_gets_a_prevote_whichever_part_arrives_first(block_first: bool) -> None:
    solo = Solo(validator_index=bystander(1))
    block = first_block(solo.core.app_state_root, txs=(kv_tx(0, 0),))
    proposal = signed_proposal(key_of(set_at(1).proposer(0)), 1, 0, id_of(block))
    parts = [block, proposal] if block_first else [proposal, block]
    actions = solo.send("p", parts[0]) + solo.send("p", parts[1])
    assert [(v.vote_type, v.value_id) for v in votes_in(actions)] == [
        (VoteType.PREVOTE, id_of(block))
    ]


def _variant(block: Block, **changes: Any) -> Block:
    header = block.header
    fields: dict[str, Any] = {
        "chain_id": header.chain_id,
        "height": header.height,
        "time_ms": header.time_ms,
        "previous_block_id": header.previous_block_id,
        "txs": block.txs,
        "app_state_root": header.app_state_root,
        "validator_set_hash": header.validator_set_hash,
        "proposer": header.proposer,
        "last_commit": header.last_commit,
    }
    fields.update(changes)
    return build_block(**fields)


@pytest.mark.parametrize(
    "breakage",
    [
        {"time_ms": GENESIS_MS + 1_000 + 3_600_000},
        {"time_ms": GENESIS_MS},
        {"app_state_root": bytes(32)},
        {"validator_set_hash": bytes(32)},
        {"proposer": key_pair("outsider").public_key},
        {"txs": (kv_tx(0, 0)[:-1] + b"\x07",)},
        {"txs": (kv_tx(0, 0), kv_tx(0, 0))},
        {"previous_block_id": b"\x01" * 32},
    ],
    ids=[
        "too_far_ahead",
        "not_after_genesis",
        "app_state_root",
        "validator_set_hash",
        "proposer",
        "tx_signature",
        "duplicate_tx",
        "previous_block_id",
    ],
)
def test_an_invalid_block_gets_a_nil_prevote(breakage: dict[str, Any]) -> None:
    solo = Solo(validator_index=bystander(1))
    block = _variant(first_block(solo.core.app_state_root), **breakage)
    proposal = signed_proposal(key_of(set_at(1).proposer(0)), 1, 0, id_of(block))
    actions = solo.send("p", block) + solo.send("p", proposal)
    assert [(v.vote_type, v.value_id) for v in votes_in(actions)] == [(VoteType.PREVOTE, None)]
    assert solo.core.stats.misbehaviours == 0  # a bad proposal is voted down, not banned


# -- committing ----------------------------------------------------------------------------------


def commit_first_block(solo: Solo, block: Block | None = None) -> tuple[Block, list[Action]]:
    """Block 1 (default: with one transaction), decided by the three other validators'
    precommits."""
    block = block or first_block(solo.core.app_state_root, txs=(kv_tx(0, 0),))
    proposer = key_of(set_at(1).proposer(0))
    actions = solo.send("p", block) + solo.send("p", signed_proposal(proposer, 1, 0, id_of(block)))
    for key in [k for k in KEYS if k != solo.key][:3]:
        actions += solo.send("p", signed_vote(key, 1, 0, VoteType.PRECOMMIT, id_of(block)))
    return block, actions


def test_a_decided_block_is_executed_persisted_and_announced() -> None:
    solo = Solo(validator_index=bystander(1, 2))
    block, actions = commit_first_block(solo)

    committed = of_type(actions, BlockCommitted)
    assert [(c.height, c.block_id, c.num_txs) for c in committed] == [(1, id_of(block), 1)]
    assert committed[0].receipts[0].ok and committed[0].app_state_root == solo.core.app_state_root
    meta = read_meta(solo.storage)
    assert meta is not None and meta.height == 1 and meta.app_state_root == solo.core.app_state_root
    stored = solo.core.committed_block(1)
    assert stored is not None and stored.block == block and stored.commit.value_id == id_of(block)
    pause = [a for a in of_type(actions, SetTimer) if a.key.kind is TimerKind.COMMIT_WAIT]
    assert [(p.key.height, p.delay_ms) for p in pause] == [(2, solo.config.commit_wait_ms)]
    proof = solo.core.query_state(b"kv/e/" + CLIENTS[0].public_key + b"k")
    assert proof.value is not None and verify_state_proof(proof, solo.core.app_state_root)
    with pytest.raises(QueryError):
        solo.core.query_state(b"k", height=99)


def count_block_encodings(monkeypatch: pytest.MonkeyPatch) -> list[Block]:
    """Every block ``BLOCK_CODEC`` encodes from now on, in order."""
    encoded: list[Block] = []
    original = StructCodec.encode

    def counting(codec: StructCodec[Any], value: Any) -> bytes:
        if codec is BLOCK_CODEC:
            encoded.append(value)
        return original(codec, value)

    monkeypatch.setattr(StructCodec, "encode", counting)
    return encoded


def test_a_received_block_is_judged_executed_and_stored_without_being_encoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    solo = Solo(validator_index=bystander(1, 2))
    block = first_block(solo.core.app_state_root, txs=(kv_tx(0, 0),))
    encodings = count_block_encodings(monkeypatch)
    _, actions = commit_first_block(solo, block)
    assert [c.height for c in of_type(actions, BlockCommitted)] == [1]
    assert encodings == []
    [stored] = solo.core.blocks_for_sync(1, 1, 1 << 20)
    committed = COMMITTED_BLOCK_CODEC.decode(stored)  # canonical, or it would not decode
    assert committed.block == block and committed.commit.value_id == id_of(block)


def test_the_proposer_encodes_its_block_once_from_building_to_storing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    solo = proposer_of_round_one()
    assert submit(solo, kv_tx(0, 0)).accepted
    encodings = count_block_encodings(monkeypatch)
    block = next(m for m in move_to_round_one(solo) if isinstance(m, Block))
    others = [k for k in KEYS if k != solo.key]
    actions = [
        a
        for key in others
        for a in solo.send("p", signed_vote(key, 1, 1, VoteType.PRECOMMIT, id_of(block)))
    ]
    assert [c.height for c in of_type(actions, BlockCommitted)] == [1]
    assert encodings == [block]


def test_next_height_messages_wait_for_the_pause_after_a_commit() -> None:
    solo = Solo(validator_index=bystander(1, 2))
    commit_first_block(solo)
    stored = solo.core.committed_block(1)
    assert stored is not None
    block2 = build_block(
        chain_id=CHAIN,
        height=2,
        time_ms=stored.block.header.time_ms + 1_000,
        previous_block_id=id_of(stored.block),
        txs=(),
        app_state_root=solo.core.app_state_root,
        validator_set_hash=set_at(2).hash(),
        proposer=set_at(2).proposer(0),
        last_commit=certificate(1, 0, id_of(stored.block)),
    )
    early = solo.send("p", block2) + solo.send(
        "p", signed_proposal(key_of(set_at(2).proposer(0)), 2, 0, id_of(block2))
    )
    assert votes_in(early) == []
    status = solo.core.status()
    assert (status.future_messages, status.cached_blocks, status.consensus_height) == (1, 1, 1)

    solo.now_ms += solo.config.commit_wait_ms
    started = solo.fire(TimerKey(TimerKind.COMMIT_WAIT, 2))
    assert [(v.height, v.value_id) for v in votes_in(started)] == [(2, id_of(block2))]


def test_an_observer_commits_without_ever_signing() -> None:
    solo = Solo(observer=True)
    _, actions = commit_first_block(solo)
    assert votes_in(actions) == []
    assert [c.height for c in of_type(actions, BlockCommitted)] == [1]
    assert not solo.core.status().is_validator


# -- block sync ----------------------------------------------------------------------------------


def test_a_peer_ahead_is_asked_for_blocks_and_another_try_follows_a_timeout() -> None:
    solo = Solo(validator_index=1)
    actions = solo.core.handle(PeerStatus("ahead", 5, bytes(32), solo.now_ms))
    requests = of_type(actions, RequestBlocks)
    assert requests == [RequestBlocks("ahead", 1, 5)]
    timer = next(a for a in of_type(actions, SetTimer) if a.key.kind is TimerKind.SYNC_REQUEST)
    assert timer.delay_ms == solo.config.sync_request_timeout_ms
    assert (
        of_type(solo.core.handle(PeerStatus("ahead", 5, bytes(32), solo.now_ms)), RequestBlocks)
        == []
    )

    retried = solo.fire(timer.key)
    assert of_type(retried, RequestBlocks) == [RequestBlocks("ahead", 1, 5)]
    assert solo.core.stats.sync_timeouts == 1


def test_synced_blocks_are_verified_and_applied_in_order() -> None:
    cluster = Cluster(validators=4, seed=21, txs_per_second=30)
    cluster.run_until(height=6)
    solo = Solo(validator_index=2, genesis=cluster.genesis)
    served = cluster.core("v0").blocks_for_sync(1, 10, 1 << 30)
    assert len(served) >= 6

    actions = solo.core.handle(BlocksReceived("v0", served, solo.now_ms))
    heights = [c.height for c in of_type(actions, BlockCommitted)]
    assert heights == list(range(1, len(served) + 1))
    assert solo.core.last_block_id == cluster.block_ids("v0")[len(served) - 1]
    assert solo.core.stats.blocks_synced == len(served)


def test_blocks_for_sync_respects_its_limits() -> None:
    cluster = Cluster(validators=4, seed=22, txs_per_second=30)
    cluster.run_until(height=6)
    core = cluster.core("v1")
    three = core.blocks_for_sync(2, 3, 1 << 30)
    assert len(three) == 3
    assert core.blocks_for_sync(2, 3, len(three[0])) == three[:1]
    assert core.blocks_for_sync(2, 3, len(three[0]) - 1) == ()
    assert core.blocks_for_sync(core.height + 1, 3, 1 << 30) == ()
    assert core.blocks_for_sync(0, 3, 1 << 30) == ()
    assert core.blocks_for_sync("1", 3, 1 << 30) == ()  # type: ignore[arg-type]


# -- lifecycle -------------------------------------------------------------------------------------


def test_start_is_idempotent_and_stale_timers_are_ignored() -> None:
    solo = Solo()
    assert solo.core.handle(Start(solo.now_ms)) == []
    assert solo.fire(TimerKey(TimerKind.PROPOSE, height=7, round=0)) == []
    assert solo.fire(TimerKey(TimerKind.COMMIT_WAIT, height=9)) == []
    status = solo.core.status()
    assert (status.height, status.consensus_height, status.round) == (0, 1, 0)


# -- evidence, halting ---------------------------------------------------------------------------


def test_an_equivocating_validator_is_reported_with_evidence() -> None:
    solo = Solo(validator_index=bystander(1))
    cheat = next(k for k in KEYS if k != solo.key)
    solo.send("p", signed_vote(cheat, 1, 0, VoteType.PREVOTE, None))
    actions = solo.send("p", signed_vote(cheat, 1, 0, VoteType.PREVOTE, b"\x02" * 32))
    reports = of_type(actions, EquivocationDetected)
    assert len(reports) == 1 and reports[0].evidence.validator == cheat.public_key


def test_an_observer_fetches_blocks_as_soon_as_a_peer_is_one_height_ahead() -> None:
    solo = Solo(observer=True)
    actions = solo.core.handle(PeerStatus("upstream", 1, bytes(32), solo.now_ms))
    assert of_type(actions, RequestBlocks) == [RequestBlocks("upstream", 1, 1)]


def test_a_certified_block_that_breaks_the_rules_halts_the_node() -> None:
    solo = Solo(validator_index=1)
    bad = first_block(bytes(32))  # a wrong app_state_root, yet +2/3 signed it
    served = (COMMITTED_BLOCK_CODEC.encode(CommittedBlock(bad, certificate(1, 0, id_of(bad)))),)
    with pytest.raises(ChainHaltError, match="invalid"):
        solo.core.handle(BlocksReceived("p", served, solo.now_ms))


def test_a_full_disk_halts_the_node_at_its_next_commit() -> None:
    solo = Solo(validator_index=bystander(1))
    solo.storage.capacity_bytes = solo.storage.used_bytes
    with pytest.raises(ChainHaltError, match="cannot persist height 1"):
        commit_first_block(solo)
    assert read_meta(solo.storage).height == 0  # type: ignore[union-attr]

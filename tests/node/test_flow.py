"""Mempool and application together, the way a node core composes them."""

from __future__ import annotations

import pytest

from node.app.kv import set_payload
from node.codec import MAX_BLOCK_BYTES, MAX_TXS_PER_BLOCK
from node.errors import RejectReason, TxRejected
from node.mempool import Mempool, verify_transaction
from node.testing import TxFactory, key_pair
from tests.node.helpers import CHAIN, Chain, make_app, registered

ALICE, BOB = key_pair("alice"), key_pair("bob")


def admit(pool: Mempool, chain: Chain, raw: bytes) -> bool:
    try:
        verified = verify_transaction(raw, CHAIN)
    except TxRejected:
        return False
    if not chain.app.check_tx(verified.tx).ok:
        return False
    pool.add(verified, chain.app.next_nonce)
    return True


def test_transactions_flow_from_mempool_to_block_and_out_again() -> None:
    chain = Chain(make_app())
    txs = TxFactory(CHAIN)
    registered(chain, txs, "alice", "bob")
    pool = Mempool(CHAIN)
    alice = [txs.encoded(ALICE, "kv.set", set_payload(bytes([i]), b"v")) for i in range(3)]
    bob = [txs.encoded(BOB, "kv.set", set_payload(b"k", b"v"), priority=5)]
    stranger = TxFactory(CHAIN).encoded(key_pair("stranger"), "kv.set", set_payload(b"k", b"v"))
    assert [admit(pool, chain, raw) for raw in [*alice, *bob, stranger]] == [True] * 4 + [False]

    proposal = [v.raw for v in pool.reap(MAX_BLOCK_BYTES // 2, MAX_TXS_PER_BLOCK)]
    assert proposal[0] == bob[0]  # highest priority first, then Alice in nonce order
    block = chain.next_block(proposal[:3])  # the proposer left Alice's last tx out
    result = chain.app.finalize_block(block, preverified_tx_hashes=pool)
    chain.previous = block.header
    assert all(r.ok for r in result.receipts)

    outcome = pool.update(block.txs, chain.app.next_nonce, lambda v: chain.app.check_tx(v.tx).ok)
    assert len(outcome.committed) == 3 and outcome.dropped == ()
    assert [v.raw for v in pool.reap(MAX_BLOCK_BYTES, 10)] == [alice[2]]
    with pytest.raises(TxRejected) as replayed:
        pool.admit(alice[0], chain.app.next_nonce)
    assert replayed.value.reason is RejectReason.NONCE_USED

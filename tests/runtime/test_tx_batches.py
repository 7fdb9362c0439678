"""Peers' transaction batches are verified in worker threads (``TxBatchVerifier``): the core
gets ``VerifiedTxsReceived``, a batch that does not decode reaches it as it came, and the
queue is bounded."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import trio

from node.app.kv import set_payload
from node.chain.events import Event, MessageReceived, VerifiedTxsReceived
from node.chain.messages import TOPIC_TXS
from node.codec import encode_message, tx_hash
from node.errors import TxRejected
from node.mempool import VerifiedTx, verify_transactions
from node.ports import InboundMessage
from node.runtime import tx_batches
from node.runtime.tx_batches import TxBatchVerifier
from node.testing import TxFactory, key_pair
from node.types import TxBatch
from tests.runtime.fakes import VirtualClock

CHAIN = "batch-chain"


def verifier(
    max_queued: int = 4, known: Callable[[bytes], bool] = lambda tx_hash: False
) -> TxBatchVerifier:
    return TxBatchVerifier(
        chain_id=CHAIN,
        max_block_bytes=1 << 20,
        clock=VirtualClock(),
        limiter=trio.CapacityLimiter(1),
        max_queued=max_queued,
        known=known,
    )


async def test_a_batch_is_verified_off_the_core_and_garbage_goes_as_it_came() -> None:
    txs = TxFactory(CHAIN)
    good = [txs.encoded(key_pair("a"), "kv.set", set_payload(b"k", b"v"), nonce=n) for n in (0, 1)]
    forged = txs.encoded(key_pair("b"), "kv.set", set_payload(b"k", b"v"))[:-1] + b"\x00"
    batches = verifier()
    batches.offload(InboundMessage("p1", TOPIC_TXS, encode_message(TxBatch((*good, forged)))))
    batches.offload(InboundMessage("p2", TOPIC_TXS, b"\xc1garbage"))
    delivered: list[Event] = []
    done = trio.CancelScope()

    async def deliver(event: Event) -> None:
        delivered.append(event)
        if len(delivered) == 2:
            done.cancel()

    with done:
        await batches.run(deliver)
    first, second = delivered
    assert isinstance(first, VerifiedTxsReceived) and first.sender == "p1"
    assert [v.raw for v in first.verified] == good and len(first.rejected) == 1
    assert isinstance(second, MessageReceived) and second.data == b"\xc1garbage"


async def test_transactions_the_node_knows_are_not_verified_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    txs = TxFactory(CHAIN)
    raws = [txs.encoded(key_pair("a"), "kv.set", set_payload(b"k", b"v"), nonce=n) for n in (0, 1)]
    committed = {tx_hash(raws[0])}
    verified: list[bytes] = []
    real = verify_transactions

    def counting(
        batch: Sequence[bytes], chain_id: str, hashes: Sequence[bytes] | None = None
    ) -> list[VerifiedTx | TxRejected]:
        verified.extend(batch)
        assert hashes == [tx_hash(raw) for raw in batch]  # hashed once, by the verifier
        return real(batch, chain_id, hashes)

    monkeypatch.setattr(tx_batches, "verify_transactions", counting)
    batches = verifier(known=committed.__contains__)
    batches.offload(InboundMessage("p1", TOPIC_TXS, encode_message(TxBatch(tuple(raws)))))
    delivered: list[Event] = []
    with trio.CancelScope() as done:

        async def deliver(event: Event) -> None:
            delivered.append(event)
            done.cancel()

        await batches.run(deliver)
    (event,) = delivered
    assert isinstance(event, VerifiedTxsReceived)
    assert [v.raw for v in event.verified] == raws[1:] and verified == raws[1:]
    assert batches.skipped_known == 1


def test_past_its_bound_a_batch_is_dropped_and_counted() -> None:
    batches = verifier(max_queued=2)
    for _ in range(5):
        batches.offload(InboundMessage("p", TOPIC_TXS, b"x"))
    assert batches.dropped == 3

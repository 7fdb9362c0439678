"""Peers' transaction batches, verified in worker threads before the core sees them.

The network pump hands every ``TxBatch`` message here (``offload``) instead of to the core's
inbox. ``run`` decodes each one and verifies its transactions in a worker thread (PyNaCl
releases the GIL), then gives the core a ``VerifiedTxsReceived``, so Ed25519 never holds up
peers' votes on the core's task. The queue is bounded: past it a batch is dropped and
counted (gossip may lose messages; the transactions still reach a node in the blocks that
carry them). A batch that does not decode goes to the core as it came, which reports its
sender.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from node.chain.events import Event, MessageReceived, VerifiedTxsReceived
from node.chain.messages import TOPIC_TXS, PeerFault, decode_inbound
from node.codec import tx_hash
from node.mempool import verify_transactions
from node.ports import Clock, InboundMessage
from node.types import TxBatch

__all__ = ["TxBatchVerifier"]


class TxBatchVerifier:
    """A bounded queue of peers' batches and the task that verifies them (see above)."""

    def __init__(
        self,
        *,
        chain_id: str,
        max_block_bytes: int,
        clock: Clock,
        limiter: trio.CapacityLimiter,
        max_queued: int,
        known: Callable[[bytes], bool] = lambda tx_hash: False,
    ) -> None:
        """``known(tx_hash)``: True for a transaction this node holds or committed lately,
        asked on the task that runs the core (never from a worker thread)."""
        self._known = known
        self._chain_id = chain_id
        self._max_block_bytes = max_block_bytes
        self._clock = clock
        self._limiter = limiter
        self._send, self._receive = trio.open_memory_channel[InboundMessage](max_queued)
        self.dropped = 0
        """Batches dropped because the queue was full."""
        self.skipped_known = 0
        """Transactions of peers' batches not verified: this node knew them already."""

    def offload(self, message: InboundMessage) -> None:
        """Queue a peer's batch (never waits: drops and counts past the bound)."""
        try:
            self._send.send_nowait(message)
        except trio.WouldBlock:
            self.dropped += 1

    async def run(self, deliver: Callable[[Event], Awaitable[None]]) -> None:
        """Verify queued batches one at a time and ``deliver`` each outcome to the core."""
        async for message in self._receive:
            await deliver(await self._event_of(message))

    async def _event_of(self, message: InboundMessage) -> Event:
        now_ms = self._clock.now_ms()
        try:
            batch = decode_inbound(TOPIC_TXS, message.data, self._max_block_bytes)
        except PeerFault:
            batch = None
        if not isinstance(batch, TxBatch):
            return MessageReceived(message.sender, TOPIC_TXS, message.data, now_ms)
        # A batch that arrives after its transactions came in a block (asked of the
        # proposer) or were committed is not verified again: the core would drop them.
        hashes = [tx_hash(raw) for raw in batch.txs]
        fresh = [i for i, hash_ in enumerate(hashes) if not self._known(hash_)]
        self.skipped_known += len(hashes) - len(fresh)
        results = await trio.to_thread.run_sync(
            verify_transactions,
            [batch.txs[i] for i in fresh],
            self._chain_id,
            [hashes[i] for i in fresh],  # computed once, here
            limiter=self._limiter,
        )
        return VerifiedTxsReceived.from_results(message.sender, results, now_ms)

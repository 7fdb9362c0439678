"""Batching of locally submitted transactions into ``TxBatch`` gossip messages.

Transactions a client submitted to this node are queued and flushed every
``tx_gossip_interval_ms`` as few large messages (py-libp2p sustains tens of messages per
second, not thousands: docs/NETWORKING.md). Transactions learnt from peers are not re-sent: the
gossip layer relays them. The queue holds at most ``max_queue_txs``; past it the oldest are
not gossiped (they stay in the mempool and reach a block through this node's proposals).
"""

from __future__ import annotations

from collections import deque

from node.codec import block_tx_bytes, encode_message
from node.types import TxBatch

BATCH_FRAME_BYTES = 16
"""Envelope, tag and array headers around the transactions of a batch, at most."""


class TxGossip:
    """A bounded queue of encoded transactions, drained as ``TxBatch`` messages."""

    __slots__ = ("_max_batch_bytes", "_max_batch_txs", "_max_queue_txs", "_queue", "dropped")

    def __init__(self, *, max_queue_txs: int, max_batch_txs: int, max_batch_bytes: int) -> None:
        self._max_queue_txs = max_queue_txs
        self._max_batch_txs = max_batch_txs
        self._max_batch_bytes = max_batch_bytes
        self._queue: deque[bytes] = deque()
        self.dropped = 0
        """Transactions not gossiped because the queue was full."""

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, raw: bytes) -> bool:
        """Queue one transaction; True if the queue was empty (arm the flush timer)."""
        was_empty = not self._queue
        if len(self._queue) >= self._max_queue_txs:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(raw)
        return was_empty

    def drain(self) -> list[bytes]:
        """Every queued transaction as encoded ``TxBatch`` messages, in submission order."""
        messages: list[bytes] = []
        batch: list[bytes] = []
        used_bytes = BATCH_FRAME_BYTES
        while self._queue:
            raw = self._queue[0]
            cost = block_tx_bytes(len(raw))
            full = len(batch) >= self._max_batch_txs or used_bytes + cost > self._max_batch_bytes
            if full and batch:
                messages.append(encode_message(TxBatch(tuple(batch))))
                batch, used_bytes = [], BATCH_FRAME_BYTES
            batch.append(self._queue.popleft())
            used_bytes += cost
        if batch:
            messages.append(encode_message(TxBatch(tuple(batch))))
        return messages

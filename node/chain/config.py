"""``NodeConfig``: every local limit and interval of the chain core, with its unit.

These are one node's choices (how much it buffers, how often it gossips); they never change
what the chain decides, so nodes of one chain may differ. Chain-wide rules (block size,
timeouts) live in the genesis (``node.chain.genesis.ConsensusParams``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from node.chain.errors import InvalidConfigError
from node.codec import KIB, MAX_TX_BATCH_BYTES, MAX_TXS_PER_BATCH, MIB
from node.mempool import MempoolLimits

MAX_INTERVAL_MS = 3_600_000
"""Longest interval or timeout a config accepts, in milliseconds (one hour)."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Local limits of one node. Every count and size must be positive; intervals are in
    1..MAX_INTERVAL_MS (``commit_wait_ms`` may be 0); anything else raises
    ``InvalidConfigError``."""

    commit_wait_ms: int = 1_000
    """Pause after committing a block before starting the next height (CometBFT's
    ``timeout_commit``): late precommits still arrive and the mempool fills the next block."""
    tx_gossip_interval_ms: int = 500
    """How often locally submitted transactions are flushed to peers as one ``TxBatch``.
    Fewer, larger batches cost py-libp2p far less than many small ones: 8 nodes under load
    committed ~1 s blocks at 500 ms against ~8 s at 100 ms. Lower it for small, quiet
    networks that want the lowest latency."""
    max_tx_batch_txs: int = 256
    """Most transactions in one gossiped ``TxBatch``."""
    max_tx_batch_bytes: int = 256 * KIB
    """Most encoded transaction bytes in one gossiped ``TxBatch``."""
    max_gossip_queue_txs: int = 8_192
    """Admitted transactions waiting to be gossiped; beyond it the oldest are not gossiped
    (they are still in the mempool and reach a block through this node's proposals)."""
    max_future_messages: int = 4_096
    """Consensus messages of the next height held until this node starts it, in total."""
    max_future_messages_per_peer: int = 64
    """The same, per sending peer."""
    max_cached_blocks: int = 64
    """Proposed blocks kept (current and next height), in blocks."""
    max_cached_blocks_per_peer: int = 8
    """Proposed blocks kept per sending peer."""
    max_cached_block_bytes: int = 64 * MIB
    """Proposed blocks kept, in encoded bytes."""
    max_pending_compact_blocks: int = 8
    """Compact blocks waiting for the transactions this node lacks (the oldest goes)."""
    max_verdicts_per_height: int = 1_024
    """Blocks validated per height; further proposals of the height are not validated (this
    node then prevotes nil on them), so a verdict, once given, never changes."""
    max_tracked_peers: int = 1_024
    """Peers whose height this node remembers."""
    sync_tick_ms: int = 1_000
    """How often the node checks whether it fell behind, and the period of catch-up within a
    height: a round that did not move for a whole tick re-sends and relays what lets peers
    catch up (``node.chain.catch_up``)."""
    max_catch_up_messages_per_tick: int = 256
    """Consensus messages re-sent or relayed per sync tick (stalled re-broadcasts and answers
    to lagging peers together)."""
    max_catch_up_bytes_per_tick: int = 4 * MIB
    """The same, in encoded bytes; a block larger than what is left waits for the next tick
    (keep it above ``max_block_bytes`` so that blocks can be relayed at all)."""
    max_catch_up_messages_per_peer: int = 64
    """Of those, messages sent directly to one lagging peer per sync tick (a peer in a lower
    round needs this node's own votes and a quorum or two, not the whole budget)."""
    sync_request_timeout_ms: int = 5_000
    """How long a block request may stay unanswered before another peer is asked."""
    max_pending_sync_requests: int = 4
    """Block requests in flight at once (each to a different peer)."""
    max_blocks_per_request: int = 32
    """Blocks asked for in one ``RequestBlocks``."""
    max_sync_blocks_buffered: int = 128
    """Received committed blocks of heights above the next one, kept until applied."""
    max_sync_buffer_bytes: int = 128 * MIB
    """The same, in encoded bytes."""
    max_sync_response_blocks: int = 64
    """Most blocks ``NodeCore.blocks_for_sync`` returns for one request."""
    max_sync_response_bytes: int = 8 * MIB
    """Most bytes ``NodeCore.blocks_for_sync`` returns for one request."""
    status_interval_ms: int = 10_000
    """How often this node broadcasts its ``Status`` (height and last block id)."""
    max_wal_bytes_per_height: int = 256 * MIB
    """Consensus log bytes kept per height. Past it the node stops signing for the rest of
    the height (it only signs what its durable log explains) but keeps following."""
    mempool: MempoolLimits = field(default_factory=MempoolLimits)
    """Bounds of the mempool."""

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "mempool":
                if not isinstance(value, MempoolLimits):
                    raise InvalidConfigError("NodeConfig.mempool must be a MempoolLimits")
                continue
            lowest = 0 if item.name == "commit_wait_ms" else 1
            highest = MAX_INTERVAL_MS if item.name.endswith("_ms") else None
            if type(value) is not int or value < lowest or (highest and value > highest):
                raise InvalidConfigError(f"NodeConfig.{item.name} = {value!r} is out of range")
        if self.max_tx_batch_txs > MAX_TXS_PER_BATCH:
            raise InvalidConfigError(f"max_tx_batch_txs exceeds {MAX_TXS_PER_BATCH}")
        if self.max_tx_batch_bytes > MAX_TX_BATCH_BYTES - KIB:
            raise InvalidConfigError(f"max_tx_batch_bytes exceeds {MAX_TX_BATCH_BYTES - KIB}")

"""``NodeStatus``: a snapshot of a node for its API, dashboard and operators."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What ``NodeCore.status()`` reports."""

    chain_id: str
    genesis_hash: bytes
    height: int
    """The last committed height (0 before the first block)."""
    last_block_id: bytes
    """Id of the last committed block (zero bytes at genesis)."""
    last_block_time_ms: int
    """Its agreed time (the genesis time at genesis)."""
    app_state_root: bytes
    """The state root after the last committed block."""
    consensus_height: int
    """The height consensus is deciding (equal to ``height`` while pausing after a commit)."""
    round: int
    step: str
    """The round step: propose, prevote, precommit or commit."""
    is_validator: bool
    """True if this node signs at the consensus height."""
    peers_known: int
    best_peer_height: int
    """The highest committed height a peer reported."""
    catching_up: bool
    """True while a peer is known to be ahead of this node."""
    mempool_txs: int
    mempool_bytes: int
    future_messages: int
    """Verified consensus messages waiting for a height this node has not started."""
    cached_blocks: int
    """Proposed blocks held for the current and next height."""
    sync_buffered_blocks: int
    """Committed blocks received by sync and not applied yet."""
    pending_evidence: int = 0
    """Equivocation evidence waiting for a block to include it."""


@dataclass(slots=True)
class NodeStats:
    """Monotonic counters since the core was opened (for metrics; reading changes nothing)."""

    messages_received: int = 0
    misbehaviours: int = 0
    """Messages reported as ``PeerMisbehaved``."""
    stale_messages: int = 0
    """Consensus messages of heights already committed (normal: late votes)."""
    repeated_messages: int = 0
    """Votes and proposals received again, byte for byte, while held: dropped unverified
    (normal: gossip duplicates and peers catching up)."""
    catch_up_messages: int = 0
    """Consensus messages re-sent or relayed to let peers catch up within a height."""
    blocks_committed: int = 0
    blocks_synced: int = 0
    """Blocks applied from block sync."""
    txs_committed: int = 0
    txs_admitted: int = 0
    """Client submissions (``TxSubmitted``) accepted into the mempool."""
    txs_rejected: int = 0
    """Client submissions refused."""
    signatures_withheld: int = 0
    """Signatures not made because the consensus log could not be made durable."""
    sync_requests: int = 0
    sync_timeouts: int = 0
    evidence_committed: int = 0
    """Equivocation evidence objects in the committed blocks."""
    compact_blocks_incomplete: int = 0
    """Compact blocks this node could not rebuild from its mempool alone (it asked their
    sender for the transactions it lacked)."""

"""Status and block sync: learning peers' heights, fetching missed blocks, applying them.

``Syncing`` drives ``node.chain.sync.BlockSync`` (the bounded buffer of peers' heights,
requests and received blocks, which committing and starting heights read too). It
broadcasts this node's ``Status`` and answers a peer newly heard of with it; requests blocks
when a decided block is missing or a peer is ahead (``request``), each request with a
``SYNC_REQUEST`` timer; buffers the committed blocks peers send; and verifies a buffered
block of the next height with its certificate against this node's own validator schedule
before handing the certificate to consensus (``apply_synced``). A block that breaks the
rules under a valid certificate, or two certified blocks of one height, halt the node
(``ChainHaltError``).
"""

from __future__ import annotations

from consensus import (
    CommitCertificateReceived,
    ConsensusCore,
    InvalidMessageError,
    verify_commit_certificate,
)
from node.chain.actions import Offence
from node.chain.config import NodeConfig
from node.chain.errors import ChainHaltError
from node.chain.events import BlocksReceived, PeerDisconnected, PeerStatus, TimerKey, TimerKind
from node.chain.feed import ConsensusFeed
from node.chain.height import HeightState, Outbox
from node.chain.judge import BlockJudge
from node.chain.messages import TOPIC_STATUS
from node.chain.proposals import OWN, ProposedBlocks
from node.chain.schedule import ValidatorSchedule
from node.chain.status import NodeStats
from node.chain.sync import BlockSync, SyncedBlock
from node.codec import block_id, decode_committed_block, encode_message
from node.errors import DecodeError, InvalidBlockError
from node.ports import PeerId
from node.types import Status

__all__ = ["Syncing"]


class Syncing:
    """Status exchange and block sync (see the module docstring)."""

    __slots__ = (
        "_blocks",
        "_chain_id",
        "_config",
        "_consensus",
        "_feed",
        "_judge",
        "_outbox",
        "_schedule",
        "_state",
        "_stats",
        "_sync",
        "_tick_height",
    )

    def __init__(
        self,
        *,
        chain_id: str,
        config: NodeConfig,
        state: HeightState,
        sync: BlockSync,
        blocks: ProposedBlocks,
        schedule: ValidatorSchedule,
        feed: ConsensusFeed,
        judge: BlockJudge,
        consensus: ConsensusCore,
        outbox: Outbox,
        stats: NodeStats,
    ) -> None:
        self._chain_id = chain_id
        self._config = config
        self._state = state
        self._sync = sync
        self._blocks = blocks
        self._schedule = schedule
        self._feed = feed
        self._judge = judge
        self._consensus = consensus
        self._outbox = outbox
        self._stats = stats
        self._tick_height = -1

    def note_height(self, peer: PeerId, committed_height: int) -> bool:
        """``peer`` committed at least ``committed_height``; True if it was not known."""
        return self._sync.note_height(peer, committed_height)

    def on_status(self, peer: PeerId, height: int) -> None:
        """``peer`` says it committed ``height``: tell a new peer this node's, then sync."""
        if self._sync.note_height(peer, height):
            status = Status(self._state.height, self._state.last_block_id)
            self._outbox.send(peer, TOPIC_STATUS, encode_message(status))
        self.request(force=False)

    def on_peer_status(self, event: PeerStatus) -> None:
        """The shell learned a peer's height (a status answer)."""
        if type(event.height) is int and event.height >= 0:
            self.on_status(event.peer, event.height)

    def on_peer_disconnected(self, event: PeerDisconnected) -> None:
        """Forget a peer that is gone."""
        self._sync.forget(event.peer)

    def broadcast_status(self) -> None:
        """Broadcast this node's committed height and block id."""
        status = Status(self._state.height, self._state.last_block_id)
        self._outbox.broadcast(TOPIC_STATUS, encode_message(status))

    def request(self, *, force: bool) -> None:
        """Request blocks if a decided block is missing, or if a peer is ahead: by one height
        for an observer (it may hear no votes at all) or when ``force`` (no progress for a
        whole sync tick), by two heights otherwise (one height ahead is the normal state of
        a validator that committed a moment earlier)."""
        next_height = self._state.height + 1
        best = self._sync.best_height()
        eager = force or not self._consensus.is_validator
        if self._state.pending_decide is not None:
            requests = self._sync.plan(next_height, ask_unknown=True)
        elif best > next_height or (eager and best >= next_height):
            requests = self._sync.plan(next_height)
        else:
            return
        for request in requests:
            self._stats.sync_requests += 1
            self._outbox.add(request)
            key = TimerKey(TimerKind.SYNC_REQUEST, request.from_height, 0, request.peer)
            self._outbox.set_timer(key, self._config.sync_request_timeout_ms)

    def on_sync_timeout(self, peer: PeerId, from_height: int) -> None:
        """A request to ``peer`` was not answered in time."""
        if self._sync.pending_from(peer) != from_height:
            return  # answered meanwhile (a newer request to the peer has its own timer)
        self._sync.request_finished(peer)
        self._stats.sync_timeouts += 1
        self.request(force=True)

    def on_sync_tick(self) -> None:
        """If the committed height did not move for a whole tick while a peer is ahead,
        fetch blocks."""
        if self._state.height == self._tick_height:
            self.request(force=True)
        self._tick_height = self._state.height

    def on_blocks_received(self, event: BlocksReceived) -> None:
        """A peer's answer to a request: buffer the blocks (verified when applied)."""
        request = self._sync.request_finished(event.peer)
        limit = self._config.max_blocks_per_request if request is None else request.max_blocks
        blocks = event.blocks if type(event.blocks) is tuple else ()
        if len(blocks) > limit:
            self._outbox.misbehaved(
                event.peer, Offence.UNSOLICITED, f"{len(blocks)} blocks > {limit}"
            )
            blocks = blocks[:limit]
        for data in blocks:
            try:
                committed, block_bytes = decode_committed_block(data)
            except (DecodeError, TypeError) as exc:
                self._outbox.misbehaved(event.peer, Offence.MALFORMED, f"committed block: {exc}")
                return
            height = committed.block.header.height  # trusted once verified (apply_synced)
            synced = SyncedBlock(committed, len(data), event.peer, block_bytes)
            self._sync.add(height, synced, self._state.height + 1)
        if blocks:  # an empty answer waits for the next sync tick: no request storm
            self.request(force=False)

    def apply_synced(self, synced: SyncedBlock | None) -> None:
        """Verify a block received by sync against this node's schedule, then decide it."""
        assert synced is not None
        block, certificate = synced.committed.block, synced.committed.commit
        height = self._state.height + 1
        id_ = block_id(block.header)
        validator_set = self._schedule.set_at(height)
        assert validator_set is not None
        pending = self._state.pending_decide
        try:
            if certificate.height != height or certificate.value_id != id_:
                raise InvalidBlockError("the certificate does not certify the block")
            verify_commit_certificate(certificate, validator_set, self._chain_id)
        except (InvalidMessageError, InvalidBlockError) as exc:
            self._sync.forget(synced.peer)  # whatever height it claimed is not to be trusted
            self._outbox.misbehaved(synced.peer, Offence.INVALID_BLOCK, f"height {height}: {exc}")
            return
        if pending is not None and pending.value_id != id_:
            raise ChainHaltError(f"two blocks certified at height {height}: +1/3 equivocated")
        verdict = self._judge.validate(block, synced.block_bytes, now_ms=None)
        if not verdict.valid:
            # +2/3 signed it, yet it breaks the rules: the network or this node is broken.
            raise ChainHaltError(f"a certified block at height {height} is invalid")
        self._stats.blocks_synced += 1
        self._sync.note_height(synced.peer, height)
        self._blocks.add(id_, block, synced.block_bytes, OWN)
        if self._blocks.verdict(id_) is None and self._blocks.can_judge():
            self._blocks.record(id_, verdict)
        self._feed.feed_from(synced.peer, CommitCertificateReceived(certificate))

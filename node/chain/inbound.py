"""Inbound messages: peers' votes, proposals, blocks, transaction batches and status.

``Inbound.on_message`` decodes a message with ``node.chain.messages.decode_inbound`` (the
topic's size limit, the right kinds) and routes it:

- a vote or proposal already held byte for byte is not verified again (only noted for
  catch-up); otherwise it is verified against the validator set of its height (``verify_vote``
  injected, ``consensus.verify_proposal``) and goes to consensus if it is of the current
  height, or waits in ``FutureMessages`` for a later one (``release_future`` feeds those when
  the height starts); a message of a committed height is stale and dropped; one of a height
  whose set is not known yet only hints (if self-signed) that its sender is ahead;
- a proposed block waits in ``ProposedBlocks``; once a proposal of the current height names
  it, consensus hears this node's verdict (``node.chain.judge``); a compact block is rebuilt
  from the mempool first, and what it lacks is asked of its sender (``node.chain.compact``);
  any node holding a block answers such requests;
- transaction batches go to ``node.chain.admission``, status to ``node.chain.syncing``.

Anything a correct peer never sends becomes ``PeerMisbehaved`` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from consensus import (
    ConsensusCore,
    ConsensusError,
    InvalidMessageError,
    ProposalReceived,
    ValidatorSet,
    ValueValidity,
    VoteReceived,
    verify_proposal,
)
from consensus.limits import PROPOSAL_LOOKAHEAD_ROUNDS
from consensus.sign_bytes import proposal_sign_bytes_of, vote_sign_bytes_of
from crypto_core.signatures import verify
from node.chain.actions import Offence
from node.chain.admission import Admission
from node.chain.catch_up_sender import CatchUpSender
from node.chain.compact import PendingBlocks, block_txs_messages, rebuild, whole_block
from node.chain.events import MessageReceived
from node.chain.feed import ConsensusFeed, offence_of
from node.chain.future import FutureMessage, FutureMessages
from node.chain.height import HeightState, Outbox
from node.chain.judge import BlockJudge
from node.chain.messages import TOPIC_CONSENSUS, PeerFault, decode_inbound
from node.chain.proposals import ProposedBlocks
from node.chain.round_messages import RoundMessages
from node.chain.schedule import ValidatorSchedule
from node.chain.status import NodeStats
from node.chain.syncing import Syncing
from node.codec import Message, block_id, encode_message, message_body, tx_hash
from node.mempool import Mempool
from node.ports import PeerId
from node.types import (
    Block,
    BlockTxs,
    BlockTxsRequest,
    CompactBlock,
    Proposal,
    Status,
    TxBatch,
    Vote,
)

__all__ = ["Inbound", "VerifyVote"]

VerifyVote = Callable[[Vote, ValidatorSet, str], None]
"""``consensus.verify_vote``: chain, membership, signature (raises ``InvalidMessageError``)."""


class Inbound:
    """Peers' messages into the core (see the module docstring)."""

    __slots__ = (
        "_admission",
        "_blocks",
        "_catch_up",
        "_chain_id",
        "_consensus",
        "_feed",
        "_future",
        "_held",
        "_judge",
        "_max_block_bytes",
        "_max_block_txs_message_bytes",
        "_mempool",
        "_outbox",
        "_pending",
        "_schedule",
        "_state",
        "_stats",
        "_syncing",
        "_verify_vote",
    )

    def __init__(
        self,
        *,
        chain_id: str,
        max_block_bytes: int,
        state: HeightState,
        consensus: ConsensusCore,
        schedule: ValidatorSchedule,
        feed: ConsensusFeed,
        judge: BlockJudge,
        catch_up: CatchUpSender,
        syncing: Syncing,
        admission: Admission,
        blocks: ProposedBlocks,
        future: FutureMessages,
        held: RoundMessages,
        outbox: Outbox,
        stats: NodeStats,
        verify_vote: VerifyVote,
        mempool: Mempool,
        pending: PendingBlocks,
        max_block_txs_message_bytes: int,
    ) -> None:
        self._chain_id = chain_id
        self._max_block_bytes = max_block_bytes
        self._mempool = mempool
        self._pending = pending
        self._max_block_txs_message_bytes = max_block_txs_message_bytes
        self._state = state
        self._consensus = consensus
        self._schedule = schedule
        self._feed = feed
        self._judge = judge
        self._catch_up = catch_up
        self._syncing = syncing
        self._admission = admission
        self._blocks = blocks
        self._future = future
        self._held = held
        self._outbox = outbox
        self._stats = stats
        self._verify_vote = verify_vote

    def on_message(self, event: MessageReceived) -> None:
        """A peer's message on a gossip topic (or sent directly)."""
        self._stats.messages_received += 1
        if not self._state.started:
            return
        try:
            message = decode_inbound(event.topic, event.data, self._max_block_bytes)
            self._dispatch(event.sender, message, event.data)
        except PeerFault as fault:
            self._outbox.misbehaved(event.sender, fault.offence, fault.reason)

    def release_future(self, height: int) -> None:
        """Feed consensus the messages that waited for ``height`` (just started)."""
        for item in self._future.take(height):
            message = item.message
            if isinstance(message, Vote):
                accepted = self._feed.feed_from(item.sender, VoteReceived(message))
            else:
                accepted = self._feed_proposal(item.sender, message)
            if accepted:
                self._catch_up.hold(message, encode_message(message))

    def _dispatch(self, sender: PeerId, message: Message, data: bytes) -> None:
        if isinstance(message, Vote | Proposal) and self._held.is_held(message, data):
            self._stats.repeated_messages += 1  # verified before: not checked again
            self._catch_up.heard(sender, message.round)
        elif isinstance(message, Vote):
            self._on_vote(sender, message, data)
        elif isinstance(message, Proposal):
            self._on_proposal(sender, message, data)
        elif isinstance(message, Block):
            self._on_block(sender, message, message_body(data))
        elif isinstance(message, CompactBlock):
            self._on_compact_block(sender, message)
        elif isinstance(message, BlockTxsRequest):
            self._on_block_txs_request(sender, message)
        elif isinstance(message, BlockTxs):
            self._on_block_txs(message)
        elif isinstance(message, TxBatch):
            self._admission.on_tx_batch(sender, message)
            if self._pending:
                self.on_txs_admitted(tx_hash(raw) for raw in message.txs)
        elif isinstance(message, Status):
            self._syncing.on_status(sender, message.height)

    def _on_vote(self, sender: PeerId, vote: Vote, data: bytes) -> None:
        if vote.chain_id != self._chain_id:
            raise PeerFault(Offence.WRONG_CHAIN, f"vote for chain {vote.chain_id!r}")
        validator_set = self._routable_set(sender, vote)
        if validator_set is None:
            return
        try:
            self._verify_vote(vote, validator_set, self._chain_id)
        except InvalidMessageError as exc:
            raise PeerFault(offence_of(exc), str(exc)) from exc
        self._syncing.note_height(sender, vote.height - 1)
        if self._state.active and vote.height == self._state.height + 1:
            if self._feed.feed_from(sender, VoteReceived(vote)):
                self._held.add_vote(vote, data)
                self._catch_up.heard(sender, vote.round)
        else:
            self._future.add(FutureMessage(vote.height, sender, vote))

    def _on_proposal(self, sender: PeerId, proposal: Proposal, data: bytes) -> None:
        if proposal.chain_id != self._chain_id:
            raise PeerFault(Offence.WRONG_CHAIN, f"proposal for chain {proposal.chain_id!r}")
        validator_set = self._routable_set(sender, proposal)
        if validator_set is None:
            return
        current = self._state.active and proposal.height == self._state.height + 1
        state = self._consensus.round_state
        base_round = state.round if current and state is not None else 0
        if proposal.round > base_round + PROPOSAL_LOOKAHEAD_ROUNDS:
            return  # consensus would drop it too; its proposer costs O(validators x round)
        try:
            verify_proposal(proposal, validator_set, self._chain_id, check_proposer=True)
        except InvalidMessageError as exc:
            raise PeerFault(offence_of(exc), str(exc)) from exc
        self._syncing.note_height(sender, proposal.height - 1)
        if current:
            if self._feed_proposal(sender, proposal):
                self._held.add_proposal(proposal, data)
                self._catch_up.heard(sender, proposal.round)
        else:
            self._future.add(FutureMessage(proposal.height, sender, proposal))

    def _routable_set(self, sender: PeerId, message: Vote | Proposal) -> ValidatorSet | None:
        """The validator set to verify ``message`` with, or None if it is for a committed
        height (stale) or for a height whose set is not known yet. A message from that far
        ahead is a hint that its sender is ahead — taken only if the message is at least
        signed by the key it names (the set of its height cannot be checked)."""
        height = message.height
        if height <= self._state.height:
            self._stats.stale_messages += 1
            return None
        validator_set = self._schedule.set_at(height)
        if validator_set is None:
            if not _self_signed(message):
                raise PeerFault(Offence.INVALID_SIGNATURE, f"bad signature at height {height}")
            self._syncing.note_height(sender, height - 1)
            self._syncing.request(force=False)
        return validator_set

    def _on_block(self, sender: PeerId, block: Block, block_bytes: bytes) -> None:
        header = block.header
        if header.chain_id != self._chain_id:
            raise PeerFault(Offence.WRONG_CHAIN, f"block for chain {header.chain_id!r}")
        height = self._state.height
        if not height < header.height <= height + 2:
            return  # stale, or for a height whose proposal could not be verified yet
        id_ = block_id(header)
        self._blocks.add(id_, block, block_bytes, sender)
        awaited = self._blocks.is_awaited(id_)
        if self._state.active and header.height == height + 1 and awaited:
            verdict = self._judge.judge(id_)
            if verdict is not None:
                self._feed.feed(ValueValidity(header.height, id_, verdict))

    def _on_compact_block(self, sender: PeerId, compact: CompactBlock) -> None:
        """Rebuild a proposed block from the mempool, or ask ``sender`` for what is lacking."""
        header = compact.header
        if header.chain_id != self._chain_id:
            raise PeerFault(Offence.WRONG_CHAIN, f"block for chain {header.chain_id!r}")
        height = self._state.height
        if not height < header.height <= height + 2:
            return  # stale, or for a height whose proposal could not be verified yet
        pending = self._pending
        pending.drop_through(height)
        id_ = block_id(header)
        if self._blocks.get(id_) is not None:
            return  # held already (whole, rebuilt, or this node's own)
        if id_ not in pending:
            txs = rebuild(compact, self._lookup_tx)
            if all(raw is not None for raw in txs):
                block, data = whole_block(compact, [raw for raw in txs if raw is not None])
                self._on_block(sender, block, data)
                return
            pending.add(compact, sender, txs)
            self._stats.compact_blocks_incomplete += 1
        request = pending.request_to(id_, sender, self._state.now_ms)
        if request is not None:
            self._outbox.send(sender, TOPIC_CONSENSUS, encode_message(request))

    def _on_block_txs_request(self, sender: PeerId, request: BlockTxsRequest) -> None:
        block = self._blocks.get(request.block_id)
        if block is None:
            return  # not held (yet, or any more): the asker hears the block from others
        for data in block_txs_messages(block, request, self._max_block_txs_message_bytes):
            self._outbox.send(sender, TOPIC_CONSENSUS, data)

    def _on_block_txs(self, answer: BlockTxs) -> None:
        done = self._pending.fill(answer)
        if done is not None:
            compact, txs, first_sender = done
            block, data = whole_block(compact, txs)
            self._on_block(first_sender, block, data)

    def on_txs_admitted(self, tx_hashes: Iterable[bytes]) -> None:
        """Transactions that entered the mempool: complete the compact blocks waiting for
        them (gossip verified after the block arrived) without waiting for an answer."""
        for compact, txs, first_sender in self._pending.fill_from(tx_hashes, self._lookup_tx):
            block, data = whole_block(compact, txs)
            self._on_block(first_sender, block, data)

    def _lookup_tx(self, hash_: bytes) -> bytes | None:
        verified = self._mempool.get(hash_)
        return None if verified is None else verified.raw

    def _feed_proposal(self, sender: PeerId, proposal: Proposal) -> bool:
        verdict = self._judge.judge(proposal.value_id)
        return self._feed.feed_from(sender, ProposalReceived(proposal, verdict))


def _self_signed(message: Vote | Proposal) -> bool:
    """True if ``message`` carries a valid signature of the key it names."""
    try:
        if isinstance(message, Vote):
            return verify(message.validator, vote_sign_bytes_of(message), message.signature)
        return verify(message.proposer, proposal_sign_bytes_of(message), message.signature)
    except ConsensusError:
        return False  # a field out of range: nothing was signed

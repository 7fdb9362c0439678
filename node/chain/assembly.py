"""Assembling the chain core's parts: which part is given which buffer and which other part.

``NodeCore`` (``node.core``) builds its bounded buffers with ``new_buffers`` and its parts with
``assemble``, once, when it is opened. Everything here only constructs: no part is fed, no
storage is touched. The parts form no cycle: ``feed``, ``judge``, ``admission`` and
``catch_up`` depend on no other part; ``syncing`` on ``feed`` and ``judge``; ``inbound`` on
those five; ``committer`` on ``judge`` (and ``admission``'s recheck); ``progress`` and
``effects`` on the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus import ConsensusCore
from node.app.application import Application
from node.chain.admission import Admission, Verify
from node.chain.catch_up_sender import CatchUpSender
from node.chain.commit import Committer
from node.chain.compact import PendingBlocks
from node.chain.config import NodeConfig
from node.chain.effects import Effects
from node.chain.evidence import ChainEvidenceLookup, PendingEvidenceLog
from node.chain.feed import ConsensusFeed
from node.chain.future import FutureMessages
from node.chain.genesis import Genesis
from node.chain.gossip import TxGossip
from node.chain.height import HeightState, Outbox
from node.chain.inbound import Inbound, VerifyVote
from node.chain.judge import BlockJudge
from node.chain.progress import HeightProgress
from node.chain.proposals import ProposedBlocks
from node.chain.round_messages import RoundMessages
from node.chain.schedule import ValidatorSchedule
from node.chain.status import NodeStats
from node.chain.sync import BlockSync
from node.chain.syncing import Syncing
from node.chain.wal import ConsensusLog
from node.codec import ENVELOPE_OVERHEAD_BYTES, KIB
from node.mempool import Mempool
from node.ports import Signer, Storage

__all__ = ["Buffers", "Context", "Parts", "assemble", "new_buffers"]


@dataclass(frozen=True, slots=True)
class Buffers:
    """The bounded buffers of one node, shared by the parts that fill and drain them."""

    mempool: Mempool
    blocks: ProposedBlocks
    """Proposed (and synced) blocks of the current and next heights, with verdicts."""
    future: FutureMessages
    """Verified consensus messages of heights not started yet."""
    sync: BlockSync
    """Peers' heights, block requests and blocks received by sync."""
    gossip: TxGossip
    """Admitted client transactions waiting to be gossiped."""
    held: RoundMessages
    """The signed messages of the current height (catch-up, re-proposals)."""
    pending: PendingBlocks
    """Compact blocks waiting for transactions this node lacks."""


def new_buffers(chain_id: str, config: NodeConfig, signer: Signer | None) -> Buffers:
    """The empty, bounded buffers a node starts with (limits from ``config``)."""
    return Buffers(
        mempool=Mempool(chain_id, config.mempool),
        blocks=ProposedBlocks(
            max_blocks=config.max_cached_blocks,
            max_per_peer=config.max_cached_blocks_per_peer,
            max_bytes=config.max_cached_block_bytes,
            max_verdicts=config.max_verdicts_per_height,
        ),
        future=FutureMessages(config.max_future_messages, config.max_future_messages_per_peer),
        sync=BlockSync(
            max_peers=config.max_tracked_peers,
            max_pending_requests=config.max_pending_sync_requests,
            max_blocks_per_request=config.max_blocks_per_request,
            max_buffered_blocks=config.max_sync_blocks_buffered,
            max_buffer_bytes=config.max_sync_buffer_bytes,
        ),
        gossip=TxGossip(
            max_queue_txs=config.max_gossip_queue_txs,
            max_batch_txs=config.max_tx_batch_txs,
            max_batch_bytes=config.max_tx_batch_bytes,
        ),
        held=RoundMessages(None if signer is None else signer.public_key),
        pending=PendingBlocks(config.max_pending_compact_blocks),
    )


@dataclass(frozen=True, slots=True)
class Context:
    """What the parts are built from, besides the buffers: the restored chain, the ports,
    the shared ``HeightState``, ``Outbox`` and ``NodeStats``, and the signature checks."""

    storage: Storage
    signer: Signer | None
    genesis: Genesis
    config: NodeConfig
    app: Application
    schedule: ValidatorSchedule
    log: ConsensusLog
    consensus: ConsensusCore
    pending_evidence: PendingEvidenceLog
    state: HeightState
    outbox: Outbox
    stats: NodeStats
    verify_vote: VerifyVote
    verify_transaction: Verify


@dataclass(frozen=True, slots=True)
class Parts:
    """The parts of one ``NodeCore`` (see ``node.core``)."""

    feed: ConsensusFeed
    judge: BlockJudge
    admission: Admission
    catch_up: CatchUpSender
    syncing: Syncing
    inbound: Inbound
    committer: Committer
    progress: HeightProgress
    effects: Effects


def assemble(context: Context, buffers: Buffers) -> Parts:
    """The parts of a node, wired together (see the module docstring)."""
    base = _base_parts(context, buffers)
    inbound = _inbound(context, buffers, base)
    committer = _committer(context, buffers, base)
    progress = HeightProgress(
        state=context.state,
        schedule=context.schedule,
        log=context.log,
        blocks=buffers.blocks,
        sync=buffers.sync,
        feed=base.feed,
        committer=committer,
        syncing=base.syncing,
        catch_up=base.catch_up,
        inbound=inbound,
    )
    return Parts(
        feed=base.feed,
        judge=base.judge,
        admission=base.admission,
        catch_up=base.catch_up,
        syncing=base.syncing,
        inbound=inbound,
        committer=committer,
        progress=progress,
        effects=_effects(context, buffers, base, committer),
    )


@dataclass(frozen=True, slots=True)
class _Base:
    """The parts the others are built on."""

    feed: ConsensusFeed
    judge: BlockJudge
    admission: Admission
    catch_up: CatchUpSender
    syncing: Syncing


def _base_parts(context: Context, buffers: Buffers) -> _Base:
    feed = ConsensusFeed(context.consensus, context.log, context.outbox)
    judge = BlockJudge(
        state=context.state,
        genesis=context.genesis,
        app=context.app,
        schedule=context.schedule,
        lookup=ChainEvidenceLookup(context.schedule, context.app),
        blocks=buffers.blocks,
        mempool=buffers.mempool,
    )
    admission = Admission(
        chain_id=context.genesis.chain_id,
        config=context.config,
        state=context.state,
        app=context.app,
        mempool=buffers.mempool,
        gossip=buffers.gossip,
        outbox=context.outbox,
        stats=context.stats,
        verify=context.verify_transaction,
    )
    catch_up = CatchUpSender(
        config=context.config,
        state=context.state,
        consensus=context.consensus,
        held=buffers.held,
        blocks=buffers.blocks,
        outbox=context.outbox,
        stats=context.stats,
    )
    syncing = Syncing(
        chain_id=context.genesis.chain_id,
        config=context.config,
        state=context.state,
        sync=buffers.sync,
        blocks=buffers.blocks,
        schedule=context.schedule,
        feed=feed,
        judge=judge,
        consensus=context.consensus,
        outbox=context.outbox,
        stats=context.stats,
    )
    return _Base(feed, judge, admission, catch_up, syncing)


def _inbound(context: Context, buffers: Buffers, base: _Base) -> Inbound:
    return Inbound(
        chain_id=context.genesis.chain_id,
        max_block_bytes=context.genesis.params.max_block_bytes,
        state=context.state,
        consensus=context.consensus,
        schedule=context.schedule,
        feed=base.feed,
        judge=base.judge,
        catch_up=base.catch_up,
        syncing=base.syncing,
        admission=base.admission,
        blocks=buffers.blocks,
        future=buffers.future,
        held=buffers.held,
        outbox=context.outbox,
        stats=context.stats,
        verify_vote=context.verify_vote,
        mempool=buffers.mempool,
        pending=buffers.pending,
        max_block_txs_message_bytes=min(
            context.config.max_tx_batch_bytes + KIB,
            context.genesis.params.max_block_bytes + ENVELOPE_OVERHEAD_BYTES,
        ),
    )


def _committer(context: Context, buffers: Buffers, base: _Base) -> Committer:
    return Committer(
        config=context.config,
        max_evidence_age=context.genesis.params.evidence_max_age_heights,
        state=context.state,
        storage=context.storage,
        app=context.app,
        consensus=context.consensus,
        log=context.log,
        schedule=context.schedule,
        pending_evidence=context.pending_evidence,
        judge=base.judge,
        recheck=base.admission.recheck,
        mempool=buffers.mempool,
        blocks=buffers.blocks,
        held=buffers.held,
        sync=buffers.sync,
        outbox=context.outbox,
        stats=context.stats,
    )


def _effects(context: Context, buffers: Buffers, base: _Base, committer: Committer) -> Effects:
    return Effects(
        signer=context.signer,
        state=context.state,
        consensus=context.consensus,
        log=context.log,
        feed=base.feed,
        judge=base.judge,
        committer=committer,
        syncing=base.syncing,
        mempool=buffers.mempool,
        blocks=buffers.blocks,
        held=buffers.held,
        outbox=context.outbox,
        stats=context.stats,
        before_proposal=base.admission.drain_gossip,
    )

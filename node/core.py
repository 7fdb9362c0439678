"""``NodeCore``: the pure chain core — consensus, mempool and application composed.

A shell (the trio runtime, the simulator, a test) owns one ``NodeCore`` and feeds it events;
``handle(event)`` returns the actions to carry out, in order. That is the whole interface,
besides the read-only queries the shell calls to serve peers and clients (``status``,
``blocks_for_sync``, ``query_state``, ``next_nonce``, ``pending_evidence``,
``committed_evidence``, ``block_results``, ``tx_location``, and ``queries`` for modules'
state, receipts and the event feed)::

    core = NodeCore.open(storage, signer, genesis, NodeConfig())
    actions = core.handle(Start(now_ms=clock.now_ms()))
    ...  # then MessageReceived, TimerFired, TxSubmitted, BlocksReceived, PeerStatus, ...

Events and actions are documented in ``node.chain.events`` and ``node.chain.actions``; each
action says what the shell must do and feed back. A shell's whole duty: subscribe to
``node.chain.TOPICS``; feed ``Start`` first, then every message, timer, client transaction
and block-sync answer, one event at a time (``handle`` is not re-entrant and never blocks);
carry out the actions in order; answer peers' block requests from ``blocks_for_sync``; stop
the node if ``handle`` raises ``ChainHaltError``. The core reads no clock (times come on the
events), draws no randomness, and touches storage only through the ``Storage`` port, itself
and in order:

- Safety first: every consensus input is logged; a ``Persist`` effect makes the log durable
  (one synced batch with the signing record) before the signature it protects is made, so no
  shell can get the order wrong. A restarted node replays the log of its current height
  (``ConsensusCore.replay``) and never signs a conflicting vote.
- A committed block, its certificate, its results (block events, receipts, tx index), the
  application's state changes, the validator schedule and the new height are written in
  ONE atomic synced batch.

What the core does with each input:

- ``MessageReceived``: decodes with ``node.codec`` (per-topic size limits), verifies
  signatures with ``consensus.verification`` against the validator set of the message's
  height, then: votes and proposals of the current height go to consensus; those of the next
  heights wait in a bounded buffer; proposed blocks wait in a bounded cache until a proposal
  names them, and are validated (``node.chain.validation``) before consensus hears the verdict
  — an invalid block gets ``value_valid=False`` and this node prevotes nil; transactions
  enter the mempool. Anything a correct peer never sends becomes ``PeerMisbehaved`` and
  changes nothing. A vote or proposal received again byte for byte while held is not
  verified again.
- ``VerifiedTxsReceived``: a peer's transactions the shell already verified (worker
  threads) enter the mempool without a second signature check.
- Catching up within a height (``node.chain.catch_up``): the signed votes and proposals of
  the current height are held (``node.chain.round_messages``, restored from the durable log
  after a restart); when the round did not move for a whole sync tick the node re-sends its
  own votes of every round and relays the quorums that justify its state (the polka of its
  valid round with that round's proposal and block, the latest precommit quorum), and it
  answers a peer heard only in lower rounds directly — all within a per-tick budget. A
  re-proposal carries the polka of its valid round.
- When consensus asks for a value, the core builds a block from the pending equivocation
  evidence and the mempool within the chain's size limits (``node.chain.proposer``) and
  broadcasts it with the signed proposal.
- On ``Decide`` it executes the block with the application, updates the mempool, the
  pending evidence (``node.chain.evidence``) and the validator schedule, persists, emits
  ``BlockCommitted`` and, after ``commit_wait_ms``, starts the next height.
- Equivocation: consensus detects two conflicting votes of a validator and keeps the evidence
  (``ConsensusCore.evidence``); the core reports it (``EquivocationDetected``), proposes it
  in a block of a later height, and judges the evidence in others' blocks by the same rule
  (``node.chain.evidence.evidence_problem``); the application records what is committed and
  emits ``validator.equivocated``.
- A peer known to be ahead (status or message heights) makes it request blocks; every block
  received is verified with its certificate against this node's own validator schedule
  before it is applied.

Observers (``signer=None``, or a key outside the validator set) follow and commit the chain
but never sign.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from consensus import (
    ConsensusCore,
    ConsensusError,
    Decide,
    Effect,
    InvalidMessageError,
    Persist,
    ProposalReceived,
    ProposeValue,
    ReportEvidence,
    RequestValue,
    ScheduleTimeout,
    SignAndBroadcastProposal,
    SignAndBroadcastVote,
    StartHeight,
    Step,
    TimeoutElapsed,
    TimeoutKind,
    ValidatorSet,
    ValueValidity,
    VoteReceived,
    verify_proposal,
    verify_vote,
)
from consensus.evidence import DuplicateVoteEvidence
from consensus.limits import PROPOSAL_LOOKAHEAD_ROUNDS
from consensus.sign_bytes import proposal_sign_bytes_of, vote_sign_bytes_of
from crypto_core.signatures import verify
from node.app.application import Application
from node.app.evidence import EvidenceRecord
from node.chain import store
from node.chain.actions import (
    Action,
    BlockCommitted,
    Broadcast,
    EquivocationDetected,
    Offence,
)
from node.chain.admission import Admission
from node.chain.application import AppFactory, default_application
from node.chain.catch_up_sender import CatchUpSender
from node.chain.config import NodeConfig
from node.chain.errors import ChainHaltError, QueryError
from node.chain.events import (
    BlocksReceived,
    Event,
    MessageReceived,
    PeerDisconnected,
    PeerStatus,
    Start,
    TimerFired,
    TimerKey,
    TimerKind,
    TxSubmitted,
    VerifiedTxsReceived,
)
from node.chain.evidence import (
    ChainEvidenceLookup,
    PendingEvidenceLog,
    is_expired,
)
from node.chain.feed import ConsensusFeed, Permit, Work, offence_of
from node.chain.future import FutureMessage, FutureMessages
from node.chain.genesis import Genesis
from node.chain.gossip import TxGossip
from node.chain.height import MAX_REASON_CHARS, HeightState, Outbox
from node.chain.judge import BlockJudge
from node.chain.messages import (
    TOPIC_CONSENSUS,
    PeerFault,
    decode_inbound,
)
from node.chain.proposals import OWN, ProposedBlocks, Verdict
from node.chain.proposer import build_proposal
from node.chain.queries import ChainQueries
from node.chain.restore import open_chain
from node.chain.round_messages import RoundMessages
from node.chain.schedule import ValidatorSchedule
from node.chain.status import NodeStats, NodeStatus
from node.chain.store import BlockResults, TxLocation
from node.chain.sync import BlockSync
from node.chain.syncing import Syncing
from node.chain.wal import ConsensusLog
from node.codec import (
    Message,
    block_id,
    block_message,
    committed_block_bytes,
    encode_message,
    message_body,
    tx_hash,
)
from node.errors import InvalidBlockError, StorageError
from node.mempool import Mempool, VerifiedTx, verify_transaction
from node.ports import PeerId, Signer, Storage, WriteOp
from node.types import (
    Block,
    CommittedBlock,
    Proposal,
    StateProof,
    Status,
    TxBatch,
    Vote,
    VoteType,
)

__all__ = ["MAX_REASON_CHARS", "NodeCore"]

_TIMER_OF_TIMEOUT: Final = {
    TimeoutKind.PROPOSE: TimerKind.PROPOSE,
    TimeoutKind.PREVOTE: TimerKind.PREVOTE,
    TimeoutKind.PRECOMMIT: TimerKind.PRECOMMIT,
}
_TIMEOUT_OF_TIMER: Final = {timer: timeout for timeout, timer in _TIMER_OF_TIMEOUT.items()}


class NodeCore:
    """One node's chain: see the module docstring. Single-threaded; never blocks."""

    def __init__(
        self,
        *,
        storage: Storage,
        signer: Signer | None,
        genesis: Genesis,
        config: NodeConfig,
        app: Application,
        schedule: ValidatorSchedule,
        log: ConsensusLog,
        consensus: ConsensusCore,
        last_block: CommittedBlock | None,
        replayed: list[Effect],
        pending_evidence: PendingEvidenceLog | None = None,
        logged_messages: Sequence[Vote | Proposal] = (),
    ) -> None:
        """Use ``NodeCore.open``: it restores every argument from ``storage``."""
        self._storage = storage
        self._signer = signer
        self._genesis = genesis
        self._genesis_hash = genesis.hash()
        self._params = genesis.params
        self._config = config
        self._app = app
        self._schedule = schedule
        self._log = log
        self._consensus = consensus
        self._pending_evidence = (
            pending_evidence if pending_evidence is not None else PendingEvidenceLog()
        )
        self._init_buffers(genesis.chain_id, config)
        self.stats = NodeStats()
        self._state = HeightState.after(last_block, consensus_height=consensus.height)
        self._outbox = Outbox(self.stats)
        self._feed = ConsensusFeed(consensus, log, self._outbox)
        self._judge = BlockJudge(
            state=self._state,
            genesis=genesis,
            app=app,
            schedule=schedule,
            lookup=ChainEvidenceLookup(schedule, app),
            blocks=self._blocks,
            mempool=self._mempool,
        )
        self._init_parts(schedule)
        self._replayed = replayed
        self._sign_permit = False
        if self._state.active and consensus.validator_set is not None:
            validator_set = consensus.validator_set
            self._catch_up.hold_height(consensus.height, validator_set, logged_messages)

    def _init_buffers(self, chain_id: str, config: NodeConfig) -> None:
        """The empty, bounded buffers a node starts with (limits from ``config``)."""
        self._mempool = Mempool(chain_id, config.mempool)
        self._blocks = ProposedBlocks(
            max_blocks=config.max_cached_blocks,
            max_per_peer=config.max_cached_blocks_per_peer,
            max_bytes=config.max_cached_block_bytes,
            max_verdicts=config.max_verdicts_per_height,
        )
        self._future = FutureMessages(
            config.max_future_messages, config.max_future_messages_per_peer
        )
        self._sync = BlockSync(
            max_peers=config.max_tracked_peers,
            max_pending_requests=config.max_pending_sync_requests,
            max_blocks_per_request=config.max_blocks_per_request,
            max_buffered_blocks=config.max_sync_blocks_buffered,
            max_buffer_bytes=config.max_sync_buffer_bytes,
        )
        self._gossip = TxGossip(
            max_queue_txs=config.max_gossip_queue_txs,
            max_batch_txs=config.max_tx_batch_txs,
            max_batch_bytes=config.max_tx_batch_bytes,
        )
        self._held = RoundMessages(None if self._signer is None else self._signer.public_key)

    def _init_parts(self, schedule: ValidatorSchedule) -> None:
        """Transaction admission, catch-up within a height, status and block sync."""
        config, state, outbox, stats = self._config, self._state, self._outbox, self.stats
        self._admission = Admission(
            chain_id=self.chain_id,
            config=config,
            state=state,
            app=self._app,
            mempool=self._mempool,
            gossip=self._gossip,
            outbox=outbox,
            stats=stats,
            verify=_verify_transaction,
        )
        self._catch_up = CatchUpSender(
            config=config,
            state=state,
            consensus=self._consensus,
            held=self._held,
            blocks=self._blocks,
            outbox=outbox,
            stats=stats,
        )
        self._syncing = Syncing(
            chain_id=self.chain_id,
            config=config,
            state=state,
            sync=self._sync,
            blocks=self._blocks,
            schedule=schedule,
            feed=self._feed,
            judge=self._judge,
            consensus=self._consensus,
            outbox=outbox,
            stats=stats,
        )

    # ==========================================================================================
    # opening
    # ==========================================================================================

    @classmethod
    def open(
        cls,
        storage: Storage,
        signer: Signer | None,
        genesis: Genesis,
        config: NodeConfig | None = None,
        *,
        app_factory: AppFactory = default_application,
    ) -> NodeCore:
        """The node of ``genesis`` kept in ``storage``: a new chain if the storage is empty,
        else the last committed height, its application state and validator schedule, an
        empty mempool, and consensus replayed from the log of the current height.

        ``signer`` None runs an observer. Raises ``StorageMismatchError`` for the storage of
        another chain (or a corrupt one) and ``InvalidGenesisError`` if the application
        lacks the genesis module. Feed ``Start`` next.
        """
        config = config if config is not None else NodeConfig()
        app = app_factory(genesis)
        own_key = None if signer is None else signer.public_key
        opened = open_chain(storage, genesis, app, config, own_key=own_key)
        return cls(
            storage=storage,
            signer=signer,
            genesis=genesis,
            config=config,
            app=app,
            schedule=opened.schedule,
            log=opened.log,
            consensus=opened.consensus,
            last_block=opened.last_block,
            replayed=opened.replayed_effects,
            pending_evidence=opened.pending_evidence,
            logged_messages=opened.logged_messages,
        )

    # ==========================================================================================
    # read-only queries
    # ==========================================================================================

    @property
    def chain_id(self) -> str:
        """The chain this node follows."""
        return self._genesis.chain_id

    @property
    def genesis_hash(self) -> bytes:
        """The hash of the genesis document."""
        return self._genesis_hash

    @property
    def public_key(self) -> bytes | None:
        """This node's signing key (None for an observer)."""
        return None if self._signer is None else self._signer.public_key

    @property
    def height(self) -> int:
        """The last committed height (0 at genesis)."""
        return self._state.height

    @property
    def last_block_id(self) -> bytes:
        """The id of the last committed block (zero bytes at genesis)."""
        return self._state.last_block_id

    @property
    def app_state_root(self) -> bytes:
        """The application state root after the last committed block."""
        return self._app.state_root

    @property
    def mempool_size(self) -> int:
        """Transactions waiting for a block."""
        return len(self._mempool)

    @property
    def consensus_height(self) -> int:
        """The height consensus is deciding (the committed one while pausing after it)."""
        return self._consensus.height

    def status(self) -> NodeStatus:
        """A snapshot for the API and operators."""
        state = self._consensus.round_state
        best = self._sync.best_height()
        return NodeStatus(
            chain_id=self.chain_id,
            genesis_hash=self._genesis_hash,
            height=self._state.height,
            last_block_id=self._state.last_block_id,
            last_block_time_ms=self._tip_time_ms(),
            app_state_root=self._app.state_root,
            consensus_height=self._consensus.height,
            round=0 if state is None else state.round,
            step="" if state is None else state.step.name.lower(),
            is_validator=self._consensus.is_validator,
            peers_known=self._sync.peer_count,
            best_peer_height=best,
            catching_up=best > self._state.height,
            mempool_txs=len(self._mempool),
            mempool_bytes=self._mempool.size_bytes,
            future_messages=len(self._future),
            cached_blocks=len(self._blocks),
            sync_buffered_blocks=self._sync.buffered,
            pending_evidence=len(self._consensus.evidence),
        )

    def blocks_for_sync(
        self, from_height: int, max_blocks: int, max_bytes: int
    ) -> tuple[bytes, ...]:
        """Encoded ``CommittedBlock`` s from ``from_height`` on, to answer a peer's request:
        at most ``max_blocks`` (and ``max_sync_response_blocks``) blocks totalling at most
        ``max_bytes`` (and ``max_sync_response_bytes``). Empty if none is committed there or
        an argument is out of range (a peer's request is never an error)."""
        if not all(type(v) is int for v in (from_height, max_blocks, max_bytes)) or from_height < 1:
            return ()
        max_blocks = min(max_blocks, self._config.max_sync_response_blocks)
        max_bytes = min(max_bytes, self._config.max_sync_response_bytes)
        found: list[bytes] = []
        used_bytes = 0
        for height in range(from_height, min(self._state.height, from_height + max_blocks - 1) + 1):
            data = store.read_block(self._storage, height)
            if data is None or used_bytes + len(data) > max_bytes:
                break
            found.append(data)
            used_bytes += len(data)
        return tuple(found)

    def committed_block(self, height: int) -> CommittedBlock | None:
        """The committed block at ``height`` with its certificate, if stored."""
        data = store.read_block(self._storage, height)
        return None if data is None else store.decode_stored_block(data)

    def query_state(self, key: bytes, height: int | None = None) -> StateProof:
        """``key``'s value at ``height`` (default: the last committed) with a proof against
        that height's state root (which the next block's header carries). Raises
        ``QueryError`` for a height this node does not keep."""
        try:
            return self._app.query(key, height)
        except KeyError as exc:
            raise QueryError(f"height {height} is not kept: {exc}") from exc

    def pending_evidence(self) -> tuple[DuplicateVoteEvidence, ...]:
        """Equivocation evidence this node holds for a block to include, oldest first."""
        return self._consensus.evidence.pending()

    def committed_evidence(self, evidence: DuplicateVoteEvidence) -> EvidenceRecord | None:
        """The chain's record of ``evidence``'s step (validator, height, round, vote type),
        if a committed block carried evidence of it."""
        return self._app.committed_evidence(evidence)

    def next_nonce(self, sender: bytes) -> int:
        """The nonce a new transaction of ``sender`` must carry to enter this mempool."""
        return self._mempool.next_nonce(sender, self._app.next_nonce(sender))

    def get_state(self, key: bytes) -> bytes | None:
        """A committed application state value, without proof."""
        return self._app.get(key)

    def block_results(self, height: int) -> BlockResults | None:
        """The block events and receipts of the committed ``height``, if kept."""
        return store.read_results(self._storage, height)

    def tx_location(self, tx_hash: bytes) -> TxLocation | None:
        """The height and position of a transaction committed on this chain, if any."""
        return store.read_tx_location(self._storage, tx_hash)

    @property
    def queries(self) -> ChainQueries:
        """Clients' read-only queries: modules' state, receipts, events (``node.chain
        .queries``); like every method, to be called from the core's owner only."""
        return ChainQueries(self._app, self._storage)

    # ==========================================================================================
    # the entry point
    # ==========================================================================================

    def handle(self, event: Event) -> list[Action]:
        """Process one event; returns the actions to carry out, in order.

        Bad input from peers never raises (it becomes ``PeerMisbehaved``). Raises
        ``TypeError`` or ``ValueError`` for an event that breaks its contract (a shell bug:
        not an event, or a ``VerifiedTxsReceived`` holding other than verified transactions
        of this chain), before changing anything, and ``ChainHaltError`` when the node cannot
        go on safely (see ``node.chain.errors``).
        """
        handler = _HANDLERS.get(type(event))
        if handler is None:
            raise TypeError(f"not a NodeCore event: {type(event).__name__}")
        if type(event.now_ms) is not int:
            raise TypeError("now_ms must be an int of milliseconds")
        self._state.now_ms = event.now_ms
        self._outbox.clear()
        handler(self, event)
        self._settle()
        self._catch_up.let_go()
        return self._outbox.take()

    def _settle(self) -> None:
        """Carry out consensus effects and chain progress until nothing is left to do."""
        while True:
            work = self._feed.next_work()
            if work is not None:
                self._execute(work)
            elif not self._advance():
                return

    # ==========================================================================================
    # events
    # ==========================================================================================

    def _on_start(self, event: Start) -> None:
        if self._state.started:
            return
        self._state.started = True
        self._syncing.broadcast_status()
        self._outbox.set_timer(TimerKey(TimerKind.STATUS), self._config.status_interval_ms)
        self._outbox.set_timer(TimerKey(TimerKind.SYNC_TICK), self._config.sync_tick_ms)
        self._feed.queue_replayed(self._replayed)
        self._replayed = []
        if not self._state.active:
            self._state.start_due = True

    def _on_message(self, event: MessageReceived) -> None:
        self.stats.messages_received += 1
        if not self._state.started:
            return
        try:
            message = decode_inbound(event.topic, event.data, self._params.max_block_bytes)
            self._dispatch(event.sender, message, event.data)
        except PeerFault as fault:
            self._outbox.misbehaved(event.sender, fault.offence, fault.reason)

    def _dispatch(self, sender: PeerId, message: Message, data: bytes) -> None:
        if isinstance(message, Vote | Proposal) and self._held.is_held(message, data):
            self.stats.repeated_messages += 1  # verified before: not checked again
            self._catch_up.heard(sender, message.round)
        elif isinstance(message, Vote):
            self._on_vote(sender, message, data)
        elif isinstance(message, Proposal):
            self._on_proposal(sender, message, data)
        elif isinstance(message, Block):
            self._on_block(sender, message, message_body(data))
        elif isinstance(message, TxBatch):
            self._admission.on_tx_batch(sender, message)
        elif isinstance(message, Status):
            self._syncing.on_status(sender, message.height)

    def _on_timer(self, event: TimerFired) -> None:
        key = event.key
        if not isinstance(key, TimerKey) or not self._state.started:
            return
        kind = key.kind
        if kind in _TIMEOUT_OF_TIMER:
            if self._state.active and key.height == self._state.height + 1 and key.round >= 0:
                self._feed.feed(TimeoutElapsed(_TIMEOUT_OF_TIMER[kind], key.height, key.round))
        elif kind is TimerKind.COMMIT_WAIT:
            if not self._state.active and key.height == self._state.height + 1:
                self._state.start_due = True
        elif kind is TimerKind.TX_GOSSIP:
            self._admission.drain_gossip()
        elif kind is TimerKind.SYNC_TICK:
            self._catch_up.on_sync_tick()
            self._syncing.on_sync_tick()
            self._outbox.set_timer(TimerKey(TimerKind.SYNC_TICK), self._config.sync_tick_ms)
        elif kind is TimerKind.SYNC_REQUEST:
            self._syncing.on_sync_timeout(key.peer, key.height)
        elif kind is TimerKind.STATUS:
            self._syncing.broadcast_status()
            self._outbox.set_timer(TimerKey(TimerKind.STATUS), self._config.status_interval_ms)

    def _on_tx_submitted(self, event: TxSubmitted) -> None:
        self._admission.on_tx_submitted(event)

    def _on_verified_txs(self, event: VerifiedTxsReceived) -> None:
        self._admission.on_verified_txs(event)

    def _on_blocks_received(self, event: BlocksReceived) -> None:
        self._syncing.on_blocks_received(event)

    def _on_peer_status(self, event: PeerStatus) -> None:
        self._syncing.on_peer_status(event)

    def _on_peer_disconnected(self, event: PeerDisconnected) -> None:
        self._syncing.on_peer_disconnected(event)

    # ==========================================================================================
    # consensus messages
    # ==========================================================================================

    def _on_vote(self, sender: PeerId, vote: Vote, data: bytes) -> None:
        if vote.chain_id != self.chain_id:
            raise PeerFault(Offence.WRONG_CHAIN, f"vote for chain {vote.chain_id!r}")
        validator_set = self._routable_set(sender, vote)
        if validator_set is None:
            return
        try:
            verify_vote(vote, validator_set, self.chain_id)
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
        if proposal.chain_id != self.chain_id:
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
            verify_proposal(proposal, validator_set, self.chain_id, check_proposer=True)
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
            self.stats.stale_messages += 1
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
        if header.chain_id != self.chain_id:
            raise PeerFault(Offence.WRONG_CHAIN, f"block for chain {header.chain_id!r}")
        if not self._state.height < header.height <= self._state.height + 2:
            return  # stale, or for a height whose proposal could not be verified yet
        id_ = block_id(header)
        self._blocks.add(id_, block, block_bytes, sender)
        awaited = self._blocks.is_awaited(id_)
        if self._state.active and header.height == self._state.height + 1 and awaited:
            verdict = self._judge.judge(id_)
            if verdict is not None:
                self._feed.feed(ValueValidity(header.height, id_, verdict))

    def _feed_proposal(self, sender: PeerId, proposal: Proposal) -> bool:
        return self._feed.feed_from(
            sender, ProposalReceived(proposal, self._judge.judge(proposal.value_id))
        )

    # ==========================================================================================
    # chain progress
    # ==========================================================================================

    def _advance(self) -> bool:
        """One step of progress that needs no new input; False if there is none."""
        next_height = self._state.height + 1
        pending = self._state.pending_decide
        if pending is not None:
            block = self._blocks.get(pending.value_id)
            if block is not None:
                self._commit(pending, block)
                return True
        if self._sync.has(next_height):
            if not self._state.active:
                self._start_height(next_height)
            else:
                self._syncing.apply_synced(self._sync.take(next_height))
            return True
        if self._state.start_due and not self._state.active:
            self._start_height(next_height)
            return True
        return False

    def _start_height(self, height: int) -> None:
        self._state.start_due = False
        validator_set = self._schedule.set_at(height)
        assert validator_set is not None, "the schedule knows the next height"
        self._log.reset(height)
        self._state.active = True
        self._catch_up.hold_height(height, validator_set)
        self._feed.feed(StartHeight(height, validator_set))
        for item in self._future.take(height):
            message = item.message
            if isinstance(message, Vote):
                accepted = self._feed.feed_from(item.sender, VoteReceived(message))
            else:
                accepted = self._feed_proposal(item.sender, message)
            if accepted:
                self._catch_up.hold(message, encode_message(message))

    def _commit(self, decided: Decide, block: Block) -> None:
        """Execute, persist (one synced batch) and announce the decided block, using the
        encoding it arrived as (or was built as): a block is never encoded twice."""
        height = decided.height
        data = self._blocks.encoded(decided.value_id)
        assert data is not None, "a decided block is committed from the held blocks"
        verdict = self._blocks.verdict(decided.value_id)
        if verdict is None or not verdict.valid:
            verdict = self._judge.validate(block, data, now_ms=None)
            if not verdict.valid:
                raise ChainHaltError(f"the decided block at height {height} is invalid")
        try:
            result = self._app.finalize_block(
                block, preverified_tx_hashes=verdict.tx_hashes, size_bytes=len(data)
            )
        except InvalidBlockError as exc:
            raise ChainHaltError(f"the decided block at height {height}: {exc}") from exc
        self._mempool.update(block.txs, self._app.next_nonce, self._admission.recheck)
        encoded = committed_block_bytes(data, decided.certificate)
        ops = store.commit_ops(encoded, height, result.state_changes, result.state_root)
        results = BlockResults(height, block.header.time_ms, result.block_events, result.receipts)
        ops += store.results_ops(self._storage, results)
        ops += self._schedule.commit(height, result.validator_updates)
        ops += self._settle_evidence(block, height)
        ops += self._log.delete_ops()
        try:
            self._storage.write_batch(ops, sync=True)
        except StorageError as exc:
            raise ChainHaltError(f"cannot persist height {height}: {exc}") from exc
        self._outbox.add(
            BlockCommitted(
                height,
                result.block_id,
                block.header.time_ms,
                len(block.txs),
                result.state_root,
                result.block_events,
                result.receipts,
            )
        )
        self._after_commit(decided, block)

    def _after_commit(self, decided: Decide, block: Block) -> None:
        height = decided.height
        self._state.height = height
        self._state.last_header = block.header
        self._state.last_commit = decided.certificate
        self._state.last_block_id = decided.value_id
        self._state.pending_decide = None
        self._state.active = False
        self._held.reset(height + 1, None)
        self._log.reset(height + 1)
        self._blocks.drop_below(height + 1)
        self._sync.drop_below(height + 1)
        self.stats.blocks_committed += 1
        self.stats.txs_committed += len(block.txs)
        catching_up = self._sync.has(height + 1) or self._sync.best_height() > height
        if catching_up or self._config.commit_wait_ms == 0:
            self._state.start_due = True
        else:
            key = TimerKey(TimerKind.COMMIT_WAIT, height + 1)
            self._outbox.set_timer(key, self._config.commit_wait_ms)

    def _settle_evidence(self, block: Block, height: int) -> list[WriteOp]:
        """Forget pending evidence ``block`` committed (its steps, whichever votes) or that
        expired with it; returns the writes that bring the stored copy up to date."""
        pool = self._consensus.evidence
        pool.remove(block.evidence)
        max_age = self._params.evidence_max_age_heights
        pool.remove([e for e in pool.pending() if is_expired(e, height + 1, max_age)])
        self.stats.evidence_committed += len(block.evidence)
        return self._pending_evidence.sync_ops(pool.pending())

    # ==========================================================================================
    # consensus effects
    # ==========================================================================================

    def _execute(self, work: Work) -> None:
        if isinstance(work, Permit):
            self._sign_permit = True
        elif isinstance(work, Persist):
            self._sign_permit = self._log.flush(work.record)
        elif isinstance(work, SignAndBroadcastVote):
            self._sign_vote(work)
        elif isinstance(work, SignAndBroadcastProposal):
            self._sign_proposal(work)
        elif isinstance(work, ScheduleTimeout):
            key = TimerKey(_TIMER_OF_TIMEOUT[work.kind], work.height, work.round)
            self._outbox.set_timer(key, work.duration_ms)
        elif isinstance(work, RequestValue):
            self._propose(work)
        elif isinstance(work, Decide):
            self._on_decide(work)
        elif isinstance(work, ReportEvidence):
            self._outbox.add(EquivocationDetected(work.evidence))

    def _take_permit(self) -> bool:
        permitted, self._sign_permit = self._sign_permit, False
        if not permitted:
            self.stats.signatures_withheld += 1
        return permitted and self._signer is not None

    def _sign_vote(self, effect: SignAndBroadcastVote) -> None:
        if not self._take_permit():
            return
        assert self._signer is not None
        vote = effect.vote.with_signature(self._signer.sign(effect.sign_bytes))
        data = encode_message(vote)
        self._held.add_vote(vote, data)
        self._outbox.add(Broadcast(TOPIC_CONSENSUS, data))
        self._feed.feed(VoteReceived(vote))

    def _sign_proposal(self, effect: SignAndBroadcastProposal) -> None:
        if not self._take_permit():
            return
        assert self._signer is not None
        proposal = effect.proposal.with_signature(self._signer.sign(effect.sign_bytes))
        block = self._block_message(proposal.value_id)
        messages = [] if block is None else [block]
        data = encode_message(proposal)
        messages.append(data)  # after its block: per-peer FIFO
        if proposal.valid_round >= 0:
            # The proof of lock of a re-proposal: without the polka of its valid round a
            # validator locked earlier prevotes nil (L28), and those who saw it may be gone.
            messages += self._held.votes_for(
                proposal.valid_round, VoteType.PREVOTE, proposal.value_id
            )
        self._held.add_proposal(proposal, data)
        for message in messages:
            self._outbox.broadcast(TOPIC_CONSENSUS, message)
        self._feed.feed(ProposalReceived(proposal, True))

    def _block_message(self, value_id: bytes) -> bytes | None:
        """The ``BLOCK`` message of a held block, if held."""
        data = self._blocks.encoded(value_id)
        return None if data is None else block_message(data)

    def _propose(self, effect: RequestValue) -> None:
        state = self._consensus.round_state
        if (
            self._signer is None
            or not self._state.active
            or effect.height != self._state.height + 1
            or state is None
            or state.step is Step.COMMIT
        ):
            return
        block, data = build_proposal(
            self._judge.tip(),
            proposer=self._signer.public_key,
            last_commit=self._state.last_commit,
            mempool=self._mempool,
            now_ms=self._state.now_ms,
            evidence=self._consensus.evidence.pending(),
            admissible=self._judge.evidence_admissible,
        )
        id_ = block_id(block.header)
        if not self._blocks.add(id_, block, data, OWN):
            return  # cannot hold it: no proposal (the propose timeout moves the round on)
        if self._blocks.verdict(id_) is None and self._blocks.can_judge():
            self._blocks.record(id_, Verdict(True, frozenset(tx_hash(raw) for raw in block.txs)))
        self._feed.feed(ProposeValue(effect.height, effect.round, id_))

    def _on_decide(self, decided: Decide) -> None:
        if decided.height <= self._state.height:
            return  # a replay decides a committed height again
        block = self._blocks.get(decided.value_id)
        if block is None:
            self._state.pending_decide = decided  # fetched by block sync (see _advance)
            self._syncing.request(force=True)
            return
        self._commit(decided, block)

    # ==========================================================================================
    # helpers
    # ==========================================================================================

    def _tip_time_ms(self) -> int:
        header = self._state.last_header
        return self._genesis.genesis_time_ms if header is None else header.time_ms


def _self_signed(message: Vote | Proposal) -> bool:
    """True if ``message`` carries a valid signature of the key it names."""
    try:
        if isinstance(message, Vote):
            return verify(message.validator, vote_sign_bytes_of(message), message.signature)
        return verify(message.proposer, proposal_sign_bytes_of(message), message.signature)
    except ConsensusError:
        return False  # a field out of range: nothing was signed


def _verify_transaction(raw: bytes, chain_id: str) -> VerifiedTx:
    """``node.mempool.verify_transaction``, looked up in this module at each call (the seam
    a test patches to see that verified transactions are not verified again)."""
    return verify_transaction(raw, chain_id)


_HANDLERS: Final[dict[type, Callable[[NodeCore, Any], None]]] = {
    Start: NodeCore._on_start,
    MessageReceived: NodeCore._on_message,
    TimerFired: NodeCore._on_timer,
    TxSubmitted: NodeCore._on_tx_submitted,
    VerifiedTxsReceived: NodeCore._on_verified_txs,
    BlocksReceived: NodeCore._on_blocks_received,
    PeerStatus: NodeCore._on_peer_status,
    PeerDisconnected: NodeCore._on_peer_disconnected,
}

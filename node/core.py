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

The work is split into parts in ``node.chain``, each given what it needs at construction and
sharing ``node.chain.height.HeightState`` (the committed position, the active flag, a
pending decision) and the event's ``Outbox``: ``inbound`` (peers' messages), ``admission``
(transactions), ``syncing`` (status and block sync), ``catch_up_sender`` (catch-up within a
height), ``feed`` (consensus inputs, logged, and the work queue), ``effects`` (persisting,
signing, proposing, timers, decisions), ``commit`` (one synced batch per height),
``progress`` (what needs no new input) and ``judge`` (verdicts on blocks), wired by
``node.chain.assembly``. This module keeps the dispatch, the opening and the read-only
queries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from consensus import ConsensusCore, Effect, ValidatorSet, verify_vote
from consensus.evidence import DuplicateVoteEvidence
from node.app.application import Application
from node.app.evidence import EvidenceRecord
from node.chain import store
from node.chain.actions import Action
from node.chain.application import AppFactory, default_application
from node.chain.assembly import Context, assemble, new_buffers
from node.chain.config import NodeConfig
from node.chain.effects import TIMEOUT_OF_TIMER
from node.chain.errors import QueryError
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
    VerifiedTxsSubmitted,
)
from node.chain.evidence import PendingEvidenceLog
from node.chain.genesis import Genesis
from node.chain.height import MAX_REASON_CHARS, HeightState, Outbox
from node.chain.queries import ChainQueries
from node.chain.restore import open_chain
from node.chain.schedule import ValidatorSchedule
from node.chain.status import NodeStats, NodeStatus
from node.chain.store import BlockResults, TxLocation
from node.chain.wal import ConsensusLog
from node.mempool import VerifiedTx, verify_transaction
from node.ports import Signer, Storage
from node.types import CommittedBlock, Proposal, StateProof, Vote

__all__ = ["MAX_REASON_CHARS", "NodeCore"]


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
        self._config = config
        self._app = app
        self._consensus = consensus
        self.stats = NodeStats()
        self._state = HeightState.after(last_block, consensus_height=consensus.height)
        self._outbox = Outbox(self.stats)
        self._replayed = replayed
        self._buffers = new_buffers(genesis.chain_id, config, signer)
        context = Context(
            storage=storage,
            signer=signer,
            genesis=genesis,
            config=config,
            app=app,
            schedule=schedule,
            log=log,
            consensus=consensus,
            pending_evidence=(
                pending_evidence if pending_evidence is not None else PendingEvidenceLog()
            ),
            state=self._state,
            outbox=self._outbox,
            stats=self.stats,
            verify_vote=_verify_vote,
            verify_transaction=_verify_transaction,
        )
        self._parts = assemble(context, self._buffers)
        if self._state.active and consensus.validator_set is not None:
            validator_set = consensus.validator_set
            self._parts.catch_up.hold_height(consensus.height, validator_set, logged_messages)

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

    def holds_tx(self, tx_hash: bytes) -> bool:
        """True if ``tx_hash`` waits in the mempool."""
        return tx_hash in self._buffers.mempool

    @property
    def mempool_size(self) -> int:
        """Transactions waiting for a block."""
        return len(self._buffers.mempool)

    @property
    def consensus_height(self) -> int:
        """The height consensus is deciding (the committed one while pausing after it)."""
        return self._consensus.height

    def status(self) -> NodeStatus:
        """A snapshot for the API and operators."""
        state = self._consensus.round_state
        best = self._buffers.sync.best_height()
        height, header = self._state.height, self._state.last_header
        return NodeStatus(
            chain_id=self.chain_id,
            genesis_hash=self._genesis_hash,
            height=height,
            last_block_id=self._state.last_block_id,
            last_block_time_ms=self._genesis.genesis_time_ms if header is None else header.time_ms,
            app_state_root=self._app.state_root,
            consensus_height=self._consensus.height,
            round=0 if state is None else state.round,
            step="" if state is None else state.step.name.lower(),
            is_validator=self._consensus.is_validator,
            peers_known=self._buffers.sync.peer_count,
            best_peer_height=best,
            catching_up=best > height,
            mempool_txs=len(self._buffers.mempool),
            mempool_bytes=self._buffers.mempool.size_bytes,
            future_messages=len(self._buffers.future),
            cached_blocks=len(self._buffers.blocks),
            sync_buffered_blocks=self._buffers.sync.buffered,
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
        last = min(self._state.height, from_height + max_blocks - 1)
        for height in range(from_height, last + 1):
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
        return self._buffers.mempool.next_nonce(sender, self._app.next_nonce(sender))

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
        not an event, or a ``VerifiedTxsReceived`` or ``VerifiedTxsSubmitted`` holding other
        than verified transactions of this chain), before changing anything, and
        ``ChainHaltError`` when the node cannot go on safely (see ``node.chain.errors``).
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
        self._parts.catch_up.let_go()
        return self._outbox.take()

    def _settle(self) -> None:
        """Carry out consensus effects and chain progress until nothing is left to do."""
        parts = self._parts
        feed, effects, progress = parts.feed, parts.effects, parts.progress
        while True:
            work = feed.next_work()
            if work is not None:
                effects.execute(work)
            elif not progress.advance():
                return

    def _on_start(self, event: Start) -> None:
        state = self._state
        if state.started:
            return
        state.started = True
        self._parts.syncing.broadcast_status()
        self._outbox.set_timer(TimerKey(TimerKind.STATUS), self._config.status_interval_ms)
        self._outbox.set_timer(TimerKey(TimerKind.SYNC_TICK), self._config.sync_tick_ms)
        self._parts.feed.queue_replayed(self._replayed)
        self._replayed = []
        if not state.active:
            state.start_due = True

    def _on_timer(self, event: TimerFired) -> None:
        key, state = event.key, self._state
        if not isinstance(key, TimerKey) or not state.started:
            return
        kind = key.kind
        if kind in TIMEOUT_OF_TIMER:
            self._parts.effects.on_timeout(key)
        elif kind is TimerKind.COMMIT_WAIT:
            if not state.active and key.height == state.height + 1:
                state.start_due = True
        elif kind is TimerKind.TX_GOSSIP:
            self._parts.admission.drain_gossip()
        elif kind is TimerKind.SYNC_TICK:
            self._parts.catch_up.on_sync_tick()
            self._parts.syncing.on_sync_tick()
            self._outbox.set_timer(TimerKey(TimerKind.SYNC_TICK), self._config.sync_tick_ms)
        elif kind is TimerKind.SYNC_REQUEST:
            self._parts.syncing.on_sync_timeout(key.peer, key.height)
        elif kind is TimerKind.STATUS:
            self._parts.syncing.broadcast_status()
            self._outbox.set_timer(TimerKey(TimerKind.STATUS), self._config.status_interval_ms)

    def _on_message(self, event: MessageReceived) -> None:
        self._parts.inbound.on_message(event)

    def _on_tx_submitted(self, event: TxSubmitted) -> None:
        self._parts.admission.on_tx_submitted(event)

    def _on_verified_txs(self, event: VerifiedTxsReceived) -> None:
        self._parts.admission.on_verified_txs(event)
        self._parts.inbound.on_txs_admitted(verified.tx_hash for verified in event.verified)

    def _on_verified_submitted(self, event: VerifiedTxsSubmitted) -> None:
        self._parts.admission.on_verified_submitted(event)
        self._parts.inbound.on_txs_admitted(event.tx_hashes)

    def _on_blocks_received(self, event: BlocksReceived) -> None:
        self._parts.syncing.on_blocks_received(event)

    def _on_peer_status(self, event: PeerStatus) -> None:
        self._parts.syncing.on_peer_status(event)

    def _on_peer_disconnected(self, event: PeerDisconnected) -> None:
        self._parts.syncing.on_peer_disconnected(event)


def _verify_vote(vote: Vote, validator_set: ValidatorSet, chain_id: str) -> None:
    """``consensus.verify_vote``, looked up in this module at each call: ``node.core
    .verify_vote`` is the seam a test patches to count verifications."""
    verify_vote(vote, validator_set, chain_id)


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
    VerifiedTxsSubmitted: NodeCore._on_verified_submitted,
    BlocksReceived: NodeCore._on_blocks_received,
    PeerStatus: NodeCore._on_peer_status,
    PeerDisconnected: NodeCore._on_peer_disconnected,
}

"""``NodeRuntime``: the trio task that owns a ``NodeCore`` and carries out its actions.

One task — the core task, running ``run`` — is the only code that touches the core. It
waits on one bounded inbox (``node.runtime.inbox``) with a deadline at the next timer, so
timers, network messages, block-sync answers, client transactions and queries are handled
one at a time, in arrival order, and each ``handle`` call runs to completion: a shutdown or
cancellation can only land between two events, never inside one. The core writes through
its ``Storage`` port itself (a committed block in one synced batch, signed votes durable
before they are returned), so everything the runtime does with the actions afterwards is
safe to lose in a crash.

Helper tasks feed the inbox and never touch the core:

- the network pump: ``receive`` batches from the network (woken by ``wait_arrival``) and
  hands them over as ``MessageReceived``; when the inbox is full it waits, and the network's
  own bounded inbound queue then drops (counted) — back-pressure with a limit everywhere;
- the peer watcher: turns the network's peer set into ``PeerStatus`` (from the status a peer
  sent in its handshake) and ``PeerDisconnected`` events;
- one task per ``RequestBlocks`` (at most ``max_sync_fetches``): asks the peer over the
  block-sync protocol and hands the answer over as ``BlocksReceived``; a failed request
  feeds nothing (the core's ``SYNC_REQUEST`` timer covers it);
- the block-sync server (a network handler) and the HTTP API ask the core task through
  ``Ask``/``SubmitTx`` items and wait for the ``Reply``.

Timers live in a ``TimerQueue`` on trio's clock (so tests can run them on a virtual one);
events carry wall-clock milliseconds from the ``Clock`` port.

Raises ``ChainHaltError`` out of ``run`` when the core cannot go on safely: the process must
stop and its operator look (restarting replays the durable log).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import trio

from node.api.gateway import GatewayBusyError, NodeSnapshot
from node.chain.actions import (
    Action,
    BlockCommitted,
    Broadcast,
    EquivocationDetected,
    Offence,
    PeerMisbehaved,
    RequestBlocks,
    SendTo,
    SetTimer,
    TxResult,
)
from node.chain.errors import QueryError
from node.chain.event_feed import EventCursor, EventPage
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
    VerifiedTxsSubmitted,
)
from node.chain.messages import TOPIC_CONSENSUS, TOPIC_TXS, TOPICS, PeerFault, decode_inbound
from node.chain.queries import (
    BadQueryError,
    ChainQueries,
    CommittedTx,
    ModuleEntries,
    ModuleState,
)
from node.codec import MAX_TXS_PER_BATCH, decode_message, encode_message, tx_hash
from node.core import NodeCore
from node.errors import DecodeError, NetworkError, RequestRejectedError, UnknownPeerError
from node.mempool import VerifiedTx, verify_transactions
from node.ports import Clock, MessageValidator, PeerId, Verdict
from node.runtime.discipline import PeerDiscipline
from node.runtime.inbox import (
    Ask,
    BlockQuery,
    CoreState,
    EventsQuery,
    Handle,
    InboxItem,
    ModuleEntriesQuery,
    ModuleStateQuery,
    NonceQuery,
    Query,
    Reply,
    StateRead,
    StatusQuery,
    SubmitTx,
    SubmitTxs,
    SyncQuery,
    TxQuery,
)
from node.runtime.logs import fields
from node.runtime.metrics import NodeMetrics
from node.runtime.network import RuntimeNetwork
from node.runtime.services import CommitFeed, RuntimeServices
from node.runtime.sync_wire import (
    DEFAULT_MAX_RESPONSE_BYTES,
    MAX_SYNC_BLOCKS,
    SYNC_PROTOCOL,
    SYNC_REQUEST_CODEC,
    SyncRequest,
    SyncResponse,
    block_budget_bytes,
    response_codec,
)
from node.runtime.timers import DEFAULT_MAX_TIMERS, TimerOverflowError, TimerQueue
from node.runtime.tx_batches import TxBatchVerifier
from node.types import CommittedBlock, Status

logger = logging.getLogger("node.runtime")

MOOT_TIMER_KINDS: Final = frozenset(
    {TimerKind.PROPOSE, TimerKind.PREVOTE, TimerKind.PRECOMMIT, TimerKind.COMMIT_WAIT}
)
"""Timers of a height: moot once that height is committed (the core ignores them)."""
MAX_RECENTLY_COMMITTED_TXS: Final = 65_536
"""Committed transaction hashes remembered so that peers' late batches skip verifying them
(a few blocks' worth at thousands a second; 2 MiB of hashes)."""


@dataclass(frozen=True, slots=True)
class RuntimeLimits:
    """Bounds of the runtime's own queues and tasks."""

    inbox_items: int = 1_024
    """Items waiting for the core task (network messages, answers, client requests)."""
    receive_batch_messages: int = 256
    """Messages taken from the network per ``receive``."""
    peer_poll_interval_s: float = 0.25
    """How often the peer set is compared with the last one (the network signals no change
    of peers, only arrivals of messages)."""
    max_sync_fetches: int = 16
    """Block-sync requests in flight at once (the core asks for at most a few)."""
    sync_request_timeout_ms: int = 5_000
    """How long one block-sync request may take."""
    sync_response_max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    """Largest block-sync response, sent or accepted (one transport frame)."""
    max_timers: int = DEFAULT_MAX_TIMERS
    """Timers pending at once (the core keeps a few dozen; moot ones are dropped when full)."""
    max_commit_subscribers: int = 16
    """Extensions' subscriptions to committed heights (``node.runtime.services``)."""
    verify_threads: int = 2
    """Worker threads verifying transactions (decode and Ed25519) off the core task."""
    tx_batch_queue: int = 64
    """Peers' transaction batches waiting for verification in worker threads."""
    submission_slots: int = 2
    """Client submissions (a transaction or a batch) in the core's inbox at once; the others
    wait their turn outside it, so peers' messages and timers are never stuck behind them."""
    consensus_direct: bool = True
    """Send consensus broadcasts straight to every ready peer as well as by gossip.
    py-libp2p's GossipSub can leave a restarted peer out of its neighbours' meshes for a
    whole prune backoff (60 s): its votes would not be heard. The direct streams cost one
    duplicate per neighbour (the core takes duplicates in its stride)."""

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, bool) and not value > 0:
                raise ValueError(f"RuntimeLimits.{item.name} must be positive")


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """Who the node is, for status and logs."""

    moniker: str
    version: str
    validator_key: bytes | None


class TipBoard:
    """The latest committed height and block id, readable from any task (the handshake's
    status provider reads it; only the core task writes it)."""

    def __init__(self, height: int, block_id: bytes) -> None:
        self._height = height
        self._encoded = encode_message(Status(height, block_id))
        self._moved: trio.Event | None = None

    @property
    def height(self) -> int:
        """The last committed height."""
        return self._height

    def update(self, height: int, block_id: bytes) -> None:
        """Record the tip after an event (re-encoded only when the height moved; waiters of
        ``wait_for_height`` wake up then)."""
        if height != self._height:
            self._height = height
            self._encoded = encode_message(Status(height, block_id))
            if self._moved is not None:
                self._moved.set()
                self._moved = None

    async def wait_for_height(self, height: int) -> None:
        """Return once the committed height is at least ``height`` (bound the wait with a
        cancel scope)."""
        while self._height < height:
            if self._moved is None:
                self._moved = trio.Event()
            await self._moved.wait()

    def encoded(self) -> bytes:
        """The current ``Status`` message."""
        return self._encoded


def form_validator(topic: str, max_block_bytes: int) -> MessageValidator:
    """A network validator for ``topic``: accepts what decodes as a message of that topic
    within its size limit (form only: an early or stale message is accepted and left to the
    core, since gossipsub remembers a rejection for minutes)."""

    def validate(data: bytes) -> Verdict:
        try:
            decode_inbound(topic, data, max_block_bytes)
        except PeerFault:
            return Verdict.REJECT
        return Verdict.ACCEPT

    return validate


class NodeRuntime:
    """Drives one ``NodeCore`` over a ``RuntimeNetwork`` (see the module docstring); also
    the ``node.api.NodeGateway`` the HTTP API serves."""

    def __init__(
        self,
        core: NodeCore,
        network: RuntimeNetwork,
        clock: Clock,
        *,
        identity: NodeIdentity,
        metrics: NodeMetrics,
        max_block_bytes: int,
        limits: RuntimeLimits | None = None,
        tip: TipBoard | None = None,
    ) -> None:
        self._core = core
        self._network = network
        self._clock = clock
        self.identity = identity
        self.node_metrics = metrics
        self._max_block_bytes = max_block_bytes
        self.limits = limits if limits is not None else RuntimeLimits()
        self.tip = tip if tip is not None else TipBoard(core.height, core.last_block_id)
        self._chain_id = core.chain_id  # immutable: read once here, never from other tasks
        self._verify_limiter = trio.CapacityLimiter(self.limits.verify_threads)
        # Clients' submissions queue for a slot, not in the inbox: a vote never waits behind
        # more than ``submission_slots`` of them (a closed-loop load once kept hundreds of
        # 256-transaction batches ahead of consensus, and rounds timed out).
        self._submission_slots = trio.Semaphore(self.limits.submission_slots)
        self.tx_batches = TxBatchVerifier(
            chain_id=self._chain_id,
            max_block_bytes=max_block_bytes,
            clock=clock,
            limiter=self._verify_limiter,
            max_queued=self.limits.tx_batch_queue,
            known=self._knows_tx,
        )
        """Peers' transaction batches, verified in worker threads."""
        self._recently_committed: deque[bytes] = deque()
        self._recently_committed_set: set[bytes] = set()
        self._inbox_send, self._inbox_receive = trio.open_memory_channel[InboxItem](
            self.limits.inbox_items
        )
        self._timers: TimerQueue[TimerKey] = TimerQueue(self.limits.max_timers)
        self._discipline = PeerDiscipline()
        self._response_codec = response_codec(self.limits.sync_response_max_bytes)
        self._fetches = 0
        self._nursery: trio.Nursery | None = None
        self.commit_feed = CommitFeed(self.limits.max_commit_subscribers)
        """What each committed height did, for the node's extensions."""
        self._started_s = 0.0  # trio's clock when ``run`` started
        self._carry: dict[type, Callable[[Any], None]] = {
            Broadcast: self._broadcast,
            SendTo: self._send_to,
            SetTimer: self._set_timer,
            RequestBlocks: self._request_blocks,
            BlockCommitted: self._committed,
            PeerMisbehaved: self._misbehaved,
            EquivocationDetected: self._equivocation,
            TxResult: _ignore,
        }

    # -- running ------------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Drive the core until cancelled (this task is the core task). Start it once the
        network serves: ``await nursery.start(runtime.run)``. Raises ``ChainHaltError``."""
        self._started_s = trio.current_time()
        self._install_network_hooks()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._pump_network)
            nursery.start_soon(self.tx_batches.run, self._deliver)
            nursery.start_soon(self._watch_peers)
            self._handle(Start(self._clock.now_ms()))
            task_status.started()
            await self._core_loop()

    def _install_network_hooks(self) -> None:
        for topic in TOPICS:
            self._network.set_validator(topic, form_validator(topic, self._max_block_bytes))
            self._network.subscribe(topic)
        self._network.register_handler(SYNC_PROTOCOL, self._serve_sync)

    async def _core_loop(self) -> None:
        receive = self._inbox_receive
        while True:
            self._fire_due_timers()
            due = self._timers.next_due()
            with trio.move_on_at(math.inf if due is None else due):
                item = await receive.receive()
                self._process(item)  # synchronous: no cancellation can land inside

    def _fire_due_timers(self) -> None:
        for key in self._timers.pop_due(trio.current_time()):
            self._handle(TimerFired(key, self._clock.now_ms()))

    def _process(self, item: InboxItem) -> None:
        if isinstance(item, Handle):
            self._handle(item.event)
        elif isinstance(item, SubmitTx):
            self._submit(item)
        elif isinstance(item, SubmitTxs):
            self._submit_batch(item)
        else:
            self._ask_core(item)

    def _ask_core(self, item: Ask) -> None:
        """Answer a read-only query. A query the chain refuses (``QueryError``,
        ``BadQueryError``) is the asker's to report; any other error is a bug, but it changed
        nothing: the asker gets the error and the node goes on (an event that raises stops
        it)."""
        try:
            answer = self._answer(item.query)
        except (QueryError, BadQueryError) as exc:
            item.reply.fail(exc)
        except Exception as exc:
            logger.exception("a query failed", extra=fields(query=type(item.query).__name__))
            item.reply.fail(exc)
        else:
            item.reply.set(answer)

    def _handle(self, event: Event) -> list[Action]:
        actions = self._core.handle(event)  # ChainHaltError ends the node
        for action in actions:
            carry = self._carry.get(type(action))
            if carry is None:  # the core grew an action this runtime does not know: a bug
                raise TypeError(f"no way to carry out {type(action).__name__}")
            carry(action)
        self.tip.update(self._core.height, self._core.last_block_id)
        return actions

    def _submit(self, item: SubmitTx) -> None:
        actions = self._handle(TxSubmitted(item.raw, self._clock.now_ms()))
        result = next((a for a in actions if isinstance(a, TxResult)), None)
        if result is None:  # the core answers every TxSubmitted: a broken contract
            item.reply.fail(RuntimeError("the core gave no TxResult"))
            return
        if result.accepted:
            self.node_metrics.tx_submitted(result.tx_hash, trio.current_time())
        item.reply.set(result)

    def _submit_batch(self, item: SubmitTxs) -> None:
        actions = self._handle(item.event)
        results = [a for a in actions if isinstance(a, TxResult)]
        if len(results) != len(item.event.results):  # one answer per tx: a broken contract
            item.reply.fail(RuntimeError("the core gave one TxResult per transaction"))
            return
        now_s = trio.current_time()
        for result in results:
            if result.accepted:
                self.node_metrics.tx_submitted(result.tx_hash, now_s)
        item.reply.set(results)

    def _answer(self, query: Query) -> object:
        core = self._core
        if isinstance(query, StatusQuery):
            return CoreState(core.status(), dataclasses.replace(core.stats))
        if isinstance(query, NonceQuery):
            return core.next_nonce(query.sender)
        if isinstance(query, BlockQuery):
            height = core.height if query.height is None else query.height
            return core.committed_block(height) if 1 <= height <= core.height else None
        if isinstance(query, SyncQuery):
            return core.blocks_for_sync(query.from_height, query.max_blocks, query.max_bytes)
        if isinstance(query, StateRead):
            return query.read(core.queries.state())
        return _answer_client_query(core.queries, query)

    # -- carrying out actions -----------------------------------------------------------------

    def _broadcast(self, action: Broadcast) -> None:
        try:
            self._network.broadcast(action.topic, action.data)
        except NetworkError as exc:
            logger.error("broadcast failed", extra=fields(topic=action.topic, error=str(exc)))
        if self.limits.consensus_direct and action.topic == TOPIC_CONSENSUS:
            for peer in self._network.peers():
                self._send_to(SendTo(peer, action.topic, action.data))

    def _send_to(self, action: SendTo) -> None:
        try:
            self._network.send(action.peer, action.topic, action.data)
        except UnknownPeerError:
            logger.debug("send to an unknown peer dropped", extra=fields(peer=action.peer))
        except NetworkError as exc:
            logger.warning("send failed", extra=fields(peer=action.peer, error=str(exc)))

    def _set_timer(self, action: SetTimer) -> None:
        due_s = trio.current_time() + action.delay_ms / 1000
        try:
            self._timers.set(action.key, due_s)
        except TimerOverflowError:
            committed = self._core.height
            dropped = self._timers.discard(
                lambda key: key.kind in MOOT_TIMER_KINDS and key.height <= committed
            )
            logger.warning("timer queue full", extra=fields(moot_timers_dropped=dropped))
            self._timers.set(action.key, due_s)  # still full: a bug; let it raise

    def _request_blocks(self, action: RequestBlocks) -> None:
        if self._nursery is None or self._fetches >= self.limits.max_sync_fetches:
            logger.debug("block request not sent: too many in flight")
            return
        self._fetches += 1
        self._nursery.start_soon(self._fetch_blocks, action)

    def _knows_tx(self, tx_hash: bytes) -> bool:
        """True if the core holds ``tx_hash`` in its mempool or committed it lately."""
        return tx_hash in self._recently_committed_set or self._core.holds_tx(tx_hash)

    def _remember_committed(self, action: BlockCommitted) -> None:
        recent, known = self._recently_committed, self._recently_committed_set
        for receipt in action.receipts:
            recent.append(receipt.tx_hash)
            known.add(receipt.tx_hash)
        while len(recent) > MAX_RECENTLY_COMMITTED_TXS:
            known.discard(recent.popleft())

    def _committed(self, action: BlockCommitted) -> None:
        self._remember_committed(action)
        self.commit_feed.publish(action)
        interval_s = self.node_metrics.block_committed(action, trio.current_time())
        logger.info(
            "committed",
            extra=fields(
                height=action.height,
                round=action.round,
                block_id=action.block_id.hex(),
                txs=action.num_txs,
                interval_ms=None if interval_s is None else round(interval_s * 1000),
                app_state_root=action.app_state_root.hex(),
            ),
        )

    def _misbehaved(self, action: PeerMisbehaved) -> None:
        self.node_metrics.misbehaved(action.offence)
        logger.warning(
            "peer misbehaved",
            extra=fields(peer=action.peer, offence=action.offence.value, reason=action.reason),
        )
        reason = self._discipline.judge(action, self._clock.now_ms())
        if reason is not None:
            logger.warning("banning peer", extra=fields(peer=action.peer, reason=reason))
            self._network.ban(action.peer, reason)

    def _equivocation(self, action: EquivocationDetected) -> None:
        self.node_metrics.equivocations.inc()
        evidence = action.evidence
        logger.error(
            "equivocation detected",
            extra=fields(
                validator=evidence.vote_a.validator.hex(),
                height=evidence.vote_a.height,
                round=evidence.vote_a.round,
            ),
        )

    # -- helper tasks -------------------------------------------------------------------------

    async def _pump_network(self) -> None:
        network, batch = self._network, self.limits.receive_batch_messages
        while True:
            seen = network.arrivals
            messages = network.receive(batch)
            for message in messages:
                if message.topic == TOPIC_TXS:
                    self.tx_batches.offload(message)  # verified in threads, then handed over
                    continue
                event = MessageReceived(
                    message.sender, message.topic, message.data, self._clock.now_ms()
                )
                await self._inbox_send.send(Handle(event))
            if len(messages) < batch:
                await network.wait_arrival(seen)

    async def _deliver(self, event: Event) -> None:
        await self._inbox_send.send(Handle(event))

    async def _watch_peers(self) -> None:
        known: set[PeerId] = set()
        while True:
            current = set(self._network.peers())
            for peer in sorted(current - known):
                await self._peer_joined(peer)
            for peer in sorted(known - current):
                logger.info("peer disconnected", extra=fields(peer=peer))
                await self._inbox_send.send(Handle(PeerDisconnected(peer, self._clock.now_ms())))
            known = current
            await trio.sleep(self.limits.peer_poll_interval_s)

    async def _peer_joined(self, peer: PeerId) -> None:
        raw = self._network.peer_status(peer)
        status: object = None
        if raw:
            try:
                status = decode_message(raw)
            except DecodeError:
                status = None
        if not isinstance(status, Status):
            logger.info("peer connected", extra=fields(peer=peer))
            return
        logger.info("peer connected", extra=fields(peer=peer, height=status.height))
        event = PeerStatus(peer, status.height, status.last_block_id, self._clock.now_ms())
        await self._inbox_send.send(Handle(event))

    async def _fetch_blocks(self, action: RequestBlocks) -> None:
        try:
            blocks = await self._request_sync(action)
            if blocks is not None:
                event = BlocksReceived(action.peer, blocks, self._clock.now_ms())
                await self._inbox_send.send(Handle(event))
        finally:
            self._fetches -= 1

    async def _request_sync(self, action: RequestBlocks) -> tuple[bytes, ...] | None:
        max_blocks = max(1, min(action.max_blocks, MAX_SYNC_BLOCKS))
        request = SYNC_REQUEST_CODEC.encode(SyncRequest(action.from_height, max_blocks))
        timeout_ms = self.limits.sync_request_timeout_ms
        try:
            data = await self._network.request(action.peer, SYNC_PROTOCOL, request, timeout_ms)
        except NetworkError as exc:
            logger.info("block request failed", extra=fields(peer=action.peer, error=str(exc)))
            return None
        try:
            return self._response_codec.decode(data).blocks
        except DecodeError as exc:
            report = PeerMisbehaved(action.peer, Offence.MALFORMED, f"sync response: {exc}")
            self._misbehaved(report)
            return None

    async def _serve_sync(self, peer: PeerId, data: bytes) -> bytes:
        """The block-sync handler: blocks from this node's store, within one frame."""
        try:
            request = SYNC_REQUEST_CODEC.decode(data)
        except DecodeError as exc:
            raise RequestRejectedError(f"not a sync request: {exc}") from exc
        if request.from_height < 1 or request.max_blocks < 1:
            raise RequestRejectedError("from_height and max_blocks must be >= 1")
        budget = block_budget_bytes(self.limits.sync_response_max_bytes, request.max_blocks)
        query = SyncQuery(request.from_height, request.max_blocks, budget)
        blocks = await self._ask(query)
        assert isinstance(blocks, tuple)
        return self._response_codec.encode(SyncResponse(blocks))

    # -- the gateway (node.api.NodeGateway) ---------------------------------------------------

    async def _ask(self, query: Query) -> object:
        item = Ask(query)
        await self._send_item(item)
        return await item.reply.wait()

    async def _send_item(self, item: InboxItem) -> None:
        try:
            await self._inbox_send.send(item)
        except (trio.ClosedResourceError, trio.BrokenResourceError) as exc:
            raise GatewayBusyError("the node is stopping") from exc

    async def snapshot(self) -> NodeSnapshot:
        answer = await self._ask(StatusQuery())
        assert isinstance(answer, CoreState)
        status, stats = answer.status, answer.stats
        network = self._network
        return NodeSnapshot(
            moniker=self.identity.moniker,
            version=self.identity.version,
            peer_id=network.local_peer,
            validator_key=self.identity.validator_key,
            listen_addrs=network.listen_addrs,
            peers=network.peers(),
            status=status,
            stats=stats,
            network=network.snapshot(),
            uptime_s=trio.current_time() - self._started_s,
        )

    async def submit_tx(self, raw: bytes) -> TxResult:
        item = SubmitTx(raw, Reply())
        async with self._submission_slots:
            await self._send_item(item)
            return await item.reply.wait()

    async def submit_txs(self, raws: Sequence[bytes]) -> list[TxResult]:
        """Verify a client's batch in a worker thread (decoding and Ed25519 off the core
        task; PyNaCl releases the GIL), then admit it: one ``TxResult`` per transaction."""
        if len(raws) > MAX_TXS_PER_BATCH:
            raise ValueError(f"more than {MAX_TXS_PER_BATCH} transactions in one batch")
        results = await trio.to_thread.run_sync(
            verify_transactions, raws, self._chain_id, limiter=self._verify_limiter
        )
        hashes = tuple(
            r.tx_hash if isinstance(r, VerifiedTx) else tx_hash(raw)
            for r, raw in zip(results, raws, strict=True)
        )
        event = VerifiedTxsSubmitted(hashes, tuple(results), self._clock.now_ms())
        item = SubmitTxs(event, Reply())
        async with self._submission_slots:
            await self._send_item(item)
            return await item.reply.wait()

    async def next_nonce(self, sender: bytes) -> int:
        answer = await self._ask(NonceQuery(sender))
        assert isinstance(answer, int)
        return answer

    async def committed_block(self, height: int | None) -> CommittedBlock | None:
        answer = await self._ask(BlockQuery(height))
        assert answer is None or isinstance(answer, CommittedBlock)
        return answer

    async def metrics(self) -> bytes:
        snapshot = await self.snapshot()
        self.node_metrics.observe_status(snapshot.status, snapshot.stats, len(snapshot.peers))
        return self.node_metrics.render()

    async def module_state(self, module: str, path: str, height: int | None) -> ModuleState:
        answer = await self._ask(ModuleStateQuery(module, path, height))
        assert isinstance(answer, ModuleState)
        return answer

    async def module_entries(self, module: str, path: str | None, limit: int) -> ModuleEntries:
        answer = await self._ask(ModuleEntriesQuery(module, path, limit))
        assert isinstance(answer, ModuleEntries)
        return answer

    async def events(self, after: EventCursor, kind_prefix: str, limit: int) -> EventPage:
        answer = await self._ask(EventsQuery(after, kind_prefix, limit))
        assert isinstance(answer, EventPage)
        return answer

    async def committed_tx(self, tx_hash: bytes) -> CommittedTx | None:
        answer = await self._ask(TxQuery(tx_hash))
        assert answer is None or isinstance(answer, CommittedTx)
        return answer

    async def wait_for_height(self, height: int) -> None:
        await self.tip.wait_for_height(height)

    async def ask_state(self, item: StateRead) -> object:
        """An extension's read of the committed state (``node.runtime.services``)."""
        return await self._ask(item)

    def services(self) -> RuntimeServices:
        """What this node offers its extensions (``node.runtime.extension.NodeServices``)."""
        return RuntimeServices(self, self._network, self._core.chain_id)


def _answer_client_query(
    queries: ChainQueries,
    query: ModuleStateQuery | ModuleEntriesQuery | EventsQuery | TxQuery,
) -> object:
    """A client's read-only query of the chain (``node.chain.queries``)."""
    if isinstance(query, ModuleStateQuery):
        return queries.module_state(query.module, query.path, query.height)
    if isinstance(query, ModuleEntriesQuery):
        return queries.module_entries(query.module, query.path, query.limit)
    if isinstance(query, EventsQuery):
        return queries.events(query.after, query.kind_prefix, query.limit)
    return queries.committed_tx(query.tx_hash)


def _ignore(action: object) -> None:
    """Actions answered elsewhere (``TxResult`` goes back to its submitter)."""

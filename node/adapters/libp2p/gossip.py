"""Gossip on a ``Libp2pNetwork``: subscriptions, topic validation, publishing, our own order.

- subscriptions follow the node's topics in the background (subscribing is async in
  libp2p); a topic left stays subscribed in libp2p for ``unsubscribe_linger_ms``, its
  messages dropped, since peers refuse a GRAFT for a while after a node leaves a topic;
  libp2p's subscription channels are drained by our own tasks;
- topic validators are async and never raise (pitfall 8) and judge form only (pitfall 9):
  size, our envelope, then the node's validator (``Inbound.judge``); senders of garbage are
  penalised, banned peers' messages refused;
- publishing: ``broadcast`` queues and returns; one task publishes, pausing while a peer's
  libp2p queue is nearly full, for a bounded time (pitfall 6);
- order: each payload goes in an envelope with a start-up epoch and a per-topic sequence
  (``node.adapters.wire``), and each publisher's messages are put back in order
  (``node.adapters.resequencer``) before they are delivered, as the ``Network`` port
  promises per-sender order.
"""

from __future__ import annotations

import logging
import math
import secrets
from typing import Any, Final

import trio
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub

from node.adapters.config import Libp2pNetworkConfig
from node.adapters.errors import MalformedMessageError, TooManyTopicsError
from node.adapters.libp2p.host import Stack, now_ms
from node.adapters.libp2p.inbound import MAX_BROADCAST_TOPICS, Inbound
from node.adapters.libp2p.peers import Peers
from node.adapters.metrics import Drop, NetworkCounters
from node.adapters.peer_scoring import Offense
from node.adapters.queues import BoundedQueue
from node.adapters.resequencer import Resequencer
from node.adapters.wire import (
    EPOCH_BYTES,
    GOSSIP_HEADER_BYTES,
    MAX_SEQUENCE,
    decode_gossip,
    encode_gossip,
)
from node.ports import InboundMessage, PeerId

logger = logging.getLogger(__name__)

PUBLISH_BATCH_MESSAGES: Final = 64
PUBLISH_POLL_S: Final = 0.001  # libp2p offers no event for "peer queue has room"


class Gossip:
    """The node's topics and broadcasts over the running Pubsub."""

    def __init__(
        self,
        config: Libp2pNetworkConfig,
        counters: NetworkCounters,
        stack: Stack,
        peers: Peers,
        inbound: Inbound,
        *,
        local: PeerId,
    ) -> None:
        self.config = config
        self._counters = counters
        self._stack = stack
        self._peers = peers
        self._inbound = inbound
        self._local = local
        # Unique per start even under a seeded rng: receivers tell a restart by it.
        self._epoch = secrets.token_bytes(EPOCH_BYTES)
        self._topics: set[str] = set()
        self._leaving: dict[str, int] = {}  # topics left, still subscribed in libp2p: since (ms)
        self._sequences: dict[str, int] = {}
        self._broadcasts: BoundedQueue[tuple[str, bytes]] = BoundedQueue(
            config.broadcast_queue_messages, config.broadcast_queue_bytes
        )
        self._reorder: Resequencer[InboundMessage] = Resequencer(config.gossip.reorder_window_ms)
        self._topic_lot = trio.lowlevel.ParkingLot()
        self._broadcast_lot = trio.lowlevel.ParkingLot()
        self._reorder_lot = trio.lowlevel.ParkingLot()

    # -- what the network asks --------------------------------------------------------------

    def subscribe(self, topic: str) -> None:
        """Receive broadcasts on ``topic`` (a valid topic; see ``Libp2pNetwork``)."""
        if topic not in self._topics and len(self._topics) >= self.config.max_topics:
            raise TooManyTopicsError(f"at most {self.config.max_topics} subscriptions")
        self._topics.add(topic)
        self._leaving.pop(topic, None)
        self._topic_lot.unpark_all()

    def unsubscribe(self, topic: str) -> None:
        """Stop receiving broadcasts on ``topic`` (a valid topic; see ``Libp2pNetwork``)."""
        if topic in self._topics and self._stack.running is not None:
            self._leaving[topic] = now_ms()
            while len(self._leaving) > self.config.max_topics:  # the oldest goes for good now
                del self._leaving[next(iter(self._leaving))]
        self._topics.discard(topic)
        self._topic_lot.unpark_all()

    def broadcast(self, topic: str, payload: bytes) -> None:
        """Queue ``payload`` (checked already) for publishing on ``topic``."""
        sequence = self._next_sequence(topic)
        message = encode_gossip(self._epoch, sequence, payload)
        if not self._broadcasts.push((topic, message), len(message)):
            self._counters.drop(Drop.OUTBOUND_FULL)
            return
        self._counters.message_out(topic, len(payload))
        self._broadcast_lot.unpark_all()

    def subscriptions(self) -> tuple[str, ...]:
        """The topics this node receives broadcasts on, sorted."""
        return tuple(sorted(self._topics))

    def gossip_topics(self) -> tuple[str, ...]:
        """The topics libp2p is subscribed to now, sorted."""
        if self._stack.running is None:
            return ()
        return tuple(sorted(self._stack.running.pubsub.topic_ids))

    def gossip_peers(self, topic: str) -> tuple[PeerId, ...]:
        """Peers libp2p knows to be subscribed to ``topic``, sorted."""
        if self._stack.running is None:
            return ()
        known = self._stack.running.pubsub.peer_topics.get(topic, ())
        return tuple(sorted(str(p.to_base58()) for p in known))

    def mesh_peers(self, topic: str) -> tuple[PeerId, ...]:
        """Peers in our gossip mesh for ``topic``, sorted."""
        if self._stack.running is None:
            return ()
        mesh = self._stack.running.router.mesh.get(topic, ())
        return tuple(sorted(str(p.to_base58()) for p in mesh))

    def reordered(self) -> int:
        """Gossip messages held back for order, or released after their gap's window."""
        return self._reorder.stats.held + self._reorder.stats.late

    def start(self, nursery: trio.Nursery) -> None:
        """Start following the topics, publishing, and releasing held messages."""
        nursery.start_soon(self._subscription_loop)
        nursery.start_soon(self._publish_loop)
        nursery.start_soon(self._reorder_loop)

    # -- subscriptions ----------------------------------------------------------------------

    async def _subscription_loop(self) -> None:
        """Make libp2p's subscriptions follow ``self._topics`` (subscribing is async there).

        A topic left is kept subscribed in libp2p for ``unsubscribe_linger_ms`` (its messages
        are dropped here meanwhile): leaving a gossipsub topic makes peers refuse our GRAFT
        for ``unsubscribe_backoff_s``, so a quick re-subscription would be left out of the
        mesh."""
        running = self._stack.require()
        active: dict[str, trio.CancelScope] = {}
        while True:
            wanted = self._topics | self._lingering_topics()
            for topic in sorted(wanted - active.keys()):
                running.pubsub.set_topic_validator(topic, self._validate_gossip, True)
                subscription = await running.pubsub.subscribe(topic)
                active[topic] = await running.nursery.start(
                    self._drain_subscription, topic, subscription
                )
            for topic in sorted(active.keys() - wanted):
                active.pop(topic).cancel()
                await running.pubsub.unsubscribe(topic)
                running.pubsub.remove_topic_validator(topic)
            if self._topics | self._leaving.keys() == active.keys():
                linger_ms = self.config.gossip.unsubscribe_linger_ms
                next_ms = min(self._leaving.values(), default=None)
                deadline_s = math.inf if next_ms is None else (next_ms + linger_ms) / 1000
                with trio.move_on_at(deadline_s):
                    await self._topic_lot.park()

    def _lingering_topics(self) -> set[str]:
        """Topics left recently (dropping those whose linger is over)."""
        expired_before = now_ms() - self.config.gossip.unsubscribe_linger_ms
        for topic in [t for t, since in self._leaving.items() if since <= expired_before]:
            del self._leaving[topic]
        return set(self._leaving)

    async def _drain_subscription(
        self, topic: str, subscription: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            while True:
                try:
                    message = await subscription.get()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    return
                self._on_gossip(topic, message)

    # -- validation and order ---------------------------------------------------------------

    async def _validate_gossip(self, forwarder: ID, message: rpc_pb2.Message) -> bool:
        """libp2p's topic validator: async, and never raises (pitfalls 8 and 9)."""
        try:
            return self._check_gossip(str(forwarder.to_base58()), message)
        except Exception:
            logger.exception("gossip validation failed unexpectedly")
            self._counters.drop(Drop.VALIDATOR_ERROR)
            return False

    def _check_gossip(self, forwarder: PeerId, message: rpc_pb2.Message) -> bool:
        if forwarder == self._local:
            return True  # our own broadcast, checked when it was queued
        if self._peers.is_banned(forwarder):
            self._counters.drop(Drop.BANNED)
            return False
        if len(message.data) > self.config.max_message_bytes + GOSSIP_HEADER_BYTES:
            self._counters.drop(Drop.INVALID)
            self._peers.penalize(forwarder, Offense.INVALID_MESSAGE, "oversize gossip message")
            return False
        try:
            envelope = decode_gossip(message.data)
        except MalformedMessageError as exc:
            self._counters.drop(Drop.INVALID)
            self._peers.penalize(forwarder, Offense.MALFORMED_MESSAGE, str(exc))
            return False
        return all(
            self._inbound.judge(forwarder, topic, envelope.data) for topic in message.topicIDs
        )

    def _on_gossip(self, topic: str, message: rpc_pb2.Message) -> None:
        try:
            origin = str(ID(message.from_id).to_base58())
            envelope = decode_gossip(message.data)
        except Exception:  # validated already; a failure here would be a libp2p oddity
            self._counters.drop(Drop.INVALID)
            return
        if origin == self._local:
            return  # libp2p hands our own publishes to our subscription too
        if topic not in self._topics:
            self._counters.drop(Drop.NOT_SUBSCRIBED)
            return
        item = InboundMessage(origin, topic, envelope.data)
        released = self._reorder.push(
            origin, topic, envelope.epoch, envelope.sequence, item, now_ms=now_ms()
        )
        for ready in released:
            self._inbound.deliver(ready)
        self._reorder_lot.unpark_all()

    async def _reorder_loop(self) -> None:
        """Release held gossip when its gap's window ends."""
        while True:
            deadline_ms = self._reorder.next_deadline_ms()
            if deadline_ms is None:
                await self._reorder_lot.park()
                continue
            with trio.move_on_at(deadline_ms / 1000):
                await self._reorder_lot.park()
            for message in self._reorder.expire(now_ms()):
                self._inbound.deliver(message)

    # -- publishing -------------------------------------------------------------------------

    async def _publish_loop(self) -> None:
        running = self._stack.require()
        while True:
            batch = self._broadcasts.pop_many(PUBLISH_BATCH_MESSAGES)
            if not batch:
                await self._broadcast_lot.park()
                continue
            for topic, message in batch:
                await self._wait_for_publish_room(running.pubsub)
                try:
                    await running.pubsub.publish(topic, message)
                except Exception:
                    logger.exception("publishing on %s failed", topic)
                    self._counters.drop(Drop.STREAM_FAILED)

    async def _wait_for_publish_room(self, pubsub: Pubsub) -> None:
        """Pause while a peer's libp2p queue is nearly full (it drops silently when full),
        but not for longer than the configured bound: a stalled peer loses messages instead
        of stalling every other peer."""
        high_water = self.config.gossip.publish_high_water_rpcs
        with trio.move_on_after(self.config.gossip.publish_backpressure_max_ms / 1000):
            while any(len(queue) >= high_water for queue in pubsub.peer_queues.values()):
                await trio.sleep(PUBLISH_POLL_S)

    def _next_sequence(self, topic: str) -> int:
        sequence = self._sequences.get(topic)
        if sequence is None:
            if len(self._sequences) >= MAX_BROADCAST_TOPICS:
                raise TooManyTopicsError(f"at most {MAX_BROADCAST_TOPICS} broadcast topics")
            sequence = 0
        self._sequences[topic] = (sequence + 1) % (MAX_SEQUENCE + 1)
        return sequence

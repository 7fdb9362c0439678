"""An in-memory network: a hub that connects endpoints (each a ``node.ports.Network``).

Deterministic: a sent message is queued *in flight* in global send order; ``deliver()``
moves in-flight messages to the receivers' inboxes in that same order (immediately on send
with ``auto_deliver=True``). Tests can hold messages in flight, cut links (messages on a cut
link are dropped when their turn to be delivered comes, as with a partition) and read what
was dropped. Every queue is bounded; overflow drops the message and counts it, as a real
network drops under load.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from node.codec import MAX_MESSAGE_BYTES
from node.errors import InvalidTopicError, MessageTooLargeError, UnknownPeerError
from node.ports import InboundMessage, PeerId, is_valid_topic

DEFAULT_MAX_INBOX_MESSAGES = 10_000
DEFAULT_MAX_IN_FLIGHT_MESSAGES = 100_000
MAX_PEERS = 4_096


@dataclass(slots=True)
class NetworkStats:
    """Counters of one hub."""

    sent: int = 0
    delivered: int = 0
    dropped_link_down: int = 0
    dropped_inbox_full: int = 0
    dropped_in_flight_full: int = 0


class MemoryNetwork:
    """The hub. ``join(peer_id)`` returns that peer's endpoint."""

    def __init__(
        self,
        *,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_inbox_messages: int = DEFAULT_MAX_INBOX_MESSAGES,
        max_in_flight_messages: int = DEFAULT_MAX_IN_FLIGHT_MESSAGES,
        auto_deliver: bool = True,
    ) -> None:
        self.max_message_bytes = max_message_bytes
        self.max_inbox_messages = max_inbox_messages
        self.max_in_flight_messages = max_in_flight_messages
        self.auto_deliver = auto_deliver
        self.stats = NetworkStats()
        self._endpoints: dict[PeerId, MemoryEndpoint] = {}
        self._in_flight: deque[tuple[PeerId, InboundMessage]] = deque()
        self._cut_links: set[tuple[PeerId, PeerId]] = set()

    def join(self, peer: PeerId) -> MemoryEndpoint:
        """Add a peer; ``ValueError`` if the id is taken or the hub is full."""
        if not isinstance(peer, str) or not peer:
            raise ValueError("a peer id is a non-empty str")
        if peer in self._endpoints:
            raise ValueError(f"peer {peer!r} already joined")
        if len(self._endpoints) >= MAX_PEERS:
            raise ValueError(f"a hub holds at most {MAX_PEERS} peers")
        endpoint = MemoryEndpoint(self, peer)
        self._endpoints[peer] = endpoint
        return endpoint

    def peer_ids(self) -> tuple[PeerId, ...]:
        """Every joined peer, sorted."""
        return tuple(sorted(self._endpoints))

    @property
    def in_flight(self) -> int:
        """Messages sent but not yet delivered or dropped."""
        return len(self._in_flight)

    def deliver(self, max_messages: int | None = None) -> int:
        """Deliver up to ``max_messages`` in-flight messages (all by default), oldest first;
        returns how many were handled (delivered or dropped)."""
        handled = 0
        while self._in_flight and (max_messages is None or handled < max_messages):
            receiver, message = self._in_flight.popleft()
            handled += 1
            if (message.sender, receiver) in self._cut_links:
                self.stats.dropped_link_down += 1
                continue
            self._endpoints[receiver].accept(message)
        return handled

    def cut(self, a: PeerId, b: PeerId) -> None:
        """Drop messages between ``a`` and ``b`` (both ways) until ``restore``."""
        self._cut_links.update({(a, b), (b, a)})

    def restore(self, a: PeerId, b: PeerId) -> None:
        """Carry messages between ``a`` and ``b`` again."""
        self._cut_links.difference_update({(a, b), (b, a)})

    def partition(self, *groups: tuple[PeerId, ...]) -> None:
        """Cut every link between peers of different groups."""
        for i, group in enumerate(groups):
            for other in groups[i + 1 :]:
                for a in group:
                    for b in other:
                        self.cut(a, b)

    def heal(self) -> None:
        """Restore every link."""
        self._cut_links.clear()

    def submit(self, receiver: PeerId, message: InboundMessage) -> None:
        """Queue one message for ``receiver`` (used by endpoints)."""
        self.stats.sent += 1
        if len(self._in_flight) >= self.max_in_flight_messages:
            self.stats.dropped_in_flight_full += 1
            return
        self._in_flight.append((receiver, message))
        if self.auto_deliver:
            self.deliver()

    def endpoint(self, peer: PeerId) -> MemoryEndpoint:
        """The endpoint of a joined peer (``UnknownPeerError`` otherwise)."""
        try:
            return self._endpoints[peer]
        except KeyError:
            raise UnknownPeerError(f"unknown peer {peer!r}") from None


class MemoryEndpoint:
    """One peer's view of a ``MemoryNetwork`` (implements ``node.ports.Network``)."""

    def __init__(self, hub: MemoryNetwork, peer: PeerId) -> None:
        self._hub = hub
        self._peer = peer
        self._topics: set[str] = set()
        self._inbox: deque[InboundMessage] = deque()

    @property
    def local_peer(self) -> PeerId:
        """This endpoint's peer id."""
        return self._peer

    @property
    def max_message_bytes(self) -> int:
        """The hub's message size limit."""
        return self._hub.max_message_bytes

    def peers(self) -> tuple[PeerId, ...]:
        """The other peers of the hub, sorted."""
        return tuple(p for p in self._hub.peer_ids() if p != self._peer)

    def subscribe(self, topic: str) -> None:
        """Receive broadcasts on ``topic``."""
        self._topics.add(_check_topic(topic))

    def unsubscribe(self, topic: str) -> None:
        """Stop receiving broadcasts on ``topic``."""
        self._topics.discard(_check_topic(topic))

    def is_subscribed(self, topic: str) -> bool:
        """True when this endpoint receives broadcasts on ``topic``."""
        return topic in self._topics

    def send(self, peer: PeerId, topic: str, data: bytes) -> None:
        """Queue ``data`` for ``peer``."""
        message = self._message(topic, data)
        if peer == self._peer:
            raise UnknownPeerError("a peer does not send to itself")
        self._hub.endpoint(peer)  # raises UnknownPeerError
        self._hub.submit(peer, message)

    def broadcast(self, topic: str, data: bytes) -> None:
        """Queue ``data`` for every other peer subscribed to ``topic`` (at send time)."""
        message = self._message(topic, data)
        for peer in self.peers():
            if self._hub.endpoint(peer).is_subscribed(topic):
                self._hub.submit(peer, message)

    def receive(self, max_messages: int) -> list[InboundMessage]:
        """Up to ``max_messages`` delivered messages, oldest first."""
        if max_messages < 1:
            raise ValueError(f"max_messages must be >= 1, got {max_messages}")
        count = min(max_messages, len(self._inbox))
        return [self._inbox.popleft() for _ in range(count)]

    def pending(self) -> int:
        """Delivered messages not yet received."""
        return len(self._inbox)

    def accept(self, message: InboundMessage) -> None:
        """Put a delivered message in the inbox (used by the hub)."""
        if len(self._inbox) >= self._hub.max_inbox_messages:
            self._hub.stats.dropped_inbox_full += 1
            return
        self._inbox.append(message)
        self._hub.stats.delivered += 1

    def _message(self, topic: str, data: bytes) -> InboundMessage:
        _check_topic(topic)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        if len(data) > self._hub.max_message_bytes:
            raise MessageTooLargeError(
                f"{len(data)} bytes exceeds the limit of {self._hub.max_message_bytes} bytes"
            )
        return InboundMessage(sender=self._peer, topic=topic, data=bytes(data))


def _check_topic(topic: str) -> str:
    if not is_valid_topic(topic):
        raise InvalidTopicError(f"invalid topic {topic!r}: 1..64 chars of [a-z0-9/_.-]")
    return topic

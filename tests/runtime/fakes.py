"""In-memory doubles for driving ``NodeRuntime`` s in one trio run on a virtual clock.

``FakeHub`` connects ``FakeNetwork`` endpoints (each a ``node.runtime.network
.RuntimeNetwork``): ``send``/``broadcast`` deliver at once, in order, to online endpoints
whose link is not cut; ``request`` awaits the peer's handler; validators judge deliveries;
``ban`` cuts the link and is recorded. ``VirtualClock`` reads trio's clock, so with
``autojump_clock`` block times advance with virtual time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from node.adapters.metrics import NetworkCounters
from node.errors import (
    PeerUnreachableError,
    RemoteError,
    RequestRejectedError,
    RequestTimeoutError,
    UnknownPeerError,
)
from node.ports import InboundMessage, MessageValidator, NetworkSnapshot, PeerId, Verdict
from node.runtime.network import RequestHandler

GENESIS_TIME_MS = 1_700_000_000_000


class VirtualClock:
    """Wall-clock milliseconds that follow trio's (virtual) clock."""

    def __init__(self, start_ms: int = GENESIS_TIME_MS) -> None:
        self.start_ms = start_ms

    def now_ms(self) -> int:
        return self.start_ms + int(trio.current_time() * 1000)


@dataclass
class FakeHub:
    """The medium; see the module docstring."""

    endpoints: dict[PeerId, FakeNetwork] = field(default_factory=dict)
    cut: set[frozenset[PeerId]] = field(default_factory=set)

    def join(self, name: str, status: Callable[[], bytes] = bytes) -> FakeNetwork:
        endpoint = FakeNetwork(self, name, status)
        self.endpoints[name] = endpoint
        return endpoint

    def linked(self, a: PeerId, b: PeerId) -> bool:
        one, other = self.endpoints.get(a), self.endpoints.get(b)
        return (
            one is not None
            and other is not None
            and one.online
            and other.online
            and frozenset((a, b)) not in self.cut
        )


class FakeNetwork:
    """One endpoint (see the module docstring)."""

    max_message_bytes = 4 * 1024 * 1024

    def __init__(self, hub: FakeHub, name: str, status: Callable[[], bytes]) -> None:
        self.hub = hub
        self.local_peer = name
        self.status_provider = status
        self.online = False
        self.topics: set[str] = set()
        self.inbox: deque[InboundMessage] = deque()
        self.arrivals = 0
        self.handlers: dict[str, RequestHandler] = {}
        self.validators: dict[str, MessageValidator] = {}
        self.bans: list[tuple[PeerId, str]] = []
        self.rejected: list[InboundMessage] = []
        self.sent: list[tuple[str, PeerId | None, str]] = []  # (kind, peer, topic)
        self._lot = trio.lowlevel.ParkingLot()

    # -- the Network port ---------------------------------------------------------------------

    def peers(self) -> tuple[PeerId, ...]:
        return tuple(sorted(p for p in self.hub.endpoints if p != self.local_peer and self._to(p)))

    def subscribe(self, topic: str) -> None:
        self.topics.add(topic)

    def unsubscribe(self, topic: str) -> None:
        self.topics.discard(topic)

    def send(self, peer: PeerId, topic: str, data: bytes) -> None:
        if peer not in self.hub.endpoints or peer == self.local_peer:
            raise UnknownPeerError(peer)
        self.sent.append(("send", peer, topic))
        if self._to(peer):
            self.hub.endpoints[peer].deliver(InboundMessage(self.local_peer, topic, data))

    def broadcast(self, topic: str, data: bytes) -> None:
        self.sent.append(("broadcast", None, topic))
        for peer in self.peers():
            receiver = self.hub.endpoints[peer]
            if topic in receiver.topics:
                receiver.deliver(InboundMessage(self.local_peer, topic, data))

    def receive(self, max_messages: int) -> list[InboundMessage]:
        count = min(max_messages, len(self.inbox))
        return [self.inbox.popleft() for _ in range(count)]

    # -- beyond the port ----------------------------------------------------------------------

    @property
    def listen_addrs(self) -> tuple[str, ...]:
        return (f"/memory/{self.local_peer}",)

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self.online = True
        try:
            task_status.started(self.listen_addrs)
            await trio.sleep_forever()
        finally:
            self.online = False

    def deliver(self, message: InboundMessage) -> None:
        validator = self.validators.get(message.topic)
        if validator is not None and validator(message.data) is not Verdict.ACCEPT:
            self.rejected.append(message)
            return
        self.inbox.append(message)
        self.arrivals += 1
        self._lot.unpark_all()

    async def wait_arrival(self, after: int) -> None:
        while self.arrivals <= after:
            await self._lot.park()

    def register_handler(self, protocol: str, handler: RequestHandler) -> None:
        self.handlers[protocol] = handler

    async def request(self, peer: PeerId, protocol: str, data: bytes, timeout_ms: int) -> bytes:
        if not self._to(peer):
            raise PeerUnreachableError(f"{peer} is not connected")
        handler = self.hub.endpoints[peer].handlers.get(protocol)
        if handler is None:
            raise RemoteError(f"{peer} does not serve {protocol}")
        with trio.move_on_after(timeout_ms / 1000):
            try:
                return await handler(self.local_peer, data)
            except RequestRejectedError as exc:
                raise RemoteError(str(exc)) from exc
        raise RequestTimeoutError(f"{peer} did not answer within {timeout_ms} ms")

    def set_validator(self, topic: str, validator: MessageValidator | None) -> None:
        if validator is None:
            self.validators.pop(topic, None)
        else:
            self.validators[topic] = validator

    def peer_status(self, peer: PeerId) -> bytes | None:
        endpoint = self.hub.endpoints.get(peer)
        return endpoint.status_provider() if endpoint is not None and self._to(peer) else None

    def ban(self, peer: PeerId, reason: str, duration_ms: int | None = None) -> object:
        self.bans.append((peer, reason))
        self.hub.cut.add(frozenset((self.local_peer, peer)))
        return None

    def snapshot(self) -> NetworkSnapshot:
        counters = NetworkCounters(bans=len(self.bans))
        return counters.snapshot(
            peers_connected=len(self.peers()),
            peers_ready=len(self.peers()),
            peers_banned=len(self.bans),
            inbound_queued=len(self.inbox),
        )

    def _to(self, peer: PeerId) -> bool:
        return self.hub.linked(self.local_peer, peer)

"""``ForwardingNetwork``: a ``RuntimeNetwork`` that hands every call to the one it wraps.

The test-only wrappers of the runtime's network (the fault gate of ``node.runtime.fault_gate``,
the lying peer of ``node.runtime.byzantine``) subclass it and override only what they
change; everything else reaches the wrapped network unchanged.
"""

from __future__ import annotations

from typing import Any

import trio

from node.ports import InboundMessage, MessageValidator, NetworkSnapshot, PeerId
from node.runtime.network import RequestHandler, RuntimeNetwork

__all__ = ["ForwardingNetwork"]


class ForwardingNetwork:
    """Forwards every ``RuntimeNetwork`` call to ``inner``."""

    def __init__(self, inner: RuntimeNetwork) -> None:
        self._inner = inner

    @property
    def local_peer(self) -> PeerId:
        return self._inner.local_peer

    @property
    def max_message_bytes(self) -> int:
        return self._inner.max_message_bytes

    @property
    def arrivals(self) -> int:
        return self._inner.arrivals

    @property
    def listen_addrs(self) -> tuple[str, ...]:
        return self._inner.listen_addrs

    def peers(self) -> tuple[PeerId, ...]:
        return self._inner.peers()

    def receive(self, max_messages: int) -> list[InboundMessage]:
        return self._inner.receive(max_messages)

    def send(self, peer: PeerId, topic: str, data: bytes) -> None:
        self._inner.send(peer, topic, data)

    def broadcast(self, topic: str, data: bytes) -> None:
        self._inner.broadcast(topic, data)

    def subscribe(self, topic: str) -> None:
        self._inner.subscribe(topic)

    def unsubscribe(self, topic: str) -> None:
        self._inner.unsubscribe(topic)

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await self._inner.serve(task_status=task_status)

    async def wait_arrival(self, after: int) -> None:
        await self._inner.wait_arrival(after)

    def register_handler(self, protocol: str, handler: RequestHandler) -> None:
        self._inner.register_handler(protocol, handler)

    async def request(self, peer: PeerId, protocol: str, data: bytes, timeout_ms: int) -> bytes:
        return await self._inner.request(peer, protocol, data, timeout_ms)

    def set_validator(self, topic: str, validator: MessageValidator | None) -> None:
        self._inner.set_validator(topic, validator)

    def peer_status(self, peer: PeerId) -> bytes | None:
        return self._inner.peer_status(peer)

    def ban(self, peer: PeerId, reason: str, duration_ms: int | None = None) -> object:
        return self._inner.ban(peer, reason, duration_ms)

    def snapshot(self) -> NetworkSnapshot:
        return self._inner.snapshot()

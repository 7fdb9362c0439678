"""``RuntimeNetwork``: what the runtime needs of its network, beyond the ``Network`` port.

``node.adapters.libp2p.Libp2pNetwork`` is the production implementation; tests may drive
the runtime over an in-memory one. The extra capabilities are: waiting for arrivals
(so the runtime never polls ``receive``), request/response (block sync), per-topic message
validators (form checks at the edge, so gossip never relays garbage), the status a peer
sent in its handshake, banning, and a counters snapshot for metrics. The values they use are
declared with the ports (``node.ports``: ``MessageValidator``, ``Verdict``,
``NetworkSnapshot``; ``node.errors``: ``RequestError`` and its kinds, ``RequestRejectedError``),
so the runtime names no adapter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from node.ports import MessageValidator, Network, NetworkSnapshot, PeerId

RequestHandler = Callable[[PeerId, bytes], Awaitable[bytes]]


class RuntimeNetwork(Network, Protocol):
    """The ``Network`` port plus the runtime's needs (see the module docstring)."""

    @property
    def arrivals(self) -> int:
        """How many messages were ever queued for ``receive``."""
        ...

    @property
    def listen_addrs(self) -> tuple[str, ...]:
        """Addresses peers can dial (ending in ``/p2p/<peer id>``)."""
        ...

    async def serve(self, *, task_status: Any = ...) -> None:
        """Run until cancelled; reports its listen addresses through ``task_status``."""
        ...

    async def wait_arrival(self, after: int) -> None:
        """Return once ``arrivals`` exceeds ``after``."""
        ...

    def register_handler(self, protocol: str, handler: RequestHandler) -> None:
        """Answer requests on ``protocol`` with ``handler`` (which raises
        ``RequestRejectedError`` to refuse one)."""
        ...

    async def request(self, peer: PeerId, protocol: str, data: bytes, timeout_ms: int) -> bytes:
        """``peer``'s answer to ``data`` on ``protocol`` (a ``NetworkError`` otherwise)."""
        ...

    def set_validator(self, topic: str, validator: MessageValidator | None) -> None:
        """Judge messages on ``topic`` with ``validator`` before delivering or relaying."""
        ...

    def peer_status(self, peer: PeerId) -> bytes | None:
        """The status ``peer`` sent in its handshake, or None."""
        ...

    def ban(self, peer: PeerId, reason: str, duration_ms: int | None = None) -> object:
        """Disconnect and refuse ``peer`` for a while."""
        ...

    def snapshot(self) -> NetworkSnapshot:
        """Every network counter at this moment."""
        ...

"""Extensions: services an application plugs into a running node (records custody, say).

The machinery knows nothing of what an extension does. It offers each one ``NodeServices``
— request/response protocols on the node's libp2p host, read-only queries of the latest
committed state, transaction submission, a bounded feed of what each committed block did —
and serves the HTTP routes the extension declares beside its own API. The composition root
(``node.cli``) builds the extensions of a node; ``run_node`` runs each one's ``run`` in the
node's nursery, after the network and the core are up, and stops them with the node.

Contracts:

- ``query(read)`` runs ``read`` on the core task against a ``StateReader`` of the last
  committed height (one height for the whole call); ``read`` must be quick and must not
  keep the reader.
- ``commits(max_buffered)`` gives a receiving channel of ``CommitNotice`` s, one per
  committed height in order. When a subscriber falls ``max_buffered`` notices behind, the
  runtime drops the oldest and marks the next one delivered with ``gap=True`` (the
  subscriber re-reads the state it depends on instead of trusting the notices it missed):
  a slow extension never blocks the core.
- ``register_handler(protocol, handler)``: as the network's (``node.runtime.network``);
  protocols are ``/bighealth/<name>/<version>``; a handler that raises answers the peer
  with an error, never stops the node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import trio

from node.api.http import Request, Response
from node.chain.actions import TxResult
from node.ports import PeerId
from node.runtime.network import RequestHandler
from node.types import Event

T = TypeVar("T")


class StateReader(Protocol):
    """Read access to the last committed application state."""

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None."""
        ...

    def iterate(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` entries under ``prefix``, in key order."""
        ...


@dataclass(frozen=True, slots=True)
class CommitNotice:
    """What a committed height did: its block events, then the events of its successful
    transactions, in order. ``gap``: notices before this one were dropped."""

    height: int
    time_ms: int
    events: tuple[Event, ...]
    gap: bool = False


class NodeServices(Protocol):
    """What the runtime offers an extension (see the module docstring)."""

    @property
    def chain_id(self) -> str:
        """The chain the node follows."""
        ...

    @property
    def local_peer(self) -> PeerId:
        """This node's libp2p peer id."""
        ...

    def connected_peers(self) -> tuple[PeerId, ...]:
        """Peers connected now."""
        ...

    def register_handler(self, protocol: str, handler: RequestHandler) -> None:
        """Answer requests on ``protocol`` with ``handler``."""
        ...

    async def request(self, peer: PeerId, protocol: str, data: bytes, timeout_ms: int) -> bytes:
        """``peer``'s answer on ``protocol`` (``NetworkError`` when it cannot be had)."""
        ...

    async def query(self, read: Callable[[StateReader], T]) -> T:
        """``read`` run against the last committed state, on the core task."""
        ...

    async def submit_tx(self, raw: bytes) -> TxResult:
        """Hand a signed transaction to the core (admission result)."""
        ...

    async def next_nonce(self, sender: bytes) -> int:
        """The nonce ``sender``'s next transaction needs here (pending ones counted)."""
        ...

    def commits(self, max_buffered: int) -> trio.MemoryReceiveChannel[CommitNotice]:
        """A new subscription to committed heights (see the module docstring)."""
        ...


Route = Callable[[Request, Any], Awaitable[Response]]
"""An HTTP route of an extension: the request and the ``re.Match`` of its path."""


@dataclass(frozen=True, slots=True)
class ExtensionRoute:
    """``method`` requests whose path matches ``path_pattern`` (a full-match regex) go to
    ``handler``."""

    method: str
    path_pattern: str
    handler: Route


class NodeExtension(Protocol):
    """A service plugged into a running node."""

    @property
    def name(self) -> str:
        """A short name for logs."""
        ...

    def routes(self) -> Sequence[ExtensionRoute]:
        """The HTTP routes it serves on the node's API."""
        ...

    async def run(self, services: NodeServices, *, task_status: Any = ...) -> None:
        """Start (``task_status.started()`` once its handlers are registered), then run
        until cancelled."""
        ...

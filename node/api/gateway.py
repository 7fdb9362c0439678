"""``NodeGateway``: what the HTTP API asks of a running node, as typed values.

The API owns the wire format (JSON, status codes); the node (``node.runtime.NodeRuntime``)
owns the answers, reading its core only from the core's own task. Every method may wait
for that task: callers bound the wait (the API's request timeout). ``GatewayBusyError``
means the node could not take the request now (answered 503). The chain's queries raise
their typed errors (``node.chain.queries``): ``UnknownModuleError`` and ``QueryError``
(nothing there: 404), ``BadQueryError`` (a request that cannot be answered as asked: 400).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from node.chain.actions import TxResult
from node.chain.event_feed import EventCursor, EventPage
from node.chain.queries import CommittedTx, ModuleEntries, ModuleState
from node.chain.status import NodeStats, NodeStatus
from node.errors import BigHealthError
from node.ports import NetworkSnapshot, PeerId
from node.types import CommittedBlock


class GatewayBusyError(BigHealthError):
    """The node cannot serve this request now (overloaded or stopping)."""


@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    """A consistent picture of the node for ``/status`` and ``/health``."""

    moniker: str
    version: str
    peer_id: PeerId
    validator_key: bytes | None
    listen_addrs: tuple[str, ...]
    peers: tuple[PeerId, ...]
    status: NodeStatus
    stats: NodeStats
    network: NetworkSnapshot | None
    uptime_s: float


class NodeGateway(Protocol):
    """The node as the API sees it (see the module docstring)."""

    async def snapshot(self) -> NodeSnapshot:
        """The node's status now."""
        ...

    async def submit_tx(self, raw: bytes) -> TxResult:
        """Admit an encoded transaction to the mempool (or say why not)."""
        ...

    async def submit_txs(self, raws: Sequence[bytes]) -> list[TxResult]:
        """Admit a batch of encoded transactions (at most ``MAX_TXS_PER_BATCH``): one
        ``TxResult`` per transaction, in order."""
        ...

    async def next_nonce(self, sender: bytes) -> int:
        """The nonce the next transaction of ``sender`` must carry here."""
        ...

    async def committed_block(self, height: int | None) -> CommittedBlock | None:
        """The committed block at ``height`` (None: the latest), if there is one."""
        ...

    async def metrics(self) -> bytes:
        """The Prometheus text exposition, gauges refreshed."""
        ...

    async def module_state(self, module: str, path: str, height: int | None) -> ModuleState:
        """A module's state at a query path, with its proof (``height`` None: latest)."""
        ...

    async def module_entries(self, module: str, path: str | None, limit: int) -> ModuleEntries:
        """At most ``limit`` entries of a module under a query path (None: all of it)."""
        ...

    async def events(self, after: EventCursor, kind_prefix: str, limit: int) -> EventPage:
        """A page of the event feed after ``after`` (``node.chain.event_feed``)."""
        ...

    async def committed_tx(self, tx_hash: bytes) -> CommittedTx | None:
        """The receipt of a transaction committed here, with where it is; None if not."""
        ...

    async def wait_for_height(self, height: int) -> None:
        """Return once the node has committed ``height`` (bound the wait)."""
        ...

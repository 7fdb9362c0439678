"""What other tasks hand the task that owns ``NodeCore``, and how they get answers.

The core has one owner task; nobody else calls it, not even to read. Other tasks put an
``InboxItem`` in the owner's bounded channel: a core ``Event`` to handle, a transaction or
a verified batch to submit (answered with ``TxResult`` s), or a read-only ``Query``. A
``Reply`` carries the answer back; a requester that gave up (timed out, cancelled) simply
never reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import trio

from node.chain.actions import TxResult
from node.chain.event_feed import EventCursor
from node.chain.events import Event, VerifiedTxsSubmitted
from node.chain.queries import CommittedState
from node.chain.status import NodeStats, NodeStatus

T = TypeVar("T")


class Reply(Generic[T]):
    """A one-shot answer: set once by the core's owner, awaited by the asker."""

    def __init__(self) -> None:
        self._done = trio.Event()
        self._value: T | None = None
        self._error: Exception | None = None

    def set(self, value: T) -> None:
        """Answer with ``value`` (only the first answer counts)."""
        if not self._done.is_set():
            self._value = value
            self._done.set()

    def fail(self, error: Exception) -> None:
        """Answer with an error the asker re-raises."""
        if not self._done.is_set():
            self._error = error
            self._done.set()

    async def wait(self) -> T:
        """The answer (waits for it; bound the wait with a cancel scope)."""
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # set() ran: it is a T


@dataclass(frozen=True, slots=True)
class Handle:
    """Hand ``event`` to the core and carry out its actions."""

    event: Event


@dataclass(frozen=True, slots=True)
class SubmitTx:
    """Submit an encoded transaction; ``reply`` gets its admission ``TxResult``."""

    raw: bytes
    reply: Reply[TxResult] = field(default_factory=Reply)


@dataclass(frozen=True, slots=True)
class SubmitTxs:
    """Submit a client's batch, already verified in a worker thread (``event``); ``reply``
    gets one ``TxResult`` per transaction, in order."""

    event: VerifiedTxsSubmitted
    reply: Reply[list[TxResult]] = field(default_factory=Reply)


@dataclass(frozen=True, slots=True)
class StatusQuery:
    """The core's ``status()`` and a copy of its counters (answered with a ``CoreState``)."""


@dataclass(frozen=True, slots=True)
class CoreState:
    """The answer to a ``StatusQuery``."""

    status: NodeStatus
    stats: NodeStats


@dataclass(frozen=True, slots=True)
class NonceQuery:
    """The nonce the next transaction of ``sender`` needs."""

    sender: bytes


@dataclass(frozen=True, slots=True)
class BlockQuery:
    """The committed block at ``height`` (None: the latest)."""

    height: int | None


@dataclass(frozen=True, slots=True)
class SyncQuery:
    """Encoded committed blocks for a peer's sync request (``NodeCore.blocks_for_sync``)."""

    from_height: int
    max_blocks: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class ModuleStateQuery:
    """A module's state at a query path, with its proof (``ChainQueries.module_state``)."""

    module: str
    path: str
    height: int | None


@dataclass(frozen=True, slots=True)
class ModuleEntriesQuery:
    """A module's entries under a query path (``ChainQueries.module_entries``)."""

    module: str
    path: str | None
    limit: int


@dataclass(frozen=True, slots=True)
class EventsQuery:
    """A page of the event feed (``ChainQueries.events``)."""

    after: EventCursor
    kind_prefix: str
    limit: int


@dataclass(frozen=True, slots=True)
class StateRead:
    """An extension's read of the committed state: ``read(reader)`` on the core task."""

    read: Callable[[CommittedState], object]


@dataclass(frozen=True, slots=True)
class TxQuery:
    """A committed transaction's receipt (``ChainQueries.committed_tx``)."""

    tx_hash: bytes


Query = (
    StatusQuery
    | NonceQuery
    | BlockQuery
    | SyncQuery
    | ModuleStateQuery
    | ModuleEntriesQuery
    | EventsQuery
    | TxQuery
    | StateRead
)


@dataclass(frozen=True, slots=True)
class Ask:
    """A read-only ``query``; ``reply`` gets the answer."""

    query: Query
    reply: Reply[object] = field(default_factory=Reply)


InboxItem = Handle | SubmitTx | SubmitTxs | Ask

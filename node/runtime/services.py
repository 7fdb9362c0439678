"""The runtime's side of extensions (``node.runtime.extension``): ``RuntimeServices`` and the
``CommitFeed`` that tells subscribers what each committed height did.

The feed never blocks the core task: ``publish`` hands each subscriber its notice without
waiting; a subscriber whose buffer is full misses it, and the next notice it does receive
is marked ``gap=True`` so it knows to re-read the state it depends on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeVar, cast

import trio

from node.chain.actions import BlockCommitted, TxResult
from node.ports import PeerId
from node.runtime.extension import CommitNotice, StateReader
from node.runtime.inbox import StateRead
from node.runtime.network import RequestHandler, RuntimeNetwork
from node.types import ResultCode

if TYPE_CHECKING:
    from node.runtime.node import NodeRuntime

T = TypeVar("T")
logger = logging.getLogger("node.runtime")

MAX_NOTICE_BUFFER: Final = 4_096
"""Largest buffer a commit subscription may ask for."""


def commit_notice(action: BlockCommitted, *, gap: bool = False) -> CommitNotice:
    """The notice of a committed height: block events, then every successful transaction's."""
    events = list(action.events)
    for receipt in action.receipts:
        if receipt.code is ResultCode.OK:
            events += receipt.events
    return CommitNotice(action.height, action.time_ms, tuple(events), gap)


class _Subscriber:
    __slots__ = ("missed", "send")

    def __init__(self, send: trio.MemorySendChannel[CommitNotice]) -> None:
        self.send = send
        self.missed = False


class CommitFeed:
    """Fans committed heights out to at most ``max_subscribers`` bounded channels."""

    def __init__(self, max_subscribers: int) -> None:
        self._max_subscribers = max_subscribers
        self._subscribers: list[_Subscriber] = []
        self.dropped = 0
        """Notices a slow subscriber missed (an operator's figure)."""

    def subscribe(self, max_buffered: int) -> trio.MemoryReceiveChannel[CommitNotice]:
        """A new subscription buffering at most ``max_buffered`` (1..4096) notices."""
        if not 1 <= max_buffered <= MAX_NOTICE_BUFFER:
            raise ValueError(f"max_buffered must be in 1..{MAX_NOTICE_BUFFER}")
        self._subscribers = [s for s in self._subscribers if not _closed(s)]
        if len(self._subscribers) >= self._max_subscribers:
            raise ValueError(f"at most {self._max_subscribers} commit subscribers")
        send, receive = trio.open_memory_channel[CommitNotice](max_buffered)
        self._subscribers.append(_Subscriber(send))
        return receive

    def publish(self, action: BlockCommitted) -> None:
        """Give every subscriber the notice of ``action`` (never waits)."""
        if not self._subscribers:
            return
        for subscriber in self._subscribers:
            notice = commit_notice(action, gap=subscriber.missed)
            try:
                subscriber.send.send_nowait(notice)
                subscriber.missed = False
            except trio.WouldBlock:
                subscriber.missed = True
                self.dropped += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # gone: pruned on the next subscribe


def _closed(subscriber: _Subscriber) -> bool:
    try:
        return subscriber.send.statistics().open_receive_channels == 0
    except trio.ClosedResourceError:
        return True


class RuntimeServices:
    """``NodeServices`` of a running node (``node.runtime.extension``)."""

    def __init__(self, runtime: NodeRuntime, network: RuntimeNetwork, chain_id: str) -> None:
        self._runtime = runtime
        self._network = network
        self._chain_id = chain_id

    @property
    def chain_id(self) -> str:
        """The chain the node follows."""
        return self._chain_id

    @property
    def local_peer(self) -> PeerId:
        """This node's peer id."""
        return self._network.local_peer

    def connected_peers(self) -> tuple[PeerId, ...]:
        """Peers connected now."""
        return self._network.peers()

    def register_handler(self, protocol: str, handler: RequestHandler) -> None:
        """Serve ``protocol`` with ``handler`` on the node's host."""
        self._network.register_handler(protocol, handler)

    async def request(self, peer: PeerId, protocol: str, data: bytes, timeout_ms: int) -> bytes:
        """``peer``'s answer on ``protocol``."""
        return await self._network.request(peer, protocol, data, timeout_ms)

    async def query(self, read: Callable[[StateReader], T]) -> T:
        """``read`` against the last committed state, on the core task."""
        answer = await self._runtime.ask_state(StateRead(cast(Callable[..., object], read)))
        return cast(T, answer)

    async def submit_tx(self, raw: bytes) -> TxResult:
        """Hand a signed transaction to the core."""
        return await self._runtime.submit_tx(raw)

    async def next_nonce(self, sender: bytes) -> int:
        """The nonce ``sender``'s next transaction needs here."""
        return await self._runtime.next_nonce(sender)

    def commits(self, max_buffered: int) -> trio.MemoryReceiveChannel[CommitNotice]:
        """A new subscription to committed heights."""
        return self._runtime.commit_feed.subscribe(max_buffered)

"""Verified consensus messages of heights this node has not started yet.

Peers that committed first send the next height's proposal and votes while this node is
still deciding (or pausing after its commit). They are kept here — not in the consensus
core's own buffer — so that they enter the core only after its ``StartHeight`` and therefore
land in that height's consensus log: a restart replays them with the height, never losing
an input that led to a signature.

Bounds: ``max_total`` messages and ``max_per_peer`` per sender; beyond them new messages are
dropped (gossip and the next rounds make up for them).
"""

from __future__ import annotations

from dataclasses import dataclass

from node.ports import PeerId
from node.types import Proposal, Vote


@dataclass(frozen=True, slots=True)
class FutureMessage:
    """A verified vote or proposal, its height and the peer it came from."""

    height: int
    sender: PeerId
    message: Vote | Proposal


class FutureMessages:
    """Messages by height, in arrival order, within the limits."""

    __slots__ = ("_by_peer", "_items", "_max_per_peer", "_max_total", "dropped")

    def __init__(self, max_total: int, max_per_peer: int) -> None:
        self._max_total = max_total
        self._max_per_peer = max_per_peer
        self._items: list[FutureMessage] = []
        self._by_peer: dict[PeerId, int] = {}
        self.dropped = 0
        """Messages refused by a limit."""

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: FutureMessage) -> bool:
        """Keep ``item``; False (dropped) at a limit."""
        count = self._by_peer.get(item.sender, 0)
        if len(self._items) >= self._max_total or count >= self._max_per_peer:
            self.dropped += 1
            return False
        self._items.append(item)
        self._by_peer[item.sender] = count + 1
        return True

    def take(self, height: int) -> list[FutureMessage]:
        """Remove and return the messages of ``height``; those of lower heights are dropped,
        higher ones stay."""
        taken = [item for item in self._items if item.height == height]
        self._items = [item for item in self._items if item.height > height]
        self._by_peer = {}
        for item in self._items:
            self._by_peer[item.sender] = self._by_peer.get(item.sender, 0) + 1
        return taken

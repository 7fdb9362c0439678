"""What every part of the chain core shares: the chain's position and the event's actions.

``NodeCore`` (``node.core``) is split into parts (``node.chain.inbound``, ``admission``,
``syncing``, ``catch_up_sender``, ``feed``, ``effects``, ``commit``, ``progress``, ``judge``;
wired by ``node.chain.assembly``), each given at construction what it needs. They share two
mutable objects, both owned by the core:

- ``HeightState``: the last committed height and block, whether consensus runs the next
  height, a decided block still missing, and the time of the event being handled. Each
  field says which part writes it; every part may read every field.
- ``Outbox``: the actions of the event being handled, in the order they were produced; the
  core hands them to its shell when the event is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from consensus import Decide
from node.chain.actions import (
    Action,
    Broadcast,
    Offence,
    PeerMisbehaved,
    SendTo,
    SetTimer,
)
from node.chain.events import TimerKey
from node.chain.status import NodeStats
from node.codec import block_id
from node.ports import PeerId
from node.types import ZERO_HASH, BlockHeader, CommitCertificate, CommittedBlock

__all__ = ["MAX_REASON_CHARS", "HeightState", "Outbox"]

MAX_REASON_CHARS: Final = 200
"""Longest ``PeerMisbehaved.reason`` (peer-controlled text is cut)."""


@dataclass(slots=True)
class HeightState:
    """The mutable per-height fields every part reads (each says which part writes it)."""

    height: int
    """The last committed height (0 at genesis). Written by ``commit`` only, once the
    height is durable, like the three ``last_`` fields."""
    last_header: BlockHeader | None
    """The header of the last committed block (None at genesis)."""
    last_commit: CommitCertificate | None
    """The certificate of the last committed block (None at genesis)."""
    last_block_id: bytes
    """The id of the last committed block (zero bytes at genesis)."""
    active: bool
    """True while consensus runs ``height + 1``: set by ``progress`` when it starts the
    height, cleared by ``commit`` (False while pausing after a commit)."""
    started: bool = False
    """True once ``Start`` was handled (by the core): messages and timers count from then."""
    start_due: bool = False
    """True when ``height + 1`` is to start as soon as nothing else is left to do: set by
    the core (``Start``, the commit-wait timer) and ``commit``, cleared by ``progress``."""
    pending_decide: Decide | None = None
    """A decision of ``height + 1`` whose block is not held yet (block sync fetches it): set
    by ``effects``, cleared by ``commit``."""
    now_ms: int = 0
    """The time of the event being handled (set by the core)."""

    @classmethod
    def after(cls, last_block: CommittedBlock | None, *, consensus_height: int) -> HeightState:
        """The state of a node whose last committed block is ``last_block`` (None at genesis)
        and whose consensus was restored at ``consensus_height``."""
        if last_block is None:
            return cls(0, None, None, ZERO_HASH, active=consensus_height == 1)
        header = last_block.block.header
        return cls(
            header.height,
            header,
            last_block.commit,
            block_id(header),
            active=consensus_height == header.height + 1,
        )


class Outbox:
    """The actions of the event being handled, in order (see ``node.chain.actions``)."""

    __slots__ = ("_stats", "actions")

    def __init__(self, stats: NodeStats) -> None:
        self._stats = stats
        self.actions: list[Action] = []

    def clear(self) -> None:
        """Drop the actions so far (those of an event that raised)."""
        self.actions = []

    def take(self) -> list[Action]:
        """The actions so far, leaving the outbox empty."""
        actions, self.actions = self.actions, []
        return actions

    def add(self, action: Action) -> None:
        """Append ``action``."""
        self.actions.append(action)

    def broadcast(self, topic: str, data: bytes) -> None:
        """Append a ``Broadcast`` of ``data`` on ``topic``."""
        self.actions.append(Broadcast(topic, data))

    def send(self, peer: PeerId, topic: str, data: bytes) -> None:
        """Append a ``SendTo`` of ``data`` on ``topic`` to ``peer``."""
        self.actions.append(SendTo(peer, topic, data))

    def set_timer(self, key: TimerKey, delay_ms: int) -> None:
        """Append a ``SetTimer`` of ``key`` in ``delay_ms``."""
        self.actions.append(SetTimer(key, delay_ms))

    def misbehaved(self, peer: PeerId, offence: Offence, reason: str) -> None:
        """Report ``peer`` (``PeerMisbehaved``, reason cut to ``MAX_REASON_CHARS``)."""
        self._stats.misbehaviours += 1
        self.actions.append(PeerMisbehaved(peer, offence, reason[:MAX_REASON_CHARS]))

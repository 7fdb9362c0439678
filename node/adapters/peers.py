"""Who we are connected to, and who of them passed the handshake, sans-I/O.

A peer is *connected* from the moment a connection is up and *ready* once its hello was
accepted (``node.adapters.handshake``); only ready peers are listed by ``Network.peers()`` and
may be sent to. Admission keeps the number of connected peers within ``max_peers``, except
for *persistent* peers (the configured bootstrap peers, e.g. the other validators), which are
always let in so that strangers filling the table can never cut a validator off.

Peers that were ready once are remembered (bounded, least recently seen forgotten first), so
a message to a peer that just went away is counted as lost rather than refused as unknown.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from typing import Final

from node.adapters.handshake import Hello
from node.ports import PeerId

DEFAULT_MAX_KNOWN_PEERS: Final = 1024


class Admission(Enum):
    """The answer to a new connection."""

    ADMITTED = "admitted"
    ALREADY_CONNECTED = "already_connected"
    FULL = "full"


@dataclass(slots=True)
class PeerRecord:
    """One connected peer."""

    peer: PeerId
    connected_at_ms: int
    persistent: bool
    hello: Hello | None = None
    ready_at_ms: int | None = None

    @property
    def ready(self) -> bool:
        """True once the peer's hello was accepted."""
        return self.hello is not None


class PeerTable:
    """Connected peers (at most ``max_peers`` besides persistent ones) and known peers."""

    def __init__(self, max_peers: int, max_known: int = DEFAULT_MAX_KNOWN_PEERS) -> None:
        if max_peers < 1 or max_known < 1:
            raise ValueError("max_peers and max_known must be >= 1")
        self.max_peers = max_peers
        self.max_known = max_known
        self._connected: dict[PeerId, PeerRecord] = {}
        self._known: OrderedDict[PeerId, None] = OrderedDict()

    def admit(self, peer: PeerId, now_ms: int, *, persistent: bool) -> Admission:
        """Record a new connection to ``peer`` if there is room (or it is persistent)."""
        if peer in self._connected:
            return Admission.ALREADY_CONNECTED
        if len(self._connected) >= self.max_peers and not persistent:
            return Admission.FULL
        self._connected[peer] = PeerRecord(peer, now_ms, persistent)
        return Admission.ADMITTED

    def mark_ready(self, peer: PeerId, hello: Hello, now_ms: int) -> bool:
        """Record ``peer``'s accepted hello; True the first time (False if not connected)."""
        record = self._connected.get(peer)
        if record is None:
            return False
        first = record.hello is None
        record.hello = hello
        if first:
            record.ready_at_ms = now_ms
            self._remember(peer)
        return first

    def remove(self, peer: PeerId) -> PeerRecord | None:
        """Forget the connection to ``peer``; its record, if it was connected."""
        return self._connected.pop(peer, None)

    def record(self, peer: PeerId) -> PeerRecord | None:
        """The record of a connected peer."""
        return self._connected.get(peer)

    def is_connected(self, peer: PeerId) -> bool:
        """True while a connection to ``peer`` is up."""
        return peer in self._connected

    def is_ready(self, peer: PeerId) -> bool:
        """True while ``peer`` is connected and its hello was accepted."""
        record = self._connected.get(peer)
        return record is not None and record.ready

    def connected(self) -> tuple[PeerId, ...]:
        """Connected peers, sorted."""
        return tuple(sorted(self._connected))

    def ready(self) -> tuple[PeerId, ...]:
        """Ready peers, sorted."""
        return tuple(sorted(p for p, r in self._connected.items() if r.ready))

    def was_known(self, peer: PeerId) -> bool:
        """True if ``peer`` has been ready at some point (within memory)."""
        return peer in self._known

    def _remember(self, peer: PeerId) -> None:
        self._known[peer] = None
        self._known.move_to_end(peer)
        while len(self._known) > self.max_known:
            self._known.popitem(last=False)

"""``SimNetwork``: links with latency, jitter, loss, duplication, reordering, bandwidth and
partitions, in virtual time.

A message from ``src`` to ``dst`` first waits for ``src``'s uplink (each node sends one
message at a time at its uplink rate, so a block multicast to many peers reaches the last
one later, as it does for real), then travels the link's base latency from the region model
plus jitter. Links are FIFO, like the stream connections of the real transport, unless
reordering is on (then jitter is free to overtake, and some messages are held back longer).
Loss and duplication apply per message at the configured rates (parts per million).

Partitions put nodes into groups and block directed pairs of groups: symmetric (no traffic
between groups) or one-way (group ``i`` cannot reach group ``j > i``, the reverse still
flows). A partition is checked when a message is sent and again when it would arrive, so
messages in flight when a partition starts are lost, as a broken connection loses them.

Everything is bounded: bytes in flight per directed link (``MAX_IN_FLIGHT_BYTES_PER_LINK``)
and the queued transmission time of an uplink (``MAX_UPLINK_BACKLOG_US``); beyond, the
message is dropped and counted. Draws come from the network's own random stream, and only
when a rate is non-zero, so turning a fault off does not shift other draws.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from netsim.engine import EventLoop
from netsim.limits import (
    MAX_IN_FLIGHT_BYTES_PER_LINK,
    MAX_LATENCY_MS,
    MAX_MESSAGE_BYTES,
    MAX_UPLINK_BACKLOG_US,
)
from netsim.node_api import Envelope
from netsim.topology import Topology

PPM: Final = 1_000_000
JITTER_FLOOR_US: Final = 50
"""Smallest mean jitter of a message, in microseconds (switches and kernels add some)."""

DEFAULT_JITTER_PERMILLE: Final = 100
"""Mean jitter as a fraction of a link's base latency, in thousandths (10 %)."""

REORDER_HOLD_PPM: Final = 50_000
"""With reordering on, the share of messages held back for longer (5 %)."""

Deliver = Callable[[int, int, Envelope], None]
"""``deliver(src, dst, envelope)``: hand an arrived message to the receiving node."""


@dataclass(slots=True)
class NetworkConditions:
    """What the network does to messages right now (faults change it during a run)."""

    loss_ppm: int = 0
    duplicate_ppm: int = 0
    reorder: bool = False
    jitter_permille: int = DEFAULT_JITTER_PERMILLE

    def check(self) -> None:
        """ValueError unless the rates are in 0..PPM and the jitter in 0..10_000 ‰."""
        for name in ("loss_ppm", "duplicate_ppm"):
            if not 0 <= getattr(self, name) <= PPM:
                raise ValueError(f"{name} must be in 0..{PPM}")
        if not 0 <= self.jitter_permille <= 10_000:
            raise ValueError("jitter_permille must be in 0..10000")


@dataclass(slots=True)
class NetworkStats:
    """Counters of a run's network, per node where it matters."""

    sent_messages: list[int] = field(default_factory=list)
    sent_bytes: list[int] = field(default_factory=list)
    received_messages: list[int] = field(default_factory=list)
    received_bytes: list[int] = field(default_factory=list)
    sent_by_kind: dict[int, int] = field(default_factory=dict)
    delivered: int = 0
    duplicated: int = 0
    dropped_loss: int = 0
    dropped_partition: int = 0
    dropped_link_full: int = 0
    dropped_uplink_full: int = 0

    @classmethod
    def for_nodes(cls, nodes: int) -> NetworkStats:
        """Zeroed counters for ``nodes`` nodes."""
        return cls([0] * nodes, [0] * nodes, [0] * nodes, [0] * nodes)

    @property
    def dropped(self) -> int:
        """Messages lost for any reason."""
        return (
            self.dropped_loss
            + self.dropped_partition
            + self.dropped_link_full
            + self.dropped_uplink_full
        )


class SimNetwork:
    """The links between all nodes of one run."""

    __slots__ = (
        "_blocked",
        "_deliver",
        "_group",
        "_links",
        "_loop",
        "_max_latency_us",
        "_nodes",
        "_rng",
        "_topology",
        "_uplink_bytes_per_s",
        "_uplink_free_us",
        "conditions",
        "stats",
    )

    def __init__(
        self, loop: EventLoop, topology: Topology, rng: random.Random, deliver: Deliver
    ) -> None:
        """Links between the nodes of ``topology``; arrived messages go to ``deliver``."""
        self._loop = loop
        self._topology = topology
        self._rng = rng
        self._deliver = deliver
        self._nodes = topology.nodes
        self._uplink_bytes_per_s = list(topology.uplink_bytes_per_s)
        self._uplink_free_us = [0] * topology.nodes
        # Directed link (src * nodes + dst) -> [latest arrival µs, bytes in flight].
        self._links: dict[int, list[int]] = {}
        self._group = [0] * topology.nodes
        self._blocked: frozenset[tuple[int, int]] = frozenset()
        self._max_latency_us = MAX_LATENCY_MS * 1_000
        self.conditions = NetworkConditions()
        self.stats = NetworkStats.for_nodes(topology.nodes)

    # --- sending -------------------------------------------------------------------------------

    def send(self, src: int, dst: int, envelope: Envelope) -> None:
        """Queue ``envelope`` from ``src`` to ``dst``; it arrives later, or is dropped.

        ValueError for an unknown node, a message to oneself, or one over MAX_MESSAGE_BYTES.
        """
        if not (0 <= src < self._nodes and 0 <= dst < self._nodes) or src == dst:
            raise ValueError(f"no link from node {src} to node {dst}")
        size = len(envelope.data)
        if size > MAX_MESSAGE_BYTES:
            raise ValueError(f"a message of {size} bytes exceeds {MAX_MESSAGE_BYTES} bytes")
        stats = self.stats
        stats.sent_messages[src] += 1
        stats.sent_bytes[src] += size
        kind = envelope.kind
        stats.sent_by_kind[kind] = stats.sent_by_kind.get(kind, 0) + 1
        if self._blocked and (self._group[src], self._group[dst]) in self._blocked:
            stats.dropped_partition += 1
            return
        conditions = self.conditions
        if conditions.loss_ppm and self._rng.randrange(PPM) < conditions.loss_ppm:
            stats.dropped_loss += 1
            return
        departure_us = self._transmit(src, size)
        if departure_us < 0:
            stats.dropped_uplink_full += 1
            return
        self._schedule(src, dst, envelope, departure_us)
        if conditions.duplicate_ppm and self._rng.randrange(PPM) < conditions.duplicate_ppm:
            stats.duplicated += 1
            self._schedule(src, dst, envelope, departure_us)

    def multicast(self, src: int, dsts: Sequence[int], envelope: Envelope) -> None:
        """:meth:`send` to each of ``dsts`` in order, skipping ``src`` itself."""
        for dst in dsts:
            if dst != src:
                self.send(src, dst, envelope)

    def _transmit(self, src: int, size: int) -> int:
        """When the last byte leaves ``src``'s uplink, or -1 if its queue is full."""
        now_us = self._loop.now_us
        start_us = max(now_us, self._uplink_free_us[src])
        if start_us - now_us > MAX_UPLINK_BACKLOG_US:
            return -1
        done_us = start_us + size * 1_000_000 // self._uplink_bytes_per_s[src]
        self._uplink_free_us[src] = done_us
        return done_us

    def _schedule(self, src: int, dst: int, envelope: Envelope, departure_us: int) -> None:
        size = len(envelope.data)
        key = src * self._nodes + dst
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = [0, 0]
        if link[1] + size > MAX_IN_FLIGHT_BYTES_PER_LINK:
            self.stats.dropped_link_full += 1
            return
        arrival_us = departure_us + self._latency_us(src, dst)
        if not self.conditions.reorder:
            arrival_us = max(arrival_us, link[0])  # FIFO, as on a stream connection
        link[0] = max(link[0], arrival_us)
        link[1] += size
        self._loop.at(arrival_us, self._arrive, (src, dst, envelope))

    def _latency_us(self, src: int, dst: int) -> int:
        base_us = self._topology.base_latency_us(src, dst)
        conditions = self.conditions
        mean_us = base_us * conditions.jitter_permille // 1_000 + JITTER_FLOOR_US
        latency_us = base_us + int(self._rng.expovariate(1.0 / mean_us))
        if conditions.reorder and self._rng.randrange(PPM) < REORDER_HOLD_PPM:
            latency_us += self._rng.randrange(4 * base_us + 5_000)
        return min(latency_us, self._max_latency_us)

    def _arrive(self, message: tuple[int, int, Envelope]) -> None:
        src, dst, envelope = message
        size = len(envelope.data)
        self._links[src * self._nodes + dst][1] -= size
        if self._blocked and (self._group[src], self._group[dst]) in self._blocked:
            self.stats.dropped_partition += 1
            return
        stats = self.stats
        stats.delivered += 1
        stats.received_messages[dst] += 1
        stats.received_bytes[dst] += size
        self._deliver(src, dst, envelope)

    # --- faults --------------------------------------------------------------------------------

    def partition(self, groups: Sequence[Sequence[int]], *, one_way: bool = False) -> None:
        """Split the nodes into ``groups`` (nodes in none can talk to everyone).

        Symmetric: no traffic between different groups. ``one_way``: group ``i`` cannot reach
        group ``j`` for ``i < j``; the other direction still flows. Replaces any partition in
        force. ValueError if a node is in two groups or fewer than two groups are given.
        """
        if len(groups) < 2:
            raise ValueError("a partition needs at least two groups")
        group = [0] * self._nodes
        for number, members in enumerate(groups, start=1):
            for node in members:
                if group[node]:
                    raise ValueError(f"node {node} is in two groups of a partition")
                group[node] = number
        count = len(groups)
        blocked = {
            (i, j)
            for i in range(1, count + 1)
            for j in range(1, count + 1)
            if i != j and (not one_way or i < j)
        }
        self._group = group
        self._blocked = frozenset(blocked)

    def heal(self) -> None:
        """Remove the partition in force (if any)."""
        self._group = [0] * self._nodes
        self._blocked = frozenset()

    @property
    def partitioned(self) -> bool:
        """True while a partition is in force."""
        return bool(self._blocked)

    def can_reach(self, src: int, dst: int) -> bool:
        """True unless a partition blocks ``src`` -> ``dst``."""
        return (self._group[src], self._group[dst]) not in self._blocked

    def set_uplink(self, node: int, bytes_per_s: int | None) -> None:
        """Throttle ``node``'s uplink to ``bytes_per_s`` (> 0), or restore it with None."""
        if bytes_per_s is None:
            self._uplink_bytes_per_s[node] = self._topology.uplink_bytes_per_s[node]
        elif bytes_per_s <= 0:
            raise ValueError("an uplink rate must be > 0 bytes/s")
        else:
            self._uplink_bytes_per_s[node] = bytes_per_s

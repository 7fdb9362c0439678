"""``NodeHost``: the simulated machine a node runs on.

It is the node's :class:`~netsim.node_api.NodeEnv` (clock, disk, random stream, network,
timers, decision log) and the fault injector's handle on it:

- ``crash()`` kills the process: the node object is dropped, its timers die with it, the
  disk loses what was not synced; ``restart()`` builds a new node over the same disk.
- ``pause()`` stops the process without killing it (SIGSTOP, a long GC pause, a VM
  migration): arriving messages and due timers queue up, bounded, and are handled in order
  on ``resume()``.

Every call into node code is guarded: an exception escaping a node is recorded as a
violation (an honest node must never fall over on any input) and the process counts as
crashed. Each message, timer and transaction handed to the node goes into the trace.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import Protocol

from netsim.clock import SimClock
from netsim.engine import EventLoop
from netsim.errors import LimitExceeded
from netsim.limits import MAX_PAUSED_BACKLOG_EVENTS, MAX_TIMER_DELAY_MS, MAX_TIMERS_PER_NODE
from netsim.network import SimNetwork
from netsim.node_api import Decision, Envelope, NodeFactory, SimNode, TimerToken, check_token
from netsim.rng import PortRng, RandomStreams
from netsim.storage import SimStorage
from netsim.topology import Topology
from netsim.trace import NO_PEER, TraceHasher, TraceKind
from node.codec import MessageKind
from node.ports import Rng

SIGNED_KINDS = frozenset({MessageKind.VOTE, MessageKind.PROPOSAL})
"""Messages carrying a consensus signature (watched by the double-sign checker)."""

_TIMER_ITEM = struct.Struct(">Q")


class NodeStatus(IntEnum):
    """Whether the node's process runs."""

    UP = 0
    PAUSED = 1
    DOWN = 2


class HostObserver(Protocol):
    """Where hosts report what their nodes did (the checkers and statistics)."""

    def on_decision(self, node: int, time_us: int, decision: Decision) -> None:
        """``node`` committed ``decision``."""
        ...

    def on_signed_message(self, node: int, time_us: int, envelope: Envelope) -> None:
        """Honest ``node`` sent a vote or proposal."""
        ...

    def on_accusation(self, node: int, time_us: int, validator: bytes) -> None:
        """``node`` holds evidence that ``validator`` equivocated."""
        ...

    def on_rejected(self, node: int, sender: int, reason: str) -> None:
        """``node`` refused an input from ``sender``."""
        ...

    def on_node_error(self, node: int, time_us: int, what: str, error: Exception) -> None:
        """Node code raised ``error`` while handling ``what``."""
        ...


class NodeHost:
    """One simulated machine: process status, timers, backlog, and the env of its node."""

    __slots__ = (
        "_backlog",
        "_factory",
        "_incarnation",
        "_loop",
        "_network",
        "_node",
        "_observer",
        "_rng",
        "_streams",
        "_timer_serial",
        "_timers",
        "_trace",
        "_watch_signatures",
        "clock",
        "dropped_while_down",
        "honest",
        "index",
        "status",
        "storage",
        "topology",
    )

    def __init__(
        self,
        index: int,
        *,
        loop: EventLoop,
        network: SimNetwork,
        trace: TraceHasher,
        streams: RandomStreams,
        topology: Topology,
        observer: HostObserver,
        clock: SimClock,
        factory: NodeFactory,
        honest: bool,
    ) -> None:
        """A powered-off machine for node ``index``; call :meth:`boot` to start it."""
        self.index = index
        self.topology = topology
        self.clock = clock
        self.storage = SimStorage()
        self.honest = honest
        self.status = NodeStatus.DOWN
        self.dropped_while_down = 0
        self._loop = loop
        self._network = network
        self._trace = trace
        self._streams = streams
        self._observer = observer
        self._factory = factory
        self._watch_signatures = honest
        self._node: SimNode | None = None
        self._incarnation = 0
        self._timers: dict[int, TimerToken] = {}
        self._timer_serial = 0
        self._backlog: deque[tuple[int, TimerToken | None, Envelope | None]] = deque()
        self._rng: Rng = PortRng(streams.stream(f"node/{index}/run/0"))

    # --- the node's environment (NodeEnv) --------------------------------------------------------

    @property
    def rng(self) -> Rng:
        """This incarnation's random stream."""
        return self._rng

    def send(self, dst: int, envelope: Envelope) -> None:
        """Queue ``envelope`` for ``dst``."""
        if self._watch_signatures and envelope.kind in SIGNED_KINDS:
            self._observer.on_signed_message(self.index, self._loop.now_us, envelope)
        self._network.send(self.index, dst, envelope)

    def multicast(self, dsts: Sequence[int], envelope: Envelope) -> None:
        """Queue ``envelope`` for each of ``dsts`` but this node."""
        if self._watch_signatures and envelope.kind in SIGNED_KINDS:
            self._observer.on_signed_message(self.index, self._loop.now_us, envelope)
        self._network.multicast(self.index, dsts, envelope)

    def set_timer(self, delay_ms: int, token: TimerToken) -> int:
        """Fire ``on_timer(token)`` after ``delay_ms`` of this node's clock; returns its id."""
        check_token(token)
        if type(delay_ms) is not int or not 0 <= delay_ms <= MAX_TIMER_DELAY_MS:
            raise ValueError(f"a timer delay is an int in 0..{MAX_TIMER_DELAY_MS} ms")
        if len(self._timers) >= MAX_TIMERS_PER_NODE:
            raise LimitExceeded(f"node {self.index} has {MAX_TIMERS_PER_NODE} timers pending")
        self._timer_serial += 1
        serial = self._timer_serial
        self._timers[serial] = token
        self._loop.after(self.clock.virtual_delay_us(delay_ms), self._timer_due, serial)
        return serial

    def cancel_timer(self, timer_id: int) -> None:
        """Forget a pending timer (its event still pops off the heap, and is ignored)."""
        self._timers.pop(timer_id, None)

    def decided(self, decision: Decision) -> None:
        """Pass a committed block to the checkers."""
        self._trace.record(
            self._loop.now_us, self.index, NO_PEER, TraceKind.DECIDE, decision.block_id
        )
        self._observer.on_decision(self.index, self._loop.now_us, decision)

    def accused(self, validator: bytes) -> None:
        """Pass an equivocation this node detected to the checkers."""
        self._observer.on_accusation(self.index, self._loop.now_us, validator)

    def rejected(self, sender: int, reason: str) -> None:
        """Count a refused input."""
        self._observer.on_rejected(self.index, sender, reason)

    # --- what the simulator and the fault injector do -------------------------------------------

    def boot(self) -> None:
        """Start the process (first boot or restart) over the disk as it is.

        Raises RuntimeError if the process is already running (or paused).
        """
        if self.status is not NodeStatus.DOWN:
            raise RuntimeError(f"node {self.index} is already running")
        self.status = NodeStatus.UP
        self._rng = PortRng(self._streams.stream(f"node/{self.index}/run/{self._incarnation}"))
        self._incarnation += 1
        self._node = self._factory(self)
        self._guarded(lambda: "start", lambda node: node.start())

    def crash(self) -> int:
        """Kill the process and lose unsynced writes; returns how many writes were lost."""
        if self.status is NodeStatus.DOWN:
            return 0
        self._kill()
        return self.storage.crash()

    def pause(self) -> None:
        """Stop the process; messages and timers queue up until :meth:`resume`."""
        if self.status is NodeStatus.UP:
            self.status = NodeStatus.PAUSED

    def resume(self) -> None:
        """Continue a paused process: handle the backlog in arrival order."""
        if self.status is not NodeStatus.PAUSED:
            return
        self.status = NodeStatus.UP
        while self._backlog and self.status is NodeStatus.UP:
            src, token, envelope = self._backlog.popleft()
            if envelope is not None:
                self._handle_message(src, envelope)
            elif token is not None:
                self._handle_timer(token)

    def deliver(self, src: int, envelope: Envelope) -> None:
        """A message from ``src`` reached this machine."""
        status = self.status
        if status is NodeStatus.UP:
            self._handle_message(src, envelope)
        elif status is NodeStatus.PAUSED and len(self._backlog) < MAX_PAUSED_BACKLOG_EVENTS:
            self._backlog.append((src, None, envelope))
        else:
            self.dropped_while_down += 1

    def submit_tx(
        self, tx: bytes, digest: bytes, on_refused: Callable[[str], None] | None = None
    ) -> bool:
        """A client hands the node ``tx``; False if the process is not running. When the node
        refuses it, ``on_refused`` hears why (during this call)."""
        if self.status is not NodeStatus.UP:
            return False
        self._trace.record(self._loop.now_us, self.index, NO_PEER, TraceKind.TX, digest)
        refusals: list[str] = []

        def submit(node: SimNode) -> None:
            refusal = node.submit_tx(tx)
            if refusal is not None:
                refusals.append(refusal)

        self._guarded(lambda: "a transaction", submit)
        if refusals and on_refused is not None:
            on_refused(refusals[0])
        return True

    # --- internals -------------------------------------------------------------------------------

    def _handle_message(self, src: int, envelope: Envelope) -> None:
        self._trace.record(self._loop.now_us, self.index, src, TraceKind.DELIVER, envelope.digest)
        self._guarded(
            lambda: f"a kind-{envelope.kind} message from node {src}",
            lambda node: node.on_message(src, envelope),
        )

    def _timer_due(self, serial: int) -> None:
        token = self._timers.pop(serial, None)
        if token is None:
            return  # cancelled, or set by an incarnation that has since crashed
        if self.status is NodeStatus.UP:
            self._handle_timer(token)
        elif len(self._backlog) < MAX_PAUSED_BACKLOG_EVENTS:
            self._backlog.append((NO_PEER, token, None))
        else:  # a stopped process's timer wheel is bounded too; the node must cope
            self.dropped_while_down += 1

    def _handle_timer(self, token: TimerToken) -> None:
        digest = b"".join(_TIMER_ITEM.pack(item) for item in token)
        self._trace.record(self._loop.now_us, self.index, NO_PEER, TraceKind.TIMER, digest)
        self._guarded(lambda: f"timer {token}", lambda node: node.on_timer(token))

    def _guarded(self, what: Callable[[], str], call: Callable[[SimNode], None]) -> None:
        """Run ``call`` on the node; an exception escaping it is a violation (``what`` names
        what the node was handling) and kills the process."""
        node = self._node
        if node is None:
            return
        try:
            call(node)
        except LimitExceeded:
            raise
        except Exception as exc:  # an honest node must survive any input: record, then die
            now_us = self._loop.now_us
            self._trace.record(now_us, self.index, NO_PEER, TraceKind.NODE_ERROR, b"")
            self._observer.on_node_error(self.index, now_us, what(), exc)
            self._kill()

    def _kill(self) -> None:
        self.status = NodeStatus.DOWN
        self._node = None
        self._timers.clear()  # serials keep growing, so a dead incarnation's timers stay dead
        self._backlog.clear()

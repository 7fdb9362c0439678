"""``FaultInjector``: applies the actions of a fault plan to hosts and the network.

One small method per action kind, chosen from a table; each action is traced before it
takes effect, so a replay shows exactly when every fault struck.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from netsim.engine import EventLoop
from netsim.faults import ActionKind, FaultAction
from netsim.host import NodeHost, NodeStatus
from netsim.network import SimNetwork
from netsim.trace import NO_PEER, TraceHasher, TraceKind


class FaultInjector:
    """Applies fault actions of one run."""

    def __init__(
        self,
        loop: EventLoop,
        hosts: Sequence[NodeHost],
        network: SimNetwork,
        trace: TraceHasher,
    ) -> None:
        self._loop = loop
        self._hosts = hosts
        self._network = network
        self._trace = trace
        self._table: dict[ActionKind, Callable[[FaultAction], None]] = {
            ActionKind.CRASH: self._crash,
            ActionKind.RESTART: self._restart,
            ActionKind.PAUSE: lambda a: self._hosts[a.nodes[0]].pause(),
            ActionKind.RESUME: lambda a: self._hosts[a.nodes[0]].resume(),
            ActionKind.PARTITION: self._partition,
            ActionKind.HEAL: lambda a: self._network.heal(),
            ActionKind.SET_LOSS_PPM: self._set_loss,
            ActionKind.SET_DUPLICATE_PPM: self._set_duplicate,
            ActionKind.SET_REORDER: self._set_reorder,
            ActionKind.THROTTLE: self._throttle,
            ActionKind.UNTHROTTLE: self._throttle,
            ActionKind.CLOCK_STEP: lambda a: self._hosts[a.nodes[0]].clock.step(a.value),
        }
        self.crashes = 0
        self.restarts = 0

    def schedule(self, actions: Sequence[FaultAction]) -> None:
        """Put every action on the event loop at its time."""
        for action in actions:
            self._loop.at(action.at_ms * 1_000, self.apply, action)

    def apply(self, action: FaultAction) -> None:
        """Trace, then apply, one action."""
        node = action.nodes[0] if action.nodes else NO_PEER
        self._trace.record(self._loop.now_us, node, NO_PEER, TraceKind.FAULT, action.digest())
        self._table[action.kind](action)

    def _crash(self, action: FaultAction) -> None:
        host = self._hosts[action.nodes[0]]
        if host.status is not NodeStatus.DOWN:
            self.crashes += 1
            host.crash()

    def _restart(self, action: FaultAction) -> None:
        host = self._hosts[action.nodes[0]]
        if host.status is NodeStatus.DOWN:
            self.restarts += 1
            host.boot()

    def _partition(self, action: FaultAction) -> None:
        self._network.partition(action.groups, one_way=bool(action.value))

    def _set_loss(self, action: FaultAction) -> None:
        self._network.conditions.loss_ppm = action.value

    def _set_duplicate(self, action: FaultAction) -> None:
        self._network.conditions.duplicate_ppm = action.value

    def _set_reorder(self, action: FaultAction) -> None:
        self._network.conditions.reorder = bool(action.value)

    def _throttle(self, action: FaultAction) -> None:
        rate = action.value if action.kind is ActionKind.THROTTLE else None
        for node in action.nodes:
            self._network.set_uplink(node, rate)

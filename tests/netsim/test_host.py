"""NodeHost: timers (set, cancel, die with a crash, wait out a pause), crash and restart over
the same disk, the pause backlog, and node exceptions turned into violations."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from netsim.clock import SimClock
from netsim.engine import EventLoop
from netsim.errors import LimitExceeded
from netsim.host import NodeHost, NodeStatus
from netsim.limits import MAX_TIMERS_PER_NODE
from netsim.network import SimNetwork
from netsim.node_api import Decision, Envelope, NodeEnv, SimNode, TimerToken
from netsim.regions import LatencyTable
from netsim.rng import RandomStreams
from netsim.topology import build_topology
from netsim.trace import TraceHasher


@dataclass
class Observer:
    errors: list[str] = field(default_factory=list)
    decisions: list[tuple[int, int]] = field(default_factory=list)

    def on_decision(self, node: int, time_us: int, decision: Decision) -> None:
        self.decisions.append((node, decision.height))

    def on_signed_message(self, node: int, time_us: int, envelope: Envelope) -> None:
        pass

    def on_accusation(self, node: int, time_us: int, validator: bytes) -> None:
        pass

    def on_rejected(self, node: int, sender: int, reason: str) -> None:
        pass

    def on_node_error(self, node: int, time_us: int, what: str, error: Exception) -> None:
        self.errors.append(f"{node}: {error} ({what})")


class Recorder:
    """Records what happens to it; explodes on a message saying b"boom"."""

    instances: ClassVar[list[Recorder]] = []

    def __init__(self, env: NodeEnv) -> None:
        self.env = env
        self.events: list[tuple[int, str, object]] = []
        Recorder.instances.append(self)

    def start(self) -> None:
        self.events.append((self.env.clock.now_ms(), "start", self.env.storage.get(b"k")))

    def on_message(self, sender: int, envelope: Envelope) -> None:
        if envelope.data == b"boom":
            raise RuntimeError("boom")
        self.events.append((self.env.clock.now_ms(), "message", envelope.data))

    def on_timer(self, token: TimerToken) -> None:
        self.events.append((self.env.clock.now_ms(), "timer", token))

    def submit_tx(self, tx: bytes) -> None:
        self.events.append((self.env.clock.now_ms(), "tx", tx))


def make_hosts(nodes: int = 2) -> tuple[EventLoop, list[NodeHost], Observer]:
    Recorder.instances = []
    loop = EventLoop()
    topology = build_topology(nodes, nodes, LatencyTable(("paris",)), random.Random(0))
    hosts: list[NodeHost] = []
    network = SimNetwork(loop, topology, random.Random(0), lambda s, d, e: hosts[d].deliver(s, e))
    observer = Observer()
    for index in range(nodes):
        hosts.append(
            NodeHost(
                index,
                loop=loop,
                network=network,
                trace=TraceHasher(),
                streams=RandomStreams(1),
                topology=topology,
                observer=observer,
                clock=SimClock(lambda: loop.now_us),
                factory=Recorder,
                honest=True,
            )
        )
    for host in hosts:
        host.boot()
    return loop, hosts, observer


def kinds(node: SimNode) -> list[str]:
    assert isinstance(node, Recorder)
    return [kind for _, kind, _ in node.events]


def test_timers_fire_in_order_and_can_be_cancelled() -> None:
    loop, hosts, _ = make_hosts()
    host = hosts[0]
    host.set_timer(30, (3,))
    cancelled = host.set_timer(20, (2,))
    host.set_timer(10, (1,))
    host.cancel_timer(cancelled)
    host.cancel_timer(cancelled)  # twice is harmless
    loop.run(10**9)
    node = Recorder.instances[0]
    assert [(kind, payload) for _, kind, payload in node.events[1:]] == [
        ("timer", (1,)),
        ("timer", (3,)),
    ]


def test_timer_arguments_and_the_pending_limit_are_checked() -> None:
    _, hosts, _ = make_hosts()
    with pytest.raises(ValueError, match="token"):
        hosts[0].set_timer(10, ())
    with pytest.raises(ValueError, match="delay"):
        hosts[0].set_timer(-1, (1,))
    for _ in range(MAX_TIMERS_PER_NODE):
        hosts[0].set_timer(10, (1,))
    with pytest.raises(LimitExceeded, match="timers pending"):
        hosts[0].set_timer(10, (1,))


def test_a_crash_kills_timers_and_loses_unsynced_writes_and_a_restart_reads_the_disk() -> None:
    loop, hosts, _ = make_hosts()
    host = hosts[0]
    host.storage.put(b"k", b"durable")
    host.storage.sync()
    host.storage.put(b"k", b"lost")
    host.set_timer(10, (1,))
    assert host.crash() == 1
    assert host.status is NodeStatus.DOWN
    hosts[1].send(0, Envelope(b"while down"))
    loop.run(10**9)
    assert host.dropped_while_down == 1
    host.boot()
    first, restarted = Recorder.instances[0], Recorder.instances[2]
    assert kinds(first) == ["start"]  # neither the timer nor the message reached it
    assert restarted.events[0][1:] == ("start", b"durable")


def test_a_paused_node_handles_its_backlog_in_order_on_resume() -> None:
    loop, hosts, _ = make_hosts()
    hosts[0].pause()
    hosts[0].set_timer(0, (9,))  # due before the messages arrive
    hosts[1].send(0, Envelope(b"one"))
    hosts[1].send(0, Envelope(b"two"))
    assert hosts[0].submit_tx(b"tx", b"d") is False  # a client cannot reach a stopped node
    loop.run(10**9)
    node = Recorder.instances[0]
    assert kinds(node) == ["start"]
    hosts[0].resume()
    assert [(kind, payload) for _, kind, payload in node.events[1:]] == [
        ("timer", (9,)),
        ("message", b"one"),
        ("message", b"two"),
    ]


def test_an_exception_in_node_code_is_a_violation_and_kills_the_process() -> None:
    loop, hosts, observer = make_hosts()
    hosts[1].send(0, Envelope(b"boom"))
    loop.run(10**9)
    assert hosts[0].status is NodeStatus.DOWN
    assert len(observer.errors) == 1 and "boom" in observer.errors[0]
    assert "message from node 1" in observer.errors[0]


def test_each_incarnation_gets_its_own_random_stream() -> None:
    _, hosts, _ = make_hosts()
    first = hosts[0].rng.random_bytes(8)
    hosts[0].crash()
    hosts[0].boot()
    assert hosts[0].rng.random_bytes(8) != first


def test_booting_a_running_machine_is_refused() -> None:
    _, hosts, _ = make_hosts()
    with pytest.raises(RuntimeError, match="already running"):
        hosts[0].boot()
    hosts[0].pause()
    with pytest.raises(RuntimeError, match="already running"):
        hosts[0].boot()

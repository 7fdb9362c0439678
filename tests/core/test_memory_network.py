"""Four NodeCores behind a minimal shell over the shipped in-memory ``Network`` port.

The shell here is what every real shell does, in twenty lines: subscribe to the core's
topics, feed it every received message and fired timer with the clock's time, carry out its
actions on the ``Network`` port, answer block requests from the peer's ``blocks_for_sync``.
Time is a ``ManualClock`` that jumps to the next timer when the network is quiet — nothing
sleeps.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from node.chain import (
    TOPICS,
    Action,
    BlockCommitted,
    BlocksReceived,
    Broadcast,
    MessageReceived,
    RequestBlocks,
    SendTo,
    SetTimer,
    Start,
    TimerFired,
    TimerKey,
    TxSubmitted,
)
from node.core import NodeCore
from node.testing import ManualClock, MemoryNetwork, MemoryStorage
from node.testing.network import MemoryEndpoint
from tests.core.helpers import CLIENTS, GENESIS, GENESIS_MS, VALIDATORS, kv_tx

RECEIVE_BATCH = 256


@dataclass
class Shell:
    """One node: its core, its network endpoint and what it committed."""

    core: NodeCore
    endpoint: MemoryEndpoint
    commits: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)


@dataclass
class Harness:
    clock: ManualClock
    hub: MemoryNetwork
    shells: dict[str, Shell]
    timers: list[tuple[int, int, str, TimerKey]] = field(default_factory=list)
    armed: dict[tuple[str, TimerKey], int] = field(default_factory=dict)
    sequence: int = 0

    def feed(self, name: str, event: object) -> None:
        for action in self.shells[name].core.handle(event):  # type: ignore[arg-type]
            self.carry_out(name, action)

    def carry_out(self, name: str, action: Action) -> None:
        shell = self.shells[name]
        if isinstance(action, Broadcast):
            shell.endpoint.broadcast(action.topic, action.data)
        elif isinstance(action, SendTo):
            shell.endpoint.send(action.peer, action.topic, action.data)
        elif isinstance(action, SetTimer):
            self.sequence += 1
            self.armed[(name, action.key)] = self.sequence
            due = self.clock.now_ms() + action.delay_ms
            heapq.heappush(self.timers, (due, self.sequence, name, action.key))
        elif isinstance(action, RequestBlocks):
            served = self.shells[action.peer].core.blocks_for_sync(
                action.from_height, action.max_blocks, 8 * 1024 * 1024
            )
            self.feed(name, BlocksReceived(action.peer, served, self.clock.now_ms()))
        elif isinstance(action, BlockCommitted):
            shell.commits[action.height] = (action.block_id, action.app_state_root)

    def deliver_all(self) -> bool:
        self.hub.deliver()
        moved = False
        for name, shell in self.shells.items():
            for message in shell.endpoint.receive(RECEIVE_BATCH):
                moved = True
                event = MessageReceived(
                    message.sender, message.topic, message.data, self.clock.now_ms()
                )
                self.feed(name, event)
        return moved

    def fire_next_timer(self) -> None:
        while self.timers:
            due, sequence, name, key = heapq.heappop(self.timers)
            if self.armed.get((name, key)) == sequence:
                del self.armed[(name, key)]
                self.clock.set_ms(max(self.clock.now_ms(), due))
                self.feed(name, TimerFired(key, self.clock.now_ms()))
                return


def test_four_cores_on_the_memory_network_commit_100_blocks_with_identical_state() -> None:
    clock = ManualClock(GENESIS_MS)
    hub = MemoryNetwork(auto_deliver=False)
    shells: dict[str, Shell] = {}
    for index, key in enumerate(VALIDATORS.keys):
        endpoint = hub.join(f"node-{index}")
        for topic in TOPICS:
            endpoint.subscribe(topic)
        shells[endpoint.local_peer] = Shell(NodeCore.open(MemoryStorage(), key, GENESIS), endpoint)
    harness = Harness(clock, hub, shells)
    for name in shells:
        harness.feed(name, Start(clock.now_ms()))

    nonces = [0] * len(CLIENTS)
    tick = 0
    next_tx_ms = clock.now_ms()
    while min(len(s.commits) for s in shells.values()) < 100:
        if clock.now_ms() >= next_tx_ms:  # two clients submit to their nodes every 100 ms
            for client in (tick % 4, (tick + 2) % 4):
                raw = kv_tx(client, nonces[client], key=nonces[client].to_bytes(4, "big"))
                harness.feed(f"node-{client}", TxSubmitted(raw, clock.now_ms()))
                nonces[client] += 1
            tick += 1
            next_tx_ms = clock.now_ms() + 100
        if not harness.deliver_all():
            harness.fire_next_timer()

    chains = {tuple(s.commits[h] for h in range(1, 101)) for s in shells.values()}
    assert len(chains) == 1  # same block ids and the same app state roots, height by height
    first = next(iter(shells.values())).core
    blocks = [first.committed_block(h) for h in range(1, 101)]
    committed = sum(len(b.block.txs) for b in blocks if b is not None)
    assert committed >= sum(nonces) - 40  # all but the last few seconds' transactions
    assert hub.stats.dropped_inbox_full == 0 and hub.stats.dropped_in_flight_full == 0
    assert all(s.core.stats.misbehaviours == 0 for s in shells.values())

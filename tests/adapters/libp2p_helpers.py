"""Helpers for tests that run real libp2p hosts on 127.0.0.1 (ports chosen by the OS)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import trio

from node.adapters.config import Libp2pNetworkConfig
from node.adapters.libp2p import Libp2pNetwork
from node.ports import InboundMessage, Network
from node.testing import SeededRng

CHAIN: Final = "chain-a"
POLL_S: Final = 0.005  # libp2p has no event for "gossip state changed": poll the condition
QUIET_S: Final = 0.1  # how long "nothing more arrives" is watched for (loopback: ~1-10 ms a hop)
BURST_CHECKPOINTS: Final = 20  # after an arrival, let the rest of a burst come in


def make_network(
    tmp_path: Path,
    name: str,
    *,
    status_provider: Callable[[], bytes] | None = None,
    **overrides: Any,
) -> Libp2pNetwork:
    """A network whose home is ``tmp_path/name`` and whose randomness (node key included) is
    seeded by ``name``."""
    settings: dict[str, Any] = {"chain_id": CHAIN, "home": tmp_path / name, **overrides}
    return Libp2pNetwork(
        Libp2pNetworkConfig(**settings),
        rng=SeededRng(name),
        status_provider=status_provider,
        key_rng=SeededRng(f"key/{name}"),
    )


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (for state libp2p changes without telling anyone)."""
    while not condition():
        await trio.sleep(POLL_S)


async def start(nursery: trio.Nursery, networks: Sequence[Libp2pNetwork]) -> None:
    for network in networks:
        await nursery.start(network.serve)


async def connect_all(networks: Sequence[Libp2pNetwork]) -> None:
    """Every pair connected and through the handshake."""
    for i, dialled in enumerate(networks):
        for dialler in networks[i + 1 :]:
            await dialler.connect(dialled.listen_addrs[0])
    for network in networks:
        await network.wait_for_peers([n.local_peer for n in networks if n is not network])


async def wait_gossip_settled(networks: Sequence[Libp2pNetwork], topics: Sequence[str]) -> None:
    """Until every node's gossip view (who is subscribed, who is in its mesh) matches the
    subscriptions libp2p made for the nodes' subscriptions."""
    while not all(_gossip_settled(networks, topic) for topic in topics):
        await trio.sleep(POLL_S)


def _asked_and_made(networks: Sequence[Libp2pNetwork], topic: str) -> bool:
    return all(topic in n.gossip_topics() for n in networks if topic in n.subscriptions())


def _gossip_settled(networks: Sequence[Libp2pNetwork], topic: str) -> bool:
    if not _asked_and_made(networks, topic):
        return False
    subscribed = {n.local_peer for n in networks if topic in n.gossip_topics()}
    for network in networks:
        others = subscribed - {network.local_peer}
        if set(network.gossip_peers(topic)) != others:
            return False
        if network.local_peer in subscribed and set(network.mesh_peers(topic)) != others:
            return False
    return True


async def collect(network: Network, count: int) -> list[InboundMessage]:
    """Exactly the next ``count`` messages of ``network`` (waits for them)."""
    assert isinstance(network, Libp2pNetwork)
    got: list[InboundMessage] = []
    while len(got) < count:
        seen = network.arrivals
        got += network.receive(count - len(got))
        if len(got) < count:
            await network.wait_arrival(seen)
    return got


async def quiet(networks: Sequence[Libp2pNetwork]) -> None:
    """Wait until no message arrives anywhere for ``QUIET_S`` (to assert an absence)."""
    while True:
        seen = [n.arrivals for n in networks]
        arrived = False
        with trio.move_on_after(QUIET_S):
            async with trio.open_nursery() as watchers:
                for network, count in zip(networks, seen, strict=True):
                    watchers.start_soon(_arrival_then_cancel, network, count, watchers)
            arrived = True
        if not arrived:
            return
        for _ in range(BURST_CHECKPOINTS):
            await trio.lowlevel.checkpoint()


async def _arrival_then_cancel(network: Libp2pNetwork, seen: int, group: trio.Nursery) -> None:
    await network.wait_arrival(seen)
    group.cancel_scope.cancel()


class Libp2pHarness:
    """``node.testing.NetworkHarness`` for ``Libp2pNetwork``: real hosts on 127.0.0.1.

    ``settle`` waits until the gossip view matches the subscriptions, then until either a
    message arrives somewhere (and the rest of its burst) or nothing has for ``QUIET_S``."""

    def __init__(self, tmp_path: Path, nursery: trio.Nursery) -> None:
        self.tmp_path = tmp_path
        self.nursery = nursery
        self.networks: list[Libp2pNetwork] = []

    async def open(self, peer_count: int) -> Sequence[Network]:
        self.networks = [make_network(self.tmp_path, f"conf-{i}") for i in range(peer_count)]
        await start(self.nursery, self.networks)
        await connect_all(self.networks)
        return self.networks

    async def settle(self) -> None:
        topics = sorted(
            {t for n in self.networks for t in (*n.subscriptions(), *n.gossip_topics())}
        )
        await wait_gossip_settled(self.networks, topics)
        seen = [n.arrivals for n in self.networks]
        with trio.move_on_after(QUIET_S):
            async with trio.open_nursery() as watchers:
                for network, count in zip(self.networks, seen, strict=True):
                    watchers.start_soon(_arrival_then_cancel, network, count, watchers)
        for _ in range(BURST_CHECKPOINTS):
            await trio.lowlevel.checkpoint()

    async def close(self) -> None:
        self.nursery.cancel_scope.cancel()

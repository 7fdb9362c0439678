"""A restarted node is heard on gossip at once. Real py-libp2p hosts in this process, on
127.0.0.1.

A node "restarts" here as it does in production: its network stops (closing its
connections, as the exit of its process would) and a new ``Libp2pNetwork`` with the same
home, hence the same key and peer id, starts and dials its former neighbours. Each wait is
a poll of a condition bounded by ``trio.fail_after``; "at once" means within
``HEARD_WITHIN_S`` (a few 1 s heartbeats), where py-libp2p's defaults took up to a minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import trio

from node.adapters.libp2p_network import Libp2pNetwork
from node.ports import InboundMessage
from tests.adapters.libp2p_helpers import (
    collect,
    connect_all,
    make_network,
    start,
    wait_gossip_settled,
    wait_until,
)

TEST_TIMEOUT_S = 30
HEARD_WITHIN_S = 5
TOPIC = "votes"
# More messages than seconds pass between the two lives of a node: py-libp2p's own
# sequence numbers (clock seconds + 1 per message) would then repeat after the restart.
FIRST_LIFE_MESSAGES = 50


async def first_life(c: Libp2pNetwork, neighbours: Sequence[Libp2pNetwork]) -> str:
    """Run ``c`` among ``neighbours`` (all on ``TOPIC``), make it publish, then stop it; its
    listen address (once every neighbour saw it go)."""
    async with trio.open_nursery() as life:
        await life.start(c.serve)
        await connect_all([*neighbours, c])
        await wait_gossip_settled([*neighbours, c], [TOPIC])
        for i in range(FIRST_LIFE_MESSAGES):
            c.broadcast(TOPIC, b"first life %d" % i)
        for network in neighbours:
            assert len(await collect(network, FIRST_LIFE_MESSAGES)) == FIRST_LIFE_MESSAGES
        address = c.listen_addrs[0]
        life.cancel_scope.cancel()
    await wait_until(lambda: all(c.local_peer not in n.peers() for n in neighbours))
    return address


async def restart(
    tmp_path: Path, nursery: trio.Nursery, name: str, listen_multiaddr: str
) -> Libp2pNetwork:
    again = make_network(tmp_path, name, listen_multiaddr=listen_multiaddr)
    again.subscribe(TOPIC)
    await start(nursery, [again])
    return again


@pytest.mark.parametrize("same_port", [True, False], ids=["same-port", "another-port"])
async def test_a_restarted_node_is_heard_on_gossip_at_once(tmp_path: Path, same_port: bool) -> None:
    a, b, c = (make_network(tmp_path, name) for name in "abc")
    for network in (a, b, c):
        network.subscribe(TOPIC)
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a, b])
            address = await first_life(c, [a, b])
            listen = address.split("/p2p/")[0] if same_port else "/ip4/127.0.0.1/tcp/0"
            with trio.fail_after(HEARD_WITHIN_S):
                again = await restart(tmp_path, nursery, "c", listen)
                assert again.local_peer == c.local_peer
                await connect_all([a, b, again])
                await wait_gossip_settled([a, b, again], [TOPIC])
                again.broadcast(TOPIC, b"second life")
                for network in (a, b):
                    assert await collect(network, 1) == [
                        InboundMessage(c.local_peer, TOPIC, b"second life")
                    ]
            if same_port:
                assert again.listen_addrs[0] == address
            nursery.cancel_scope.cancel()


async def test_stopping_a_network_tells_its_peers_at_once(tmp_path: Path) -> None:
    a, b = make_network(tmp_path, "a"), make_network(tmp_path, "b")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a])
            async with trio.open_nursery() as life:
                await life.start(b.serve)
                await connect_all([a, b])
                life.cancel_scope.cancel()
            with trio.fail_after(HEARD_WITHIN_S):  # else a would keep b until TCP gives up
                await wait_until(lambda: a.snapshot().peers_connected == 0)
            assert a.peers() == ()
            nursery.cancel_scope.cancel()

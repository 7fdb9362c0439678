"""A restarted node is heard on gossip at once, and the protections that kept it out stay on
for peers that are not restarting. Real py-libp2p hosts in this process, on 127.0.0.1.

A node "restarts" here as it does in production: its network stops (closing its
connections, as the exit of its process would) and a new ``Libp2pNetwork`` with the same
home, hence the same key and peer id, starts and dials its former neighbours. Each wait is
a poll of a condition bounded by ``trio.fail_after``; "at once" means within
``HEARD_WITHIN_S`` (a few 1 s heartbeats), where py-libp2p's defaults took up to a minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import pytest
import trio
from libp2p.peer.id import ID

from node.adapters.config import GossipParams
from node.adapters.libp2p import Libp2pNetwork
from node.adapters.libp2p.gossipsub import ConsensusGossipSub
from node.errors import PeerUnreachableError
from node.ports import InboundMessage
from tests.adapters.libp2p_helpers import (
    collect,
    connect_all,
    make_network,
    quiet,
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
# Leaves a topic in libp2p at once, so that its peers hold an unsubscribe back-off for it.
QUICK_LEAVE = GossipParams(unsubscribe_linger_ms=0)


def router_of(network: Libp2pNetwork) -> ConsensusGossipSub:
    running = network._stack.running
    assert running is not None, "the network is not running"
    return running.router


def backed_off(network: Libp2pNetwork, peer: str) -> bool:
    """True while ``network`` holds a prune back-off for ``peer`` on ``TOPIC``."""
    return ID.from_base58(peer) in router_of(network).back_off.get(TOPIC, {})


async def first_life(
    c: Libp2pNetwork, neighbours: Sequence[Libp2pNetwork], *, leave_topic: bool = False
) -> str:
    """Run ``c`` among ``neighbours`` (all on ``TOPIC``), make it publish, optionally leave
    the topic, then stop it; its listen address (once every neighbour saw it go)."""
    async with trio.open_nursery() as life:
        await life.start(c.serve)
        await connect_all([*neighbours, c])
        await wait_gossip_settled([*neighbours, c], [TOPIC])
        for i in range(FIRST_LIFE_MESSAGES):
            c.broadcast(TOPIC, b"first life %d" % i)
        for network in neighbours:
            assert len(await collect(network, FIRST_LIFE_MESSAGES)) == FIRST_LIFE_MESSAGES
        if leave_topic:
            c.unsubscribe(TOPIC)
            await wait_until(lambda: all(backed_off(n, c.local_peer) for n in neighbours))
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


async def test_a_node_restarted_soon_after_leaving_a_topic_is_taken_back_at_once(
    tmp_path: Path,
) -> None:
    a, b = make_network(tmp_path, "a"), make_network(tmp_path, "b")
    c = make_network(tmp_path, "c", gossip=QUICK_LEAVE)
    for network in (a, b, c):
        network.subscribe(TOPIC)
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a, b])
            # a and b hold an unsubscribe back-off for c when it stops: without forgiveness
            # they would refuse its GRAFTs, and make it back off in turn, for 10 s or more.
            await first_life(c, [a, b], leave_topic=True)
            for network in (a, b):
                assert not backed_off(network, c.local_peer)
                assert network.snapshot().gossip_backoffs_cleared >= 1
            with trio.fail_after(HEARD_WITHIN_S):
                again = await restart(tmp_path, nursery, "c", "/ip4/127.0.0.1/tcp/0")
                await connect_all([a, b, again])
                await wait_gossip_settled([a, b, again], [TOPIC])
                again.broadcast(TOPIC, b"back")
                for network in (a, b):
                    assert (await collect(network, 1))[0].data == b"back"
            nursery.cancel_scope.cancel()


async def test_a_connected_peer_grafting_during_its_backoff_is_still_pruned(
    tmp_path: Path,
) -> None:
    a, b = make_network(tmp_path, "a"), make_network(tmp_path, "b", gossip=QUICK_LEAVE)
    for network in (a, b):
        network.subscribe(TOPIC)
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a, b])
            await connect_all([a, b])
            await wait_gossip_settled([a, b], [TOPIC])
            b.unsubscribe(TOPIC)
            await wait_until(lambda: backed_off(a, b.local_peer))
            # Fault injection: b, still connected, GRAFTs at once (its libp2p would wait).
            a_id = ID.from_base58(a.local_peer)
            await router_of(b).emit_graft(TOPIC, a_id)
            # a answers with a PRUNE, which is all b records a GRAFT-flood time for.
            await wait_until(lambda: TOPIC in router_of(b).graft_flood_tracking.get(a_id, {}))
            assert b.local_peer not in a.mesh_peers(TOPIC)
            assert backed_off(a, b.local_peer)
            assert a.snapshot().gossip_backoffs_cleared == 0
            nursery.cancel_scope.cancel()


async def test_a_banned_member_keeps_its_backoff_and_stays_out_when_it_comes_back(
    tmp_path: Path,
) -> None:
    a, b = make_network(tmp_path, "a"), make_network(tmp_path, "b")
    c = make_network(tmp_path, "c", gossip=QUICK_LEAVE)
    for network in (a, b, c):
        network.subscribe(TOPIC)
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a, b])
            async with trio.open_nursery() as life:
                await life.start(c.serve)
                await connect_all([a, b, c])
                await wait_gossip_settled([a, b, c], [TOPIC])
                c.unsubscribe(TOPIC)
                await wait_until(lambda: backed_off(a, c.local_peer))
                a.ban(c.local_peer, "misbehaved")
                await wait_until(lambda: c.local_peer not in a.peers())
                life.cancel_scope.cancel()
            await wait_until(lambda: c.local_peer not in b.peers())
            assert backed_off(a, c.local_peer)  # its disconnect forgave it nothing
            assert a.snapshot().gossip_backoffs_cleared == 0
            again = await restart(tmp_path, nursery, "c", "/ip4/127.0.0.1/tcp/0")
            await connect_all([b, again])
            with suppress(PeerUnreachableError):  # a may hang up before the dial completes
                await again.connect(a.listen_addrs[0])
            await wait_until(lambda: again.peers() == (b.local_peer,))
            await wait_until(lambda: again.snapshot().peers_connected == 1)
            await wait_until(
                lambda: (
                    b.local_peer in again.mesh_peers(TOPIC)
                    and again.local_peer in b.mesh_peers(TOPIC)
                )
            )
            again.broadcast(TOPIC, b"let me in")
            assert (await collect(b, 1))[0].data == b"let me in"
            await quiet([a, b])  # b relays to a, which drops what a banned peer wrote
            assert a.receive(10) == []
            assert c.local_peer not in a.peers() + a.mesh_peers(TOPIC)
            assert a.snapshot().gossip_backoffs_cleared == 0
            nursery.cancel_scope.cancel()


async def test_a_member_dialling_again_before_its_old_connection_ends_is_forgiven(
    tmp_path: Path,
) -> None:
    a, c = make_network(tmp_path, "a"), make_network(tmp_path, "c", gossip=QUICK_LEAVE)
    for network in (a, c):
        network.subscribe(TOPIC)
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a, c])
            await connect_all([a, c])
            await wait_gossip_settled([a, c], [TOPIC])
            c.unsubscribe(TOPIC)
            await wait_until(lambda: backed_off(a, c.local_peer))
            # c's second life dials a while a still holds c's first connection (as when a
            # host dies without closing its sockets and comes back at once).
            again = await restart(tmp_path, nursery, "c", "/ip4/127.0.0.1/tcp/0")
            with trio.fail_after(HEARD_WITHIN_S):  # its unsubscribe back-off lasts 10 s
                await again.connect(a.listen_addrs[0])
                await wait_until(lambda: not backed_off(a, c.local_peer))
            assert a.snapshot().gossip_backoffs_cleared >= 1
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


def test_forgetting_a_peer_drops_its_backoff_on_every_topic_and_nothing_else() -> None:
    router = ConsensusGossipSub(protocols=[], degree=6, degree_low=4, degree_high=12)
    leaving, staying = ID(b"leaving"), ID(b"staying")
    router.back_off = {"votes": {leaving: 10, staying: 10}, "blocks": {leaving: 20}}
    router.graft_flood_tracking[leaving]["votes"] = 1.0
    router.graft_flood_tracking[staying]["votes"] = 2.0
    assert router.forget_backoff(leaving) == 3
    assert router.back_off == {"votes": {staying: 10}, "blocks": {}}
    assert dict(router.graft_flood_tracking) == {staying: {"votes": 2.0}}
    assert router.forget_backoff(leaving) == 0

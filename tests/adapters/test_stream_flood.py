"""A peer opening streams without end is cut off; the others keep working (real hosts)."""

from __future__ import annotations

from pathlib import Path

import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from node.adapters.config import DIRECT_PROTOCOL, STATUS_PROTOCOL
from tests.adapters.libp2p_helpers import collect, connect_all, make_network, start, wait_until

TEST_TIMEOUT_S = 30
MAX_ATTEMPTS = 2_000


async def test_a_peer_opening_streams_in_a_loop_is_banned_and_the_others_keep_working(
    tmp_path: Path,
) -> None:
    victim = make_network(tmp_path, "victim")
    attacker, honest = make_network(tmp_path, "attacker"), make_network(tmp_path, "honest")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [victim, attacker, honest])
            await connect_all([victim, attacker, honest])
            host = attacker._stack.require().host
            target = ID.from_base58(victim.local_peer)
            opened, kept = 0, []
            for attempt in range(MAX_ATTEMPTS):  # Fault injection: streams, never closed
                if attacker.local_peer not in victim.peers():
                    break
                protocol = DIRECT_PROTOCOL if attempt % 2 else STATUS_PROTOCOL
                try:
                    kept.append(await host.new_stream(target, [TProtocol(protocol)]))
                    opened += 1
                except Exception:  # reset by the victim, or the connection is gone
                    await trio.sleep(0)
            await wait_until(lambda: attacker.local_peer not in victim.peers())
            (ban,) = victim.banned_peers()
            assert ban.peer == attacker.local_peer and "stream_flood" in ban.reason
            assert victim._peers.streams_refused + opened <= MAX_ATTEMPTS
            assert opened < 200  # cut off after a few dozen streams, not thousands
            honest.send(victim.local_peer, "direct", b"still here")
            assert (await collect(victim, 1))[0].data == b"still here"
            victim.send(honest.local_peer, "direct", b"and back")
            assert (await collect(honest, 1))[0].data == b"and back"
            nursery.cancel_scope.cancel()


async def test_a_peer_opening_bare_muxer_streams_is_banned(tmp_path: Path) -> None:
    """Streams that never name a protocol (yamux SYNs alone) reach none of our handlers:
    the stream gate sees them when libp2p does."""
    victim, attacker = make_network(tmp_path, "victim"), make_network(tmp_path, "attacker")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [victim, attacker])
            await connect_all([victim, attacker])
            host = attacker._stack.require().host
            (connection,) = host.get_network().get_connections(ID.from_base58(victim.local_peer))
            for _ in range(200):  # Fault injection: bare streams, no protocol, never closed
                if connection.muxed_conn.is_closed:
                    break
                try:
                    await connection.muxed_conn.open_stream()
                except Exception:  # the connection is gone
                    break
                await trio.sleep(0)
            await wait_until(lambda: attacker.local_peer not in victim.peers())
            (ban,) = victim.banned_peers()
            # the burst (64 new streams) or the open cap (64 at once): whichever first
            assert "stream_flood" in ban.reason and "64" in ban.reason
            assert victim._peers.streams_refused >= 5
            nursery.cancel_scope.cancel()


async def test_a_peer_within_the_stream_rate_is_left_alone(tmp_path: Path) -> None:
    victim, peer = make_network(tmp_path, "victim"), make_network(tmp_path, "peer")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [victim, peer])
            await connect_all([victim, peer])
            host = peer._stack.require().host
            target = ID.from_base58(victim.local_peer)
            for _ in range(20):  # opened and closed: well within the burst and the caps
                stream = await host.new_stream(target, [TProtocol(DIRECT_PROTOCOL)])
                await stream.close()
            peer.send(victim.local_peer, "direct", b"fine")
            assert (await collect(victim, 1))[0].data == b"fine"
            assert victim.banned_peers() == () and victim._peers.streams_refused == 0
            nursery.cancel_scope.cancel()

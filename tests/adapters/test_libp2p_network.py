"""Libp2pNetwork with real py-libp2p hosts in this process, on 127.0.0.1 (OS-chosen ports).

Every test is bounded by ``trio.fail_after``; nothing sleeps for a fixed time: tests wait on
conditions (a peer ready, a message arrived, the gossip view settled).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from node.adapters.backoff import BackoffPolicy
from node.adapters.config import (
    DIRECT_PROTOCOL,
    STATUS_PROTOCOL,
    Libp2pNetworkConfig,
    decoding_validator,
)
from node.adapters.errors import FrameTooLargeError, NetworkConfigError, PeerBannedError
from node.adapters.identity import load_node_key
from node.adapters.libp2p import open_libp2p_network, peer_id_of
from node.adapters.peer_scoring import ScoringPolicy
from node.codec import decode_message, encode_message
from node.errors import (
    InvalidTopicError,
    MessageTooLargeError,
    PeerUnreachableError,
    ProtocolNotSupportedError,
    RemoteError,
    RequestRejectedError,
    RequestTimeoutError,
    UnknownPeerError,
)
from node.ports import InboundMessage, Network, Verdict
from node.testing import SeededRng, check_network_conformance
from node.types import BlockRequest
from tests.adapters.libp2p_helpers import (
    CHAIN,
    Libp2pHarness,
    collect,
    connect_all,
    make_network,
    quiet,
    start,
    wait_gossip_settled,
    wait_until,
)

TEST_TIMEOUT_S = 20
ECHO = "/bighealth/echo/1"


async def echo(peer: str, data: bytes) -> bytes:
    if data == b"refuse":
        raise RequestRejectedError("refused on purpose")
    if data == b"hang":
        await trio.sleep_forever()
    return data


async def test_two_hosts_handshake_and_exchange_every_kind_of_message(tmp_path: Path) -> None:
    a = make_network(tmp_path, "a", status_provider=lambda: b"height=7")
    b = make_network(tmp_path, "b")
    a.register_handler(ECHO, echo)
    for network in (a, b):
        network.subscribe("blocks")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a, b])
            await connect_all([a, b])
            assert isinstance(a, Network)
            assert a.peers() == (b.local_peer,) and b.peers() == (a.local_peer,)
            assert b.peer_status(a.local_peer) == b"height=7"
            assert a.local_peer == peer_id_of(load_node_key(tmp_path / "a" / "node_key"))

            for i in range(200):
                a.send(b.local_peer, "direct", i.to_bytes(2, "big"))
            direct = await collect(b, 200)
            assert [int.from_bytes(m.data, "big") for m in direct] == list(range(200))
            assert {(m.sender, m.topic) for m in direct} == {(a.local_peer, "direct")}

            await wait_gossip_settled([a, b], ["blocks"])
            b.broadcast("blocks", b"block 1")
            assert await collect(a, 1) == [InboundMessage(b.local_peer, "blocks", b"block 1")]

            assert await b.request(a.local_peer, ECHO, b"ping", timeout_ms=2000) == b"ping"
            of_a, of_b = a.snapshot(), b.snapshot()
            assert of_b.peers_ready == 1 and of_b.handshakes_ok == 1
            assert of_a.topics["direct"].messages_out == 200
            assert of_b.topics["direct"].bytes_in == 400
            assert of_b.topics["blocks"].messages_out == 1
            assert of_a.topics["blocks"].messages_in == 1
            assert of_a.requests_served == 2 and of_b.requests_sent == 1  # a hello and the echo
            assert of_a.direct_streams_opened == 1  # 200 messages, one long-lived stream
            nursery.cancel_scope.cancel()


async def test_request_errors_are_typed(tmp_path: Path) -> None:
    a, b = make_network(tmp_path, "a"), make_network(tmp_path, "b")
    a.register_handler(ECHO, echo)
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a, b])
            await connect_all([a, b])
            with pytest.raises(ProtocolNotSupportedError):
                await b.request(a.local_peer, "/bighealth/unknown/1", b"x", timeout_ms=2000)
            with pytest.raises(RequestTimeoutError):
                await b.request(a.local_peer, ECHO, b"hang", timeout_ms=200)
            with pytest.raises(RemoteError, match="refused on purpose"):
                await b.request(a.local_peer, ECHO, b"refuse", timeout_ms=2000)
            too_big = b"x" * (b.config.max_frame_bytes + 1)
            with pytest.raises(FrameTooLargeError):
                await b.request(a.local_peer, ECHO, too_big, timeout_ms=2000)
            with pytest.raises(PeerUnreachableError):
                await b.request("12D3KooWnotconnected", ECHO, b"x", timeout_ms=2000)
            with pytest.raises(NetworkConfigError):
                await b.request(a.local_peer, STATUS_PROTOCOL, b"x", timeout_ms=2000)
            assert await b.request(a.local_peer, ECHO, b"still fine", timeout_ms=2000) == (
                b"still fine"
            )
            assert b.snapshot().requests_failed == 4
            nursery.cancel_scope.cancel()


async def test_port_errors_are_typed(tmp_path: Path) -> None:
    a, b = make_network(tmp_path, "a"), make_network(tmp_path, "b")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a, b])
            await connect_all([a, b])
            oversize = b"x" * (a.max_message_bytes + 1)
            with pytest.raises(MessageTooLargeError):
                a.send(b.local_peer, "t", oversize)
            with pytest.raises(MessageTooLargeError):
                a.broadcast("t", oversize)
            with pytest.raises(UnknownPeerError):
                a.send("12D3KooWstranger", "t", b"")
            with pytest.raises(UnknownPeerError):
                a.send(a.local_peer, "t", b"")
            with pytest.raises(InvalidTopicError):
                a.send(b.local_peer, "Bad Topic", b"")
            with pytest.raises(NetworkConfigError):
                a.register_handler(DIRECT_PROTOCOL, echo)
            a.send(b.local_peer, "t", b"x" * a.max_message_bytes)  # the limit itself is fine
            assert len((await collect(b, 1))[0].data) == a.max_message_bytes
            nursery.cancel_scope.cancel()


async def test_four_hosts_broadcast_reaches_all_others_and_not_the_sender(tmp_path: Path) -> None:
    nets = [make_network(tmp_path, f"n{i}") for i in range(4)]
    for network in nets:
        network.subscribe("votes")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, nets)
            await connect_all(nets)
            await wait_gossip_settled(nets, ["votes"])
            for sender in nets:
                for i in range(20):
                    sender.broadcast("votes", b"%s:%d" % (sender.local_peer.encode(), i))
            for network in nets:
                got = await collect(network, 60)
                for sender in nets:
                    mine = [m.data for m in got if m.sender == sender.local_peer]
                    expected = (
                        []
                        if sender is network
                        else [b"%s:%d" % (sender.local_peer.encode(), i) for i in range(20)]
                    )
                    assert mine == expected  # all of them, in the order sent
            await quiet(nets)
            assert all(network.receive(100) == [] for network in nets)
            nursery.cancel_scope.cancel()


async def test_the_network_conformance_check_passes(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            checks = await check_network_conformance(
                Libp2pHarness(tmp_path, nursery), max_settle_rounds=2_000
            )
    assert "per-peer FIFO" in checks and "typed errors" in checks


async def test_a_peer_of_another_chain_is_refused_and_banned(tmp_path: Path) -> None:
    a, b = make_network(tmp_path, "a"), make_network(tmp_path, "b")
    stranger = make_network(tmp_path, "stranger", chain_id="chain-b")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a, b, stranger])
            await stranger.connect(a.listen_addrs[0])
            await wait_until(lambda: bool(a.banned_peers() and stranger.banned_peers()))
            assert [ban.peer for ban in a.banned_peers()] == [stranger.local_peer]
            assert "wrong_chain" in a.banned_peers()[0].reason
            assert [ban.peer for ban in stranger.banned_peers()] == [a.local_peer]
            assert a.peers() == () and stranger.peers() == ()
            with pytest.raises(PeerBannedError):
                await stranger.connect(a.listen_addrs[0])  # the stranger banned a, too
            stranger.unban(a.local_peer)
            await stranger.connect(a.listen_addrs[0])  # a refuses it at once
            await wait_until(lambda: stranger.snapshot().peers_connected == 0)
            assert a.peers() == () and a.snapshot().handshakes_ok == 0
            await connect_all([a, b])  # a keeps working with its own chain
            a.send(b.local_peer, "t", b"fine")
            assert (await collect(b, 1))[0].data == b"fine"
            nursery.cancel_scope.cancel()


async def test_garbage_on_the_direct_stream_gets_the_sender_banned(tmp_path: Path) -> None:
    strict = ScoringPolicy(ban_threshold_points=5)
    victim = make_network(tmp_path, "victim", scoring=strict)
    attacker, honest = make_network(tmp_path, "attacker"), make_network(tmp_path, "honest")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [victim, attacker, honest])
            await connect_all([victim, attacker, honest])
            # Fault injection: a raw stream on the direct protocol, then bytes that are not
            # frames (a length prefix longer than any varint may be).
            stream = await attacker._stack.open_stream(victim.local_peer, DIRECT_PROTOCOL)
            await stream.write(b"\xff" * 64)
            await wait_until(lambda: attacker.local_peer not in victim.peers())
            (ban,) = victim.banned_peers()
            assert ban.peer == attacker.local_peer and "malformed_frame" in ban.reason
            honest.send(victim.local_peer, "direct", b"still here")
            assert (await collect(victim, 1))[0].data == b"still here"
            nursery.cancel_scope.cancel()


async def test_garbage_on_gossip_gets_the_forwarder_banned(tmp_path: Path) -> None:
    strict = ScoringPolicy(ban_threshold_points=5)
    victim = make_network(tmp_path, "victim", scoring=strict)
    attacker, honest = make_network(tmp_path, "attacker"), make_network(tmp_path, "honest")
    victim.set_validator("votes", decoding_validator(decode_message, victim.max_message_bytes))
    for network in (victim, attacker, honest):
        network.subscribe("votes")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [victim, attacker, honest])
            await connect_all([victim, attacker, honest])
            await wait_gossip_settled([victim, attacker, honest], ["votes"])
            valid = encode_message(BlockRequest(height=1))
            honest.broadcast("votes", valid)
            assert (await collect(victim, 1))[0].data == valid
            for i in range(4):  # well-wrapped, but not a message the node can decode: 1 point
                attacker.broadcast("votes", b"not msgpack %d" % i)
            await wait_until(lambda: victim.snapshot().dropped["invalid"] == 4)
            assert victim.banned_peers() == ()
            # Not even our envelope (fault injection below the adapter): 3 points, so banned.
            running = attacker._stack.running
            assert running is not None
            await running.pubsub.publish("votes", b"raw garbage")
            await wait_until(lambda: bool(victim.banned_peers()))
            assert "malformed_message" in victim.banned_peers()[0].reason
            await wait_until(lambda: attacker.local_peer not in victim.peers())
            honest.broadcast("votes", valid)
            assert (await collect(victim, 1))[0].sender == honest.local_peer
            assert victim.receive(10) == []  # none of the garbage was delivered
            nursery.cancel_scope.cancel()


async def test_a_raising_validator_drops_the_message_and_harms_nothing(tmp_path: Path) -> None:
    def broken(data: bytes) -> Verdict:
        raise RuntimeError("a bug in the node's validator")

    a, b = make_network(tmp_path, "a"), make_network(tmp_path, "b")
    b.set_validator("votes", broken)
    for network in (a, b):
        network.subscribe("votes")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a, b])
            await connect_all([a, b])
            await wait_gossip_settled([a, b], ["votes"])
            a.broadcast("votes", b"gossip")
            a.send(b.local_peer, "votes", b"direct")
            await wait_until(lambda: b.snapshot().dropped["validator_error"] == 2)
            assert b.banned_peers() == ()  # our bug is nobody's offense
            b.set_validator("votes", None)
            a.broadcast("votes", b"after the fix")
            assert (await collect(b, 1))[0].data == b"after the fix"
            nursery.cancel_scope.cancel()


async def test_standard_libp2p_protocols_stay_on(tmp_path: Path) -> None:
    a, b = make_network(tmp_path, "a"), make_network(tmp_path, "b")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a, b])
            await connect_all([a, b])
            ping = await a._stack.open_stream(b.local_peer, "/ipfs/ping/1.0.0")
            await ping.write(bytes(range(32)))
            echoed = b""
            while len(echoed) < 32:
                echoed += await ping.read(32 - len(echoed))
            assert echoed == bytes(range(32))
            for protocol in ("/ipfs/id/1.0.0", "/meshsub/1.1.0", "/meshsub/1.0.0"):
                stream = await a._stack.open_stream(b.local_peer, protocol)  # negotiated: spoken
                await stream.reset()
            with pytest.raises(ProtocolNotSupportedError):  # not offered (pitfall 4)
                await a._stack.open_stream(b.local_peer, "/meshsub/1.2.0")
            nursery.cancel_scope.cancel()


async def test_an_ignore_verdict_drops_without_penalty(tmp_path: Path) -> None:
    a, b = make_network(tmp_path, "a"), make_network(tmp_path, "b")
    b.set_validator("t", lambda data: Verdict.IGNORE if data == b"dup" else Verdict.ACCEPT)
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a, b])
            await connect_all([a, b])
            for _ in range(30):
                a.send(b.local_peer, "t", b"dup")
            a.send(b.local_peer, "t", b"new")
            assert (await collect(b, 1))[0].data == b"new"
            assert b.snapshot().dropped["ignored"] == 30
            assert b.banned_peers() == () and b.peers() == (a.local_peer,)
            nursery.cancel_scope.cancel()


async def test_max_peers_refuses_strangers_but_not_persistent_peers(tmp_path: Path) -> None:
    validator = make_network(tmp_path, "validator")
    first, second = make_network(tmp_path, "first"), make_network(tmp_path, "second")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [validator, first, second])
            node = make_network(
                tmp_path, "node", max_peers=1, bootstrap=(validator.listen_addrs[0],)
            )
            await start(nursery, [node])
            await node.wait_for_peers([validator.local_peer])
            await second.connect(node.listen_addrs[0])  # full: refused
            await wait_until(lambda: second.snapshot().peers_connected == 0)
            assert node.peers() == (validator.local_peer,)
            node_without_validator = make_network(tmp_path, "solo", max_peers=1)
            await start(nursery, [node_without_validator])
            await first.connect(node_without_validator.listen_addrs[0])
            await node_without_validator.wait_for_peers([first.local_peer])
            nursery.cancel_scope.cancel()


async def test_a_bootstrap_peer_is_redialled_after_a_disconnect(tmp_path: Path) -> None:
    b = make_network(tmp_path, "b")
    fast = BackoffPolicy(initial_ms=20, max_ms=200)
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [b])
            config = Libp2pNetworkConfig(
                chain_id=CHAIN, home=tmp_path / "a", bootstrap=(b.listen_addrs[0],), backoff=fast
            )
            async with open_libp2p_network(config, rng=SeededRng("a")) as a:
                await a.wait_for_peers([b.local_peer])
                for round_number in range(1, 3):
                    await b.disconnect(a.local_peer)
                    await wait_until(lambda: b.local_peer not in a.peers())
                    await a.wait_for_peers([b.local_peer])
                    assert a.snapshot().dials_ok == round_number + 1
                a.send(b.local_peer, "t", b"after reconnect")
                assert (await collect(b, 1))[0].data == b"after reconnect"
            nursery.cancel_scope.cancel()


async def test_cancelling_the_service_closes_the_host_cleanly_every_time(tmp_path: Path) -> None:
    for attempt in range(5):
        a, b = make_network(tmp_path, "a"), make_network(tmp_path, "b")
        a.register_handler(ECHO, echo)
        a.subscribe("t")
        b.subscribe("t")
        with trio.fail_after(TEST_TIMEOUT_S):
            async with trio.open_nursery() as nursery:
                await start(nursery, [a, b])
                await connect_all([a, b])
                for i in range(50):  # traffic in flight when the scope is cancelled
                    b.send(a.local_peer, "t", b"%d" % i)
                    b.broadcast("t", b"%d" % i)
                nursery.start_soon(b.request, a.local_peer, ECHO, b"hang", 10_000)
                await a.wait_arrival(0)
                nursery.cancel_scope.cancel()
        assert a.listen_addrs == () and a.peers() == (), f"attempt {attempt}"
        with pytest.raises(RuntimeError, match="serves once"):
            await a.serve()

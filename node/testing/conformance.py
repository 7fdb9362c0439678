"""The conformance check every ``node.ports.Network`` implementation must pass.

It is async so that it can drive any implementation: the in-memory hub, the simulator's
network, or the libp2p adapter under trio. An implementation supplies a ``NetworkHarness``
(open N connected peers, let messages in flight make progress, close) and runs, in a test::

    async def test_my_network_conforms():
        await check_network_conformance(MyHarness())

A violation raises ``ConformanceError`` naming the check and what was seen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Final, Protocol

from node.errors import InvalidTopicError, MessageTooLargeError, UnknownPeerError
from node.ports import InboundMessage, Network
from node.testing.network import MemoryNetwork

PEER_COUNT: Final = 3
FIFO_MESSAGE_COUNT: Final = 64
DEFAULT_MAX_SETTLE_ROUNDS: Final = 100
TOPIC: Final = "conformance/broadcast"
DIRECT_TOPIC: Final = "conformance/direct"
RECEIVE_BATCH: Final = 1_000


class ConformanceError(AssertionError):
    """A ``Network`` implementation broke the contract of ``node.ports.Network``."""


class NetworkHarness(Protocol):
    """What ``check_network_conformance`` needs from an implementation's test setup."""

    async def open(self, peer_count: int) -> Sequence[Network]:
        """``peer_count`` networks of distinct peers that all know one another."""
        ...

    async def settle(self) -> None:
        """Let messages in flight make progress (deliver what can be delivered now)."""
        ...

    async def close(self) -> None:
        """Release everything ``open`` made."""
        ...


class MemoryNetworkHarness:
    """The harness of ``MemoryNetwork`` (messages held in flight until ``settle``)."""

    def __init__(self, max_message_bytes: int = 64 * 1024) -> None:
        self.hub = MemoryNetwork(max_message_bytes=max_message_bytes, auto_deliver=False)

    async def open(self, peer_count: int) -> Sequence[Network]:
        return [self.hub.join(f"peer-{i}") for i in range(peer_count)]

    async def settle(self) -> None:
        self.hub.deliver()

    async def close(self) -> None:
        self.hub.heal()


async def check_network_conformance(
    harness: NetworkHarness, *, max_settle_rounds: int = DEFAULT_MAX_SETTLE_ROUNDS
) -> list[str]:
    """Run every check on fresh peers from ``harness``; returns the names of the checks
    (all passed) or raises ``ConformanceError`` at the first violation."""
    checker = _Checker(harness, max_settle_rounds)
    networks = await harness.open(PEER_COUNT)
    try:
        return await checker.run(list(networks))
    finally:
        await harness.close()


class _Checker:
    def __init__(self, harness: NetworkHarness, max_settle_rounds: int) -> None:
        self.harness = harness
        self.max_settle_rounds = max_settle_rounds

    async def run(self, nets: list[Network]) -> list[str]:
        _expect(len(nets) == PEER_COUNT, "open", f"asked for {PEER_COUNT} peers")
        checks = [
            ("identity", self.check_identity),
            ("direct delivery", self.check_direct),
            ("broadcast reaches all others, not the sender", self.check_broadcast),
            ("broadcast skips unsubscribed peers", self.check_unsubscribed),
            ("per-peer FIFO", self.check_fifo),
            ("receive honours max_messages", self.check_receive_limit),
            ("size limit", self.check_size_limit),
            ("typed errors", self.check_errors),
        ]
        for net in nets:
            net.subscribe(TOPIC)
        await self.drain(nets)
        for name, check in checks:
            await check(nets)
            await self.expect_quiet(nets, name)
        return [name for name, _ in checks]

    async def check_identity(self, nets: list[Network]) -> None:
        ids = [net.local_peer for net in nets]
        _expect(len(set(ids)) == len(ids), "identity", f"peer ids not distinct: {ids}")
        for net in nets:
            others = tuple(sorted(i for i in ids if i != net.local_peer))
            peers = net.peers()
            _expect(
                set(others) <= set(peers) and net.local_peer not in peers,
                "identity",
                f"{net.local_peer}.peers() = {peers}, expected to include {others} and not self",
            )
            _expect(list(peers) == sorted(peers), "identity", "peers() is not sorted")

    async def check_direct(self, nets: list[Network]) -> None:
        a, b = nets[0], nets[1]
        a.send(b.local_peer, DIRECT_TOPIC, b"hello")
        a.send(b.local_peer, DIRECT_TOPIC, b"")
        got = await self.collect(b, 2, "direct delivery")
        want = [
            InboundMessage(a.local_peer, DIRECT_TOPIC, b"hello"),
            InboundMessage(a.local_peer, DIRECT_TOPIC, b""),
        ]
        _expect(got == want, "direct delivery", f"got {got}, expected {want}")

    async def check_broadcast(self, nets: list[Network]) -> None:
        sender, others = nets[0], nets[1:]
        sender.broadcast(TOPIC, b"to everyone")
        want = [InboundMessage(sender.local_peer, TOPIC, b"to everyone")]
        for net in others:
            got = await self.collect(net, 1, "broadcast")
            _expect(got == want, "broadcast", f"{net.local_peer} got {got}, expected {want}")
        await self.harness.settle()
        echo = sender.receive(RECEIVE_BATCH)
        _expect(not echo, "broadcast", f"the sender received its own broadcast: {echo}")

    async def check_unsubscribed(self, nets: list[Network]) -> None:
        sender, listener, deaf = nets
        deaf.unsubscribe(TOPIC)
        await self.drain(nets)  # let an unsubscription propagate where it has to
        sender.broadcast(TOPIC, b"not for the deaf")
        got = await self.collect(listener, 1, "unsubscribe")
        _expect(len(got) == 1, "unsubscribe", f"the subscribed peer got {got}")
        await self.harness.settle()
        leaked = deaf.receive(RECEIVE_BATCH)
        _expect(not leaked, "unsubscribe", f"an unsubscribed peer got {leaked}")
        deaf.subscribe(TOPIC)
        await self.drain(nets)

    async def check_fifo(self, nets: list[Network]) -> None:
        a, b = nets[0], nets[1]
        payloads = [i.to_bytes(2, "big") for i in range(FIFO_MESSAGE_COUNT)]
        for payload in payloads:
            a.send(b.local_peer, DIRECT_TOPIC, payload)
        got = [m.data for m in await self.collect(b, len(payloads), "FIFO (send)")]
        _expect(got == payloads, "FIFO (send)", "direct messages arrived out of order")
        for payload in payloads:
            a.broadcast(TOPIC, payload)
        for net in nets[1:]:
            got = [m.data for m in await self.collect(net, len(payloads), "FIFO (broadcast)")]
            _expect(got == payloads, "FIFO (broadcast)", "broadcasts arrived out of order")
        await self.drain(nets)

    async def check_receive_limit(self, nets: list[Network]) -> None:
        a, b = nets[0], nets[1]
        for i in range(5):
            a.send(b.local_peer, DIRECT_TOPIC, bytes([i]))
        got: list[InboundMessage] = []
        for _ in range(self.max_settle_rounds):
            await self.harness.settle()
            got += b.receive(2)
            if len(got) >= 5:
                break
        _expect([m.data for m in got] == [bytes([i]) for i in range(5)], "receive", f"{got}")
        _expect(b.receive(RECEIVE_BATCH) == [], "receive", "receive on an empty inbox")
        _raises(ValueError, "receive(0)", lambda: b.receive(0))

    async def check_size_limit(self, nets: list[Network]) -> None:
        a, b = nets[0], nets[1]
        limit = a.max_message_bytes
        too_big = bytes(limit + 1)
        _raises(
            MessageTooLargeError,
            "oversize send",
            lambda: a.send(b.local_peer, DIRECT_TOPIC, too_big),
        )
        _raises(MessageTooLargeError, "oversize broadcast", lambda: a.broadcast(TOPIC, too_big))
        biggest = bytes(range(256)) * (limit // 256) + bytes(limit % 256)
        a.send(b.local_peer, DIRECT_TOPIC, biggest)
        got = await self.collect(b, 1, "size limit")
        _expect(got[0].data == biggest, "size limit", "a message of exactly the limit changed")

    async def check_errors(self, nets: list[Network]) -> None:
        a, b = nets[0], nets[1]
        _raises(UnknownPeerError, "unknown peer", lambda: a.send("no-such-peer", DIRECT_TOPIC, b""))
        for topic in ("", "UPPER", "a" * 65, "sp ace"):
            check = f"topic {topic!r}"
            _raises(InvalidTopicError, check, partial(a.broadcast, topic, b""))
            _raises(InvalidTopicError, check, partial(a.send, b.local_peer, topic, b""))

    # -- helpers ----------------------------------------------------------------------------

    async def collect(self, net: Network, count: int, check: str) -> list[InboundMessage]:
        """Exactly ``count`` messages for ``net`` (more or fewer is a violation)."""
        got: list[InboundMessage] = []
        for _ in range(self.max_settle_rounds):
            await self.harness.settle()
            got += net.receive(RECEIVE_BATCH)
            if len(got) >= count:
                break
        await self.harness.settle()
        got += net.receive(RECEIVE_BATCH)
        _expect(
            len(got) == count,
            check,
            f"{net.local_peer} received {len(got)} messages, expected {count}",
        )
        return got

    async def drain(self, nets: list[Network]) -> None:
        await self.harness.settle()
        for net in nets:
            net.receive(RECEIVE_BATCH)

    async def expect_quiet(self, nets: list[Network], check: str) -> None:
        await self.harness.settle()
        for net in nets:
            extra = net.receive(RECEIVE_BATCH)
            _expect(not extra, check, f"{net.local_peer} got unexpected messages {extra}")


def _expect(condition: bool, check: str, detail: str) -> None:
    if not condition:
        raise ConformanceError(f"{check}: {detail}")


def _raises(error: type[Exception], check: str, action: Callable[[], object]) -> None:
    try:
        action()
    except error:
        return
    except Exception as exc:  # the wrong type of error is a violation too
        raise ConformanceError(
            f"{check}: raised {type(exc).__name__}, not {error.__name__}"
        ) from exc
    raise ConformanceError(f"{check}: no {error.__name__} raised")

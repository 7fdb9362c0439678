"""Request/response on memory streams, under trio's virtual clock (no real time passes)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trio
import trio.testing

from node.adapters.errors import FrameTooLargeError, MalformedFrameError
from node.adapters.framing import encode_uvarint
from node.adapters.rpc import RequestClient, ServerLimits, serve_requests
from node.adapters.streams import ByteStream
from node.errors import (
    PeerBusyError,
    PeerUnreachableError,
    RemoteError,
    RequestRejectedError,
    RequestTimeoutError,
)
from tests.adapters.memory_streams import MemoryByteStream, byte_stream_pair

PROTOCOL = "/bighealth/test/1"
LIMITS = ServerLimits(max_frame_bytes=1024, handler_timeout_s=5.0, idle_timeout_s=60.0)


class Peer:
    """A fake remote peer: every stream opened to it is served by ``handler``."""

    def __init__(
        self,
        nursery: trio.Nursery,
        handler: Callable[[str, bytes], Awaitable[bytes]],
        *,
        limits: ServerLimits = LIMITS,
        slots: int = 8,
    ) -> None:
        self.nursery = nursery
        self.handler = handler
        self.limits = limits
        self.slots = trio.CapacityLimiter(slots)
        self.opened: list[MemoryByteStream] = []
        self.served: list[int] = []
        self.violations: list[Exception] = []

    async def open_stream(self, peer: str, protocol: str) -> ByteStream:
        assert protocol == PROTOCOL
        ours, theirs = byte_stream_pair()
        self.opened.append(ours)
        self.nursery.start_soon(self._serve, theirs)
        return ours

    async def _serve(self, stream: MemoryByteStream) -> None:
        try:
            self.served.append(
                await serve_requests(stream, "client", self.handler, self.limits, self.slots)
            )
        except (MalformedFrameError, FrameTooLargeError) as exc:
            self.violations.append(exc)


async def reverse(peer: str, data: bytes) -> bytes:
    return data[::-1]


@pytest.fixture
async def nursery() -> AsyncIterator[trio.Nursery]:
    async with trio.open_nursery() as nursery:
        yield nursery
        nursery.cancel_scope.cancel()


async def test_requests_reuse_one_long_lived_stream(nursery: trio.Nursery) -> None:
    peer = Peer(nursery, reverse)
    client = RequestClient(peer.open_stream, max_frame_bytes=1024)
    for i in range(20):
        request = b"request %d" % i
        assert await client.request("p", PROTOCOL, request, 1.0) == request[::-1]
    assert len(peer.opened) == 1
    assert client.idle_streams == 1


async def test_concurrent_requests_open_at_most_the_stream_limit(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    async def slow(peer: str, data: bytes) -> bytes:
        await trio.sleep(1)
        return data

    peer = Peer(nursery, slow)
    client = RequestClient(
        peer.open_stream, max_frame_bytes=1024, max_streams_per_key=3, max_idle_per_key=3
    )
    results: list[bytes] = []

    async def one(i: int) -> None:
        results.append(await client.request("p", PROTOCOL, bytes([i]), 60.0))

    async with trio.open_nursery() as group:
        for i in range(10):
            group.start_soon(one, i)
    assert sorted(results) == [bytes([i]) for i in range(10)]
    assert len(peer.opened) == 3
    assert client.idle_streams == 3


async def test_streams_beyond_the_idle_limit_are_closed(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    async def slow(peer: str, data: bytes) -> bytes:
        await trio.sleep(1)
        return data

    peer = Peer(nursery, slow)
    client = RequestClient(peer.open_stream, max_frame_bytes=1024, max_idle_per_key=1)
    async with trio.open_nursery() as group:
        for i in range(3):
            group.start_soon(client.request, "p", PROTOCOL, bytes([i]), 60.0)
    assert len(peer.opened) == 3
    assert client.idle_streams == 1
    await trio.testing.wait_all_tasks_blocked()
    assert sorted(peer.served) == [1, 1]  # two servers saw their stream end


async def test_a_timed_out_stream_is_reset_never_reused(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    calls = 0

    async def first_call_hangs(peer: str, data: bytes) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 1:
            await trio.sleep(3)
        return data

    peer = Peer(nursery, first_call_hangs)
    client = RequestClient(peer.open_stream, max_frame_bytes=1024)
    with pytest.raises(RequestTimeoutError, match="within 1000 ms"):
        await client.request("p", PROTOCOL, b"late", 1.0)
    assert peer.opened[0].was_reset
    assert await client.request("p", PROTOCOL, b"fresh", 1.0) == b"fresh"
    assert len(peer.opened) == 2


async def test_handler_failures_come_back_as_remote_errors(nursery: trio.Nursery) -> None:
    async def picky(peer: str, data: bytes) -> bytes:
        if data == b"refuse":
            raise RequestRejectedError("no such height")
        if data == b"crash":
            raise KeyError("secret internal detail")
        return b"ok"

    peer = Peer(nursery, picky)
    client = RequestClient(peer.open_stream, max_frame_bytes=1024)
    with pytest.raises(RemoteError, match="no such height"):
        await client.request("p", PROTOCOL, b"refuse", 1.0)
    with pytest.raises(RemoteError, match="internal error") as caught:
        await client.request("p", PROTOCOL, b"crash", 1.0)
    assert "secret" not in str(caught.value)
    assert await client.request("p", PROTOCOL, b"fine", 1.0) == b"ok"
    assert len(peer.opened) == 1  # an error response leaves the stream usable


async def test_server_side_timeouts_and_busy_slots(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    async def forever(peer: str, data: bytes) -> bytes:
        await trio.sleep_forever()
        raise AssertionError

    limits = ServerLimits(max_frame_bytes=1024, handler_timeout_s=2.0)
    peer = Peer(nursery, forever, limits=limits, slots=1)
    client = RequestClient(peer.open_stream, max_frame_bytes=1024)
    outcomes: list[str] = []

    async def one() -> None:
        try:
            await client.request("p", PROTOCOL, b"x", 10.0)
        except PeerBusyError:
            outcomes.append("busy")
        except RemoteError as exc:
            outcomes.append(str(exc))

    async with trio.open_nursery() as group:
        group.start_soon(one)
        await trio.testing.wait_all_tasks_blocked()
        group.start_soon(one)
    assert sorted(outcomes) == ["busy", "peer refused the request: handler timed out"]


async def test_size_limits_on_both_sides(nursery: trio.Nursery) -> None:
    async def huge(peer: str, data: bytes) -> bytes:
        return b"z" * 2000

    generous = ServerLimits(max_frame_bytes=4096, handler_timeout_s=1.0)
    peer = Peer(nursery, huge, limits=generous)
    client = RequestClient(peer.open_stream, max_frame_bytes=1024)
    with pytest.raises(FrameTooLargeError, match="1025 bytes"):
        await client.request("p", PROTOCOL, b"q" * 1025, 1.0)
    assert peer.opened == []  # refused before any stream was opened
    with pytest.raises(FrameTooLargeError, match="peer announced"):
        await client.request("p", PROTOCOL, b"q", 1.0)
    stingy = Peer(nursery, huge)  # its frame limit (1024) is below the response
    client = RequestClient(stingy.open_stream, max_frame_bytes=1024)
    with pytest.raises(RemoteError, match="response too large"):
        await client.request("p", PROTOCOL, b"q", 1.0)


async def test_garbage_from_a_requester_is_a_protocol_violation(nursery: trio.Nursery) -> None:
    peer = Peer(nursery, reverse)
    stream = await peer.open_stream("p", PROTOCOL)
    await stream.write(b"\x80\x00")  # a non-minimal varint
    assert await stream.read(10) == b""  # the server reset the stream
    await trio.testing.wait_all_tasks_blocked()
    assert [type(v) for v in peer.violations] == [MalformedFrameError]
    stream = await peer.open_stream("p", PROTOCOL)
    await stream.write(encode_uvarint(10**6))
    await trio.testing.wait_all_tasks_blocked()
    assert [type(v) for v in peer.violations] == [MalformedFrameError, FrameTooLargeError]


async def test_a_stream_the_server_idled_out_is_replaced_transparently(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    limits = ServerLimits(max_frame_bytes=1024, handler_timeout_s=1.0, idle_timeout_s=10.0)
    peer = Peer(nursery, reverse, limits=limits)
    client = RequestClient(peer.open_stream, max_frame_bytes=1024, idle_timeout_s=30.0)
    assert await client.request("p", PROTOCOL, b"ab", 1.0) == b"ba"
    await trio.sleep(15)  # the server closes its side after 10 s idle; the client keeps 30 s
    assert await client.request("p", PROTOCOL, b"cd", 1.0) == b"dc"
    assert len(peer.opened) == 2
    assert peer.served == [1]


async def test_an_unreachable_peer_and_forgetting_a_peer(nursery: trio.Nursery) -> None:
    async def refuse(peer: str, protocol: str) -> ByteStream:
        raise PeerUnreachableError("not connected")

    client = RequestClient(refuse, max_frame_bytes=1024)
    with pytest.raises(PeerUnreachableError):
        await client.request("p", PROTOCOL, b"x", 1.0)
    peer = Peer(nursery, reverse)
    client = RequestClient(peer.open_stream, max_frame_bytes=1024)
    await client.request("p", PROTOCOL, b"x", 1.0)
    await client.forget_peer("p")
    assert client.idle_streams == 0 and peer.opened[0].was_reset

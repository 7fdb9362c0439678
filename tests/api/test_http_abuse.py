"""Network abuse of the HTTP API: idle and half-open connections, slow clients, big bodies.

The crowding tests run on real loopback sockets with the server's default limits (the
attacker binds 127.0.0.2.., the honest client 127.0.0.1: Linux routes all of 127/8 to
loopback). The time limits run on memory streams under trio's autojump clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from node.api.http import HttpLimits, HttpServer, Request, Response

LIMITS = HttpLimits()
ATTACK_CONNECTIONS = 200


async def answer(request: Request) -> Response:
    return Response(200, b'{"ok": true}')


@pytest.fixture
async def server_port() -> AsyncIterator[tuple[HttpServer, int]]:
    server = HttpServer(answer, LIMITS)
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        nursery.start_soon(trio.serve_listeners, server.serve_connection, listeners)
        yield server, listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


async def get(port: int, local: str = "127.0.0.1", target: str = "/status") -> bytes:
    """One GET with ``connection: close``; everything the server sent."""
    stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=local)
    async with stream:
        await stream.send_all(
            b"GET %s HTTP/1.1\r\nhost: n\r\nconnection: close\r\n\r\n" % target.encode()
        )
        return await read_all(stream)


async def read_all(stream: trio.abc.ReceiveStream) -> bytes:
    received = b""
    with trio.fail_after(10):
        while chunk := await stream.receive_some(65536):
            received += chunk
    return received


async def test_one_client_with_200_idle_and_half_open_connections_does_not_deny_others(
    server_port: tuple[HttpServer, int],
) -> None:
    server, port = server_port
    attack: list[trio.SocketStream] = []
    for index in range(ATTACK_CONNECTIONS):
        stream = await trio.open_tcp_stream("127.0.0.1", port, local_address="127.0.0.2")
        if index % 2:  # every other one half-open: a request head that never ends
            await stream.send_all(b"GET / HTTP/1.1\r\nhost: n\r\n")
        attack.append(stream)
    refused = ATTACK_CONNECTIONS - LIMITS.max_connections_per_client
    await _until(lambda: server.refused_connections == refused)
    assert server.connections_by_client == {"127.0.0.2": LIMITS.max_connections_per_client}
    for _ in range(20):
        assert (await get(port)).startswith(b"HTTP/1.1 200 OK")
    assert server.refused_connections == refused  # the honest client never was
    for stream in attack:
        await stream.aclose()


async def test_idle_connections_from_many_addresses_give_way_to_a_new_client(
    server_port: tuple[HttpServer, int],
) -> None:
    server, port = server_port
    per_client = LIMITS.max_connections_per_client
    attackers = [f"127.0.0.{n}" for n in range(2, 2 + LIMITS.max_connections // per_client)]
    idle = [
        await trio.open_tcp_stream("127.0.0.1", port, local_address=address)
        for address in attackers
        for _ in range(per_client)
    ]
    await _until(lambda: server.active_connections == LIMITS.max_connections)
    assert (await get(port)).startswith(b"HTTP/1.1 200 OK")  # an idle one made room
    assert server.evicted_connections >= 1
    for stream in idle:
        await stream.aclose()


async def test_a_declared_oversized_body_gets_413_before_it_is_sent(
    server_port: tuple[HttpServer, int],
) -> None:
    _, port = server_port
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        length = LIMITS.max_body_bytes + 1
        await stream.send_all(
            b"POST /tx HTTP/1.1\r\nhost: n\r\ncontent-length: %d\r\n\r\n" % length
        )
        answer_bytes = await read_all(stream)
    assert answer_bytes.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in answer_bytes


async def test_an_oversized_chunked_body_gets_413_while_it_is_read(
    server_port: tuple[HttpServer, int],
) -> None:
    _, port = server_port
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    chunk = b"x" * (64 * 1024)
    async with stream:
        await stream.send_all(b"POST /tx HTTP/1.1\r\nhost: n\r\ntransfer-encoding: chunked\r\n\r\n")
        sent = 0
        with trio.move_on_after(10):  # the server stops reading (and closes) once it judged
            while sent <= 2 * LIMITS.max_body_bytes:
                await stream.send_all(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        answer_bytes = await read_all(stream)
    assert answer_bytes.startswith(b"HTTP/1.1 413 ")  # the lingering close kept it readable


# -- the time limits (memory streams, virtual time) ---------------------------------------

TIMED = HttpLimits(idle_timeout_s=3.0, header_timeout_s=4.0, request_timeout_s=9.0)


async def _served(nursery: trio.Nursery, server: HttpServer) -> trio.abc.Stream:
    client, server_side = trio.testing.memory_stream_pair()
    nursery.start_soon(server.serve_connection, server_side)
    return client


async def test_a_slowloris_head_is_cut_off_after_the_header_timeout(
    autojump_clock: MockClock,
) -> None:
    server = HttpServer(answer, TIMED)
    async with trio.open_nursery() as nursery:
        client = await _served(nursery, server)
        started = trio.current_time()
        for byte in b"GET / HTTP/1.1\r\nhost: n\r\nx-slow: " + b"y" * 100:
            if not await _trickle(client, bytes([byte])):  # a byte a second: never a head
                break
        answer_bytes = await read_all(client)
        assert answer_bytes.startswith(b"HTTP/1.1 408 ")
        assert b"head took too long" in answer_bytes
        assert trio.current_time() - started <= TIMED.header_timeout_s + 2


async def test_a_slow_body_is_cut_off_after_the_request_timeout(
    autojump_clock: MockClock,
) -> None:
    server = HttpServer(answer, TIMED)
    async with trio.open_nursery() as nursery:
        client = await _served(nursery, server)
        started = trio.current_time()
        await client.send_all(b"POST / HTTP/1.1\r\nhost: n\r\ncontent-length: 1000\r\n\r\n")
        for _ in range(100):  # a byte a second: the body would take 1000 s
            if not await _trickle(client, b"z"):
                break
        answer_bytes = await read_all(client)
        assert answer_bytes.startswith(b"HTTP/1.1 408 ")
        assert b"body took too long" in answer_bytes
        assert trio.current_time() - started <= TIMED.request_timeout_s + 2


async def test_an_idle_connection_is_closed_after_the_idle_timeout(
    autojump_clock: MockClock,
) -> None:
    server = HttpServer(answer, TIMED)
    async with trio.open_nursery() as nursery:
        client = await _served(nursery, server)
        started = trio.current_time()
        assert await read_all(client) == b""  # closed without a word
        assert TIMED.idle_timeout_s <= trio.current_time() - started < TIMED.header_timeout_s


async def test_a_kept_alive_connection_is_closed_after_the_idle_timeout(
    autojump_clock: MockClock,
) -> None:
    server = HttpServer(answer, TIMED)
    async with trio.open_nursery() as nursery:
        client = await _served(nursery, server)
        await client.send_all(b"GET / HTTP/1.1\r\nhost: n\r\n\r\n")
        first = await client.receive_some(65536)
        assert first.startswith(b"HTTP/1.1 200 OK")
        started = trio.current_time()
        assert await read_all(client) == b""
        assert trio.current_time() - started >= TIMED.idle_timeout_s


def test_every_limit_is_checked() -> None:
    for name in ("idle_timeout_s", "header_timeout_s", "request_timeout_s"):
        with pytest.raises(ValueError, match="timeouts"):
            HttpLimits(**{name: 0.0})  # type: ignore[arg-type]


async def _trickle(client: trio.abc.Stream, data: bytes) -> bool:
    """Send ``data``, then wait a second; False once the server stopped listening."""
    try:
        await client.send_all(data)
    except trio.BrokenResourceError:
        return False
    await trio.sleep(1)
    return True


async def _until(condition: Callable[[], bool]) -> None:
    """Wait (real sockets: the kernel decides when the server accepts) until ``condition``."""
    with trio.fail_after(10):
        while not condition():
            await trio.sleep(0.005)

"""The HTTP server: routing to the handler, keep-alive, and every bound a client controls."""

from __future__ import annotations

import socket
from collections.abc import Callable

import h11
import pytest
import trio
import trio.testing
from trio.testing import MockClock

from node.api.http import ApiBindError, HttpLimits, HttpServer, Request, Response, serve_http

MANY_HEADERS = b"".join(b"h%d: v\r\n" % i for i in range(70))
LIMITS = HttpLimits(
    max_connections=2,
    max_header_bytes=1024,
    max_body_bytes=64,
    request_timeout_s=5.0,
    handler_timeout_s=5.0,
    max_requests_per_connection=3,
)


async def echo(request: Request) -> Response:
    if request.path == "/boom":
        raise RuntimeError("a bug")
    if request.path == "/slow":
        await trio.sleep(60)
    body = f"{request.method} {request.path} {sorted(request.query.items())} {request.body!r}"
    return Response(200, body.encode(), content_type="text/plain")


class Client:
    """One connection to a server over a memory stream, speaking h11."""

    def __init__(self, nursery: trio.Nursery, server: HttpServer) -> None:
        self.stream, server_side = trio.testing.memory_stream_pair()
        nursery.start_soon(server.serve_connection, server_side)
        self.h11 = h11.Connection(h11.CLIENT)

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def request(self, method: str, target: str, body: bytes = b"") -> None:
        headers = [("host", "node"), ("content-length", str(len(body)))]
        data = self.h11.send(h11.Request(method=method, target=target, headers=headers))
        data = (data or b"") + (self.h11.send(h11.Data(data=body)) or b"")
        data += self.h11.send(h11.EndOfMessage()) or b""
        await self.stream.send_all(data)

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = 0, {}, b""
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(await self.stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
                    self.h11.start_next_cycle()
                return status, headers, body
            else:
                raise AssertionError(f"unexpected {event!r}")

    async def closed(self) -> bool:
        """True once the server closed its side."""
        return await self.stream.receive_some(65536) == b""


async def test_requests_reach_the_handler_with_path_query_and_body() -> None:
    server = HttpServer(echo, LIMITS)
    async with trio.open_nursery() as nursery:
        client = Client(nursery, server)
        await client.request("POST", "/tx?a=1&b=two", b"raw")
        status, headers, body = await client.response()
        assert status == 200
        assert body == b"POST /tx [('a', '1'), ('b', 'two')] b'raw'"
        assert headers["content-type"] == "text/plain"
        assert headers["content-length"] == str(len(body))
        await client.request("GET", "/second")  # the same connection, kept alive
        assert (await client.response())[2].startswith(b"GET /second")
        nursery.cancel_scope.cancel()


async def test_a_connection_serves_a_bounded_number_of_requests() -> None:
    server = HttpServer(echo, LIMITS)
    async with trio.open_nursery() as nursery:
        client = Client(nursery, server)
        for index in range(LIMITS.max_requests_per_connection):
            await client.request("GET", "/")
            status, headers, _ = await client.response()
            assert status == 200
            last = index == LIMITS.max_requests_per_connection - 1
            assert (headers.get("connection") == "close") == last  # the client is told
        assert await client.closed()


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"POST / HTTP/1.1\r\nhost: n\r\ncontent-length: 65\r\n\r\n", 413),
        (
            b"POST / HTTP/1.1\r\nhost: n\r\ntransfer-encoding: chunked\r\n\r\n50\r\n" + b"x" * 80,
            413,
        ),
        (b"GET / HTTP/1.1\r\nhost: n\r\nx-big: " + b"y" * 2000 + b"\r\n\r\n", 431),
        (b"NONSENSE\r\n\r\n", 400),
        (
            b"GET / HTTP/1.1\r\nhost: n\r\n"
            + b"".join(b"h%d: v\r\n" % i for i in range(70))
            + b"\r\n",
            431,
        ),
    ],
)
async def test_oversized_or_malformed_requests_get_an_error_and_the_connection_closes(
    raw: bytes, status: int, autojump_clock: MockClock
) -> None:
    server = HttpServer(echo, LIMITS)
    async with trio.open_nursery() as nursery:
        client = Client(nursery, server)
        await client.send_raw(raw)
        code, headers, body = await client.response()
        assert code == status
        assert headers["connection"] == "close"
        assert b'"error"' in body
        assert await client.closed()


async def test_a_request_that_does_not_arrive_in_time_gets_408(autojump_clock: MockClock) -> None:
    server = HttpServer(echo, LIMITS)
    async with trio.open_nursery() as nursery:
        client = Client(nursery, server)
        await client.send_raw(b"GET / HTTP/1.1\r\nhost: n\r\n")  # headers never finish
        assert (await client.response())[0] == 408
        assert await client.closed()


async def test_an_idle_kept_alive_connection_is_closed_quietly(autojump_clock: MockClock) -> None:
    server = HttpServer(echo, LIMITS)
    async with trio.open_nursery() as nursery:
        client = Client(nursery, server)
        await client.request("GET", "/")
        await client.response()
        assert await client.closed()  # after request_timeout_s of silence, no 408 sent


async def test_a_failing_handler_gives_500_and_a_slow_one_503(autojump_clock: MockClock) -> None:
    server = HttpServer(echo, LIMITS)
    async with trio.open_nursery() as nursery:
        client = Client(nursery, server)
        await client.request("GET", "/boom")
        status, _, body = await client.response()
        assert status == 500 and b"a bug" not in body
        await client.request("GET", "/slow")
        assert (await client.response())[0] == 503
        nursery.cancel_scope.cancel()


async def test_connections_beyond_the_limit_are_turned_away_when_none_is_idle() -> None:
    server = HttpServer(echo, LIMITS)
    async with trio.open_nursery() as nursery:
        held = [Client(nursery, server) for _ in range(LIMITS.max_connections)]
        for client in held:  # each in the middle of a request: none is idle
            await client.send_raw(b"GET / HTTP/1.1\r\n")
        await trio.testing.wait_all_tasks_blocked()
        assert server.active_connections == LIMITS.max_connections
        extra = Client(nursery, server)
        status, _, body = await extra.response()
        assert status == 503 and b"too many connections" in body
        assert await extra.closed()
        await held[0].send_raw(b"host: n\r\n\r\n")
        assert (await held[0].response())[0] == 200
        nursery.cancel_scope.cancel()


async def test_a_connection_beyond_the_limit_takes_the_place_of_the_longest_idle() -> None:
    server = HttpServer(echo, LIMITS)
    async with trio.open_nursery() as nursery:
        held = []
        for _ in range(LIMITS.max_connections):  # one at a time: their idle waits in order
            held.append(Client(nursery, server))
            await trio.testing.wait_all_tasks_blocked()
        extra = Client(nursery, server)
        await trio.testing.wait_all_tasks_blocked()
        assert server.evicted_connections == 1
        assert await held[0].closed()  # the oldest idle one, closed without a word
        await extra.request("GET", "/")
        assert (await extra.response())[0] == 200
        await held[1].request("GET", "/")
        assert (await held[1].response())[0] == 200
        nursery.cancel_scope.cancel()


async def test_an_address_in_use_is_a_typed_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ApiBindError, match=f"127.0.0.1:{port}"):
            await serve_http("127.0.0.1", port, echo, LIMITS)


async def test_the_server_reports_its_bound_address_and_serves_tcp() -> None:
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(serve_http, "127.0.0.1", 0, echo, LIMITS)
        stream = await trio.open_tcp_stream(host, port)
        await stream.send_all(b"GET /x HTTP/1.1\r\nhost: n\r\nconnection: close\r\n\r\n")
        received = b""
        while chunk := await stream.receive_some(4096):
            received += chunk
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        assert received.endswith(b"GET /x [] b''")
        nursery.cancel_scope.cancel()


async def test_a_request_over_tcp_names_the_client_address() -> None:
    seen: list[str] = []

    async def record(request: Request) -> Response:
        seen.append(request.client)
        return Response(200, b"{}")

    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(serve_http, "127.0.0.1", 0, record, LIMITS)
        stream = await trio.open_tcp_stream(host, port)
        await stream.send_all(b"GET /x HTTP/1.1\r\nhost: n\r\nconnection: close\r\n\r\n")
        while await stream.receive_some(4096):
            pass
        nursery.cancel_scope.cancel()
    assert seen == ["127.0.0.1"]
    # a stream that is not a socket (a test's memory stream) names no client
    server = HttpServer(record, LIMITS)
    async with trio.open_nursery() as nursery:
        client = Client(nursery, server)
        await client.request("GET", "/y")
        await client.response()
        nursery.cancel_scope.cancel()
    assert seen == ["127.0.0.1", ""]


async def test_one_client_cannot_hold_every_connection() -> None:
    limits = HttpLimits(max_connections=10, max_connections_per_client=2, request_timeout_s=5.0)
    async with trio.open_nursery() as nursery:
        server = HttpServer(echo, limits)
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, server.serve_connection, listeners)
        held = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(2)]
        await _until(lambda: server.connections_by_client == {"127.0.0.1": 2})
        extra = await trio.open_tcp_stream("127.0.0.1", port)
        answer = await extra.receive_some(4096)
        assert answer.startswith(b"HTTP/1.1 503")  # the third idle connection is turned away
        await held[0].aclose()
        await _until(lambda: server.connections_by_client == {"127.0.0.1": 1})
        for stream in (held[1], extra):
            await stream.aclose()
        nursery.cancel_scope.cancel()


async def _until(condition: Callable[[], bool]) -> None:
    """Wait (real sockets: the kernel decides when the server accepts) until ``condition``."""
    with trio.fail_after(10):
        while not condition():
            await trio.sleep(0.005)

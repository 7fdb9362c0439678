"""A small HTTP/1.1 server on trio and h11, with a bound on everything a client controls.

h11 does the protocol (parsing, framing, keep-alive rules); this module does the I/O and
the limits:

- connections: at most ``max_connections`` served at once, and at most
  ``max_connections_per_client`` from one client address. A new connection past the
  per-client limit is answered ``503`` and closed at once (a crowd cannot make the node open
  unbounded tasks). A new connection past the total limit takes the place of the connection
  idle the longest (waiting for a request, no byte of it received), which is closed; only
  when none is idle is it answered ``503``. So clients holding idle connections cannot keep
  others out, and a client can always hold ``max_connections_per_client``;
- request size: headers within ``max_header_bytes`` (h11's incomplete-event limit, else
  ``431``), a body within ``max_body_bytes`` (``413``, checked against Content-Length before
  reading, and again while reading a chunked body);
- time: a connection waiting for a request (new, or kept alive after a response) is closed
  quietly after ``idle_timeout_s`` without a byte; once a request's first byte arrived, its
  head must be complete within ``header_timeout_s`` (slowloris) and the whole request, body
  included, within ``request_timeout_s`` (else ``408``); the handler must answer within
  ``handler_timeout_s`` (else ``503``); a keep-alive connection serves at most
  ``max_requests_per_connection``.

The application is one async ``Handler``: ``Request`` in, ``Response`` out. A handler that
raises is logged and answered ``500`` without detail (the error is ours, not the client's).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

import h11
import trio

from node.errors import BigHealthError

logger = logging.getLogger("node.api")

RECEIVE_CHUNK_BYTES: Final = 16 * 1024
MAX_QUERY_FIELDS: Final = 32
MAX_HEADERS: Final = 64
CLOSE_TIMEOUT_S: Final = 1.0
"""How long closing a connection may take (a peer that stopped reading cannot hold it)."""
LINGER_MAX_BYTES: Final = 1024 * 1024
"""After an error answer, what of the client's request is still read and discarded (at most
``CLOSE_TIMEOUT_S``), so that closing with unread data (a TCP reset) does not destroy the
answer before the client reads it."""
SERVER_NAME: Final = "bighealth"
REASONS: Final = {
    200: b"OK",
    202: b"Accepted",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Content Too Large",
    415: b"Unsupported Media Type",
    422: b"Unprocessable Content",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}


class ApiBindError(BigHealthError):
    """The API could not listen on its address (in use, not local, no permission)."""


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Bounds of the server (see the module docstring)."""

    max_connections: int = 64
    max_connections_per_client: int = 16
    """Connections one client address may hold at once: a client keeping many idle or
    half-open connections cannot take every slot from the others."""
    max_header_bytes: int = 16 * 1024
    max_body_bytes: int = 256 * 1024
    request_timeout_s: float = 10.0
    """The whole request (head and body) must arrive within this of its first byte."""
    handler_timeout_s: float = 10.0
    max_requests_per_connection: int = 1_000
    idle_timeout_s: float = 5.0
    """A connection waiting for a request (no byte of it yet) is closed after this."""
    header_timeout_s: float = 5.0
    """A request's head must arrive within this of its first byte (and within
    ``request_timeout_s``, whichever is shorter): a client trickling header bytes
    (slowloris) holds its connection no longer."""

    def __post_init__(self) -> None:
        for name in (
            "max_connections",
            "max_connections_per_client",
            "max_header_bytes",
            "max_body_bytes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"HttpLimits.{name} must be >= 1")
        timeouts_s = (
            self.request_timeout_s,
            self.handler_timeout_s,
            self.idle_timeout_s,
            self.header_timeout_s,
        )
        if min(timeouts_s) <= 0:
            raise ValueError("HttpLimits timeouts must be > 0")
        if self.max_requests_per_connection < 1:
            raise ValueError("HttpLimits.max_requests_per_connection must be >= 1")


@dataclass(frozen=True, slots=True)
class Request:
    """One request: method, path and query (decoded), lower-cased headers, the body, and the
    client's address (its IP, "" when unknown)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    client: str = ""


@dataclass(frozen=True, slots=True)
class Response:
    """One response; ``headers`` are added to the server's own."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)


Handler = Callable[[Request], Awaitable[Response]]


class _Refused(Exception):
    """The request cannot be served: answer ``status`` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def serve_http(
    host: str,
    port: int,
    handler: Handler,
    limits: HttpLimits | None = None,
    *,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``handler`` on ``host:port`` until cancelled; reports the bound ``(host,
    port)`` through ``task_status``. ``ApiBindError`` if the address cannot be bound."""
    server = HttpServer(handler, limits if limits is not None else HttpLimits())
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise ApiBindError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    bound = listeners[0].socket.getsockname()
    task_status.started((bound[0], bound[1]))
    await trio.serve_listeners(server.serve_connection, listeners)


class HttpServer:
    """Serves connections (``serve_connection`` is the per-connection task)."""

    def __init__(self, handler: Handler, limits: HttpLimits) -> None:
        self.handler = handler
        self.limits = limits
        self.active_connections = 0
        self.connections_by_client: dict[str, int] = {}
        """Open connections per client address (socket streams only; at most
        ``max_connections`` entries)."""
        self.refused_connections = 0
        """Connections answered ``503`` at once for want of room (since start)."""
        self.evicted_connections = 0
        """Idle connections closed to make room for a new one (since start)."""
        self._idle: dict[int, trio.CancelScope] = {}
        """Connections waiting for a request, oldest wait first (at most
        ``max_connections`` entries): cancelling one's scope closes it."""
        self._next_connection_id = 0

    async def serve_connection(self, stream: trio.abc.HalfCloseableStream) -> None:
        """Serve one connection until it closes, times out or breaks."""
        client = _peer_host(stream)
        held = self.connections_by_client.get(client, 0) if client else 0
        if held >= self.limits.max_connections_per_client or not self._make_room():
            self.refused_connections += 1
            await _reject_crowded(stream)
            return
        self.active_connections += 1
        if client:
            self.connections_by_client[client] = held + 1
        try:
            await self._serve(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away
        finally:
            self.active_connections -= 1
            if client:
                remaining = self.connections_by_client[client] - 1
                if remaining:
                    self.connections_by_client[client] = remaining
                else:
                    del self.connections_by_client[client]
            with trio.move_on_after(CLOSE_TIMEOUT_S):
                await stream.aclose()

    def _make_room(self) -> bool:
        """True if a new connection may be served: below the limit, or once the connection
        idle the longest was told to close. An evicted connection still counts in
        ``active_connections`` until it closed (within ``CLOSE_TIMEOUT_S``); it cannot be
        evicted twice, so at most ``max_connections`` more are ever closing."""
        if self.active_connections < self.limits.max_connections:
            return True
        if not self._idle:
            return False
        oldest = next(iter(self._idle))
        self._idle.pop(oldest).cancel()
        self.evicted_connections += 1
        return True

    async def _serve(self, stream: trio.abc.HalfCloseableStream) -> None:
        connection = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self.limits.max_header_bytes
        )
        last = self.limits.max_requests_per_connection - 1
        for served in range(self.limits.max_requests_per_connection):
            try:
                request = await self._read_request(connection, stream)
            except _Refused as refused:
                await _send_error(connection, stream, refused.status, str(refused))
                await _drain_before_close(stream)
                return
            if request is None:
                return
            response = await self._respond(request)
            if request.method == "HEAD":  # h11 refuses a body after a HEAD: send the head only
                response = replace(response, body=b"")
            if served == last:  # tell the client, so it does not send another on this one
                response = replace(response, headers=(*response.headers, ("connection", "close")))
            await _send(connection, stream, response)
            if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return
            connection.start_next_cycle()

    async def _read_request(
        self, connection: h11.Connection, stream: trio.abc.HalfCloseableStream
    ) -> Request | None:
        """The next request; ``None`` when the connection should close quietly (the client
        closed it, or it stayed idle past ``idle_timeout_s``, or it was evicted)."""
        buffered, closed = connection.trailing_data
        if not buffered and not closed:  # nothing of the next request yet: an idle wait
            first = await self._wait_while_idle(stream)
            if first is None:
                return None
            connection.receive_data(first)
        with trio.move_on_after(self.limits.request_timeout_s) as scope:
            request = await self._receive_request(connection, stream)
        if not scope.cancelled_caught:
            return request
        if connection.their_state is h11.SEND_BODY:
            raise _Refused(408, "the request body took too long to arrive")
        raise _Refused(408, "the request took too long to arrive")

    async def _receive_request(
        self, connection: h11.Connection, stream: trio.abc.HalfCloseableStream
    ) -> Request | None:
        """The request whose first bytes h11 holds: its head within ``header_timeout_s``,
        then its body (``None`` if the client closed before a request began)."""
        try:
            with trio.move_on_after(self.limits.header_timeout_s) as head_scope:
                head = await _next_event(connection, stream)
            if head_scope.cancelled_caught:
                raise _Refused(408, "the request head took too long to arrive")
            if not isinstance(head, h11.Request):
                return None  # ConnectionClosed
            self._check_declared_length(head)
            return await self._receive_body(connection, stream, head)
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            raise _Refused(status if status in REASONS else 400, str(exc)) from exc

    async def _wait_while_idle(self, stream: trio.abc.HalfCloseableStream) -> bytes | None:
        """The first bytes of the next request (``b""``: the client closed), or ``None``
        after ``idle_timeout_s`` of silence or when evicted to make room."""
        connection_id = self._next_connection_id
        self._next_connection_id += 1
        first: bytes | None = None
        with trio.move_on_after(self.limits.idle_timeout_s) as scope:
            self._idle[connection_id] = scope
            try:
                first = await stream.receive_some(RECEIVE_CHUNK_BYTES)
            finally:
                self._idle.pop(connection_id, None)
        return first

    async def _receive_body(
        self,
        connection: h11.Connection,
        stream: trio.abc.HalfCloseableStream,
        head: h11.Request,
    ) -> Request | None:
        body = bytearray()
        while True:
            event = await _next_event(connection, stream)
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.limits.max_body_bytes:
                    raise _Refused(413, f"the body exceeds {self.limits.max_body_bytes} bytes")
            elif isinstance(event, h11.EndOfMessage):
                return _request_of(head, bytes(body), _peer_host(stream))
            else:  # ConnectionClosed (or PAUSED, which a server never sees mid-request)
                return None

    def _check_declared_length(self, head: h11.Request) -> None:
        if len(head.headers) > MAX_HEADERS:
            raise _Refused(431, f"more than {MAX_HEADERS} headers")
        # h11 bounds only a head still arriving; one that arrived whole is checked here.
        head_bytes = len(head.target) + sum(len(n) + len(v) for n, v in head.headers)
        if head_bytes > self.limits.max_header_bytes:
            raise _Refused(431, f"the request head exceeds {self.limits.max_header_bytes} bytes")
        for name, value in head.headers:
            if name == b"content-length" and int(value) > self.limits.max_body_bytes:
                raise _Refused(413, f"the body exceeds {self.limits.max_body_bytes} bytes")

    async def _respond(self, request: Request) -> Response:
        response = json_error(503, "the node did not answer in time")
        with trio.move_on_after(self.limits.handler_timeout_s):
            try:
                response = await self.handler(request)
            except Exception:
                logger.exception("the API handler failed", extra={"fields": {"path": request.path}})
                response = json_error(500, "internal error")
        return response


async def _next_event(connection: h11.Connection, stream: trio.abc.HalfCloseableStream) -> Any:
    """h11's next event, receiving as much as it needs."""
    while (event := connection.next_event()) is h11.NEED_DATA:
        connection.receive_data(await stream.receive_some(RECEIVE_CHUNK_BYTES))
    return event


def json_error(status: int, message: str) -> Response:
    """A JSON error body: ``{"error": message}``."""
    return Response(status, json.dumps({"error": message}).encode())


def _peer_host(stream: trio.abc.HalfCloseableStream) -> str:
    """The IP address of the peer of a socket stream ("" for any other stream)."""
    if not isinstance(stream, trio.SocketStream):
        return ""
    try:
        peer = stream.socket.getpeername()
    except OSError:
        return ""
    return str(peer[0]) if isinstance(peer, tuple) else ""


def _request_of(head: h11.Request, body: bytes, client: str = "") -> Request:
    target = head.target.decode("ascii", errors="replace")
    parts = urlsplit(target)
    try:
        query = dict(parse_qsl(parts.query, max_num_fields=MAX_QUERY_FIELDS))
    except ValueError as exc:
        raise _Refused(400, f"bad query string: {exc}") from exc
    headers = {
        name.decode("ascii", "replace"): value.decode("latin-1") for name, value in head.headers
    }
    return Request(head.method.decode("ascii"), parts.path, query, headers, body, client)


async def _send(
    connection: h11.Connection, stream: trio.abc.HalfCloseableStream, response: Response
) -> None:
    headers = [
        ("server", SERVER_NAME),
        ("content-type", response.content_type),
        ("content-length", str(len(response.body))),
        *response.headers,
    ]
    reason = REASONS.get(response.status, b"")
    data = connection.send(
        h11.Response(status_code=response.status, headers=headers, reason=reason)
    )
    data = (data or b"") + (connection.send(h11.Data(data=response.body)) or b"")
    data += connection.send(h11.EndOfMessage()) or b""
    await stream.send_all(data)


async def _send_error(
    connection: h11.Connection, stream: trio.abc.HalfCloseableStream, status: int, message: str
) -> None:
    if connection.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return  # a response is already under way: just close
    response = json_error(status, message)
    response = Response(status, response.body, headers=(("connection", "close"),))
    try:
        await _send(connection, stream, response)
    except h11.LocalProtocolError:
        logger.debug("could not send the error response", exc_info=True)


async def _drain_before_close(stream: trio.abc.HalfCloseableStream) -> None:
    """Say we are done (EOF), then discard what the client still sends, within
    ``CLOSE_TIMEOUT_S`` and ``LINGER_MAX_BYTES`` (a lingering close)."""
    drained_bytes = 0
    with trio.move_on_after(CLOSE_TIMEOUT_S):
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_eof()
            while drained_bytes < LINGER_MAX_BYTES:
                chunk = await stream.receive_some(RECEIVE_CHUNK_BYTES)
                if not chunk:
                    return
                drained_bytes += len(chunk)


async def _reject_crowded(stream: trio.abc.HalfCloseableStream) -> None:
    body = b'{"error": "too many connections"}'
    head = (
        b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n"
        b"content-type: application/json\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
    )
    with trio.move_on_after(CLOSE_TIMEOUT_S):
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(head + body)
        await stream.aclose()

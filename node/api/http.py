"""A small HTTP/1.1 server on trio and h11, with a bound on everything a client controls.

h11 does the protocol (parsing, framing, keep-alive rules); this module does the I/O and
the limits:

- connections: at most ``max_connections`` served at once, and at most
  ``max_connections_per_client`` from one client address; one more is answered ``503``
  and closed at once (a crowd cannot make the node open unbounded tasks);
- request size: headers within ``max_header_bytes`` (h11's incomplete-event limit, else
  ``431``), a body within ``max_body_bytes`` (``413``, checked against Content-Length before
  reading, and again while reading a chunked body);
- time: a request must arrive in full within ``request_timeout_s`` of the connection
  becoming idle (else ``408``), and the handler must answer within ``handler_timeout_s``
  (else ``503``); a keep-alive connection serves at most ``max_requests_per_connection``.

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
    handler_timeout_s: float = 10.0
    max_requests_per_connection: int = 1_000

    def __post_init__(self) -> None:
        for name in (
            "max_connections",
            "max_connections_per_client",
            "max_header_bytes",
            "max_body_bytes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"HttpLimits.{name} must be >= 1")
        if min(self.request_timeout_s, self.handler_timeout_s) <= 0:
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

    async def serve_connection(self, stream: trio.abc.HalfCloseableStream) -> None:
        """Serve one connection until it closes, times out or breaks."""
        client = _peer_host(stream)
        held = self.connections_by_client.get(client, 0) if client else 0
        if (
            self.active_connections >= self.limits.max_connections
            or held >= self.limits.max_connections_per_client
        ):
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
                return
            if request is None:
                return
            response = await self._respond(request)
            if served == last:  # tell the client, so it does not send another on this one
                response = replace(response, headers=(*response.headers, ("connection", "close")))
            await _send(connection, stream, response)
            if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return
            connection.start_next_cycle()

    async def _read_request(
        self, connection: h11.Connection, stream: trio.abc.HalfCloseableStream
    ) -> Request | None:
        request: Request | None = None
        with trio.move_on_after(self.limits.request_timeout_s) as scope:
            try:
                request = await self._receive_request(connection, stream)
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint
                raise _Refused(status if status in REASONS else 400, str(exc)) from exc
        if not scope.cancelled_caught:
            return request
        if connection.their_state is h11.IDLE and not connection.trailing_data[0]:
            return None  # an idle keep-alive connection: close it quietly
        raise _Refused(408, "the request took too long to arrive")

    async def _receive_request(
        self, connection: h11.Connection, stream: trio.abc.HalfCloseableStream
    ) -> Request | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await stream.receive_some(RECEIVE_CHUNK_BYTES))
            elif isinstance(event, h11.Request):
                head = event
                self._check_declared_length(event)
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.limits.max_body_bytes:
                    raise _Refused(413, f"the body exceeds {self.limits.max_body_bytes} bytes")
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
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

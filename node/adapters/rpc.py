"""Request/response over long-lived streams: a client with a stream pool, and the server loop.

One request is one frame, its response one frame (``node.adapters.wire`` response format).
A stream carries any number of exchanges, one at a time, so a busy pair of peers pays the
cost of opening a stream (protocol negotiation, ~3 ms on py-libp2p) once, not per request:
the client keeps up to ``max_idle_per_key`` idle streams per (peer, protocol) and opens at
most ``max_streams_per_key`` at once. A stream whose exchange failed or timed out is reset,
never reused, so a late answer can never be taken for the answer to a later request.

Both sides are written against ``ByteStream`` and take no clock but trio's, so the whole
exchange can be tested on memory streams with a virtual clock.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

import trio

from node.adapters.errors import FrameTooLargeError, ProtocolViolationError, StreamBrokenError
from node.adapters.framing import encode_frame
from node.adapters.streams import ByteStream, FrameReader, close_quietly, reset_quietly, write_frame
from node.adapters.wire import (
    RESPONSE_OVERHEAD_BYTES,
    ResponseStatus,
    decode_response,
    encode_failure,
    encode_ok,
)
from node.errors import (
    PeerBusyError,
    PeerUnreachableError,
    RemoteError,
    RequestRejectedError,
    RequestTimeoutError,
)
from node.ports import PeerId

logger = logging.getLogger(__name__)

Handler = Callable[[PeerId, bytes], Awaitable[bytes]]
OpenStream = Callable[[PeerId, str], Awaitable[ByteStream]]

DEFAULT_MAX_STREAMS_PER_KEY: Final = 4
DEFAULT_MAX_IDLE_PER_KEY: Final = 2
DEFAULT_CLIENT_IDLE_TIMEOUT_S: Final = 30.0
# The server keeps an idle stream longer than clients do, so a client nearly never picks a
# pooled stream the server is closing at that very moment.
DEFAULT_SERVER_IDLE_TIMEOUT_S: Final = 60.0
MAX_POOL_KEYS: Final = 4096


@dataclass(slots=True)
class _Connection:
    stream: ByteStream
    reader: FrameReader
    idle_since: float = 0.0


@dataclass(slots=True)
class _Pool:
    slots: trio.Semaphore
    idle: deque[_Connection] = field(default_factory=deque)


class RequestClient:
    """Sends requests and waits for responses, reusing streams per (peer, protocol)."""

    def __init__(
        self,
        open_stream: OpenStream,
        *,
        max_frame_bytes: int,
        max_streams_per_key: int = DEFAULT_MAX_STREAMS_PER_KEY,
        max_idle_per_key: int = DEFAULT_MAX_IDLE_PER_KEY,
        idle_timeout_s: float = DEFAULT_CLIENT_IDLE_TIMEOUT_S,
    ) -> None:
        self._open_stream = open_stream
        self.max_frame_bytes = max_frame_bytes
        self.max_streams_per_key = max_streams_per_key
        self.max_idle_per_key = max_idle_per_key
        self.idle_timeout_s = idle_timeout_s
        self._pools: dict[tuple[PeerId, str], _Pool] = {}

    @property
    def idle_streams(self) -> int:
        """Streams kept open for reuse, over all peers."""
        return sum(len(pool.idle) for pool in self._pools.values())

    async def request(self, peer: PeerId, protocol: str, data: bytes, timeout_s: float) -> bytes:
        """The response body to ``data``.

        Raises ``FrameTooLargeError`` (before sending, or for an oversize response),
        ``RequestTimeoutError``, ``PeerUnreachableError``, ``ProtocolNotSupportedError``
        (from ``open_stream``), ``RemoteError``/``PeerBusyError`` (the peer's handler
        failed or had no free slot), ``ProtocolViolationError`` (a garbled response)."""
        if len(data) > self.max_frame_bytes:
            raise FrameTooLargeError(
                f"a request of {len(data)} bytes exceeds the limit of {self.max_frame_bytes} bytes"
            )
        pool = self._pool(peer, protocol)
        with trio.move_on_after(timeout_s):
            async with pool.slots:
                return await self._exchange(pool, peer, protocol, data)
        raise RequestTimeoutError(
            f"no response from {peer} on {protocol} within {timeout_s * 1000:.0f} ms"
        )

    async def forget_peer(self, peer: PeerId) -> None:
        """Drop every idle stream to ``peer`` (it disconnected, or was banned)."""
        for key in [k for k in self._pools if k[0] == peer]:
            pool = self._pools.pop(key)
            while pool.idle:
                await reset_quietly(pool.idle.popleft().stream)

    async def aclose(self) -> None:
        """Drop every idle stream."""
        for peer in {key[0] for key in self._pools}:
            await self.forget_peer(peer)

    def _pool(self, peer: PeerId, protocol: str) -> _Pool:
        key = (peer, protocol)
        pool = self._pools.get(key)
        if pool is None:
            if len(self._pools) >= MAX_POOL_KEYS:
                self._evict_an_unused_pool()
            pool = self._pools[key] = _Pool(trio.Semaphore(self.max_streams_per_key))
        return pool

    def _evict_an_unused_pool(self) -> None:
        for key, pool in self._pools.items():
            if pool.slots.value == self.max_streams_per_key and not pool.idle:
                del self._pools[key]
                return

    async def _exchange(self, pool: _Pool, peer: PeerId, protocol: str, data: bytes) -> bytes:
        connection = await self._take_idle(pool)
        if connection is not None:
            try:
                return await self._round_trip(pool, connection, data)
            except _StaleStream:
                pass  # the server had closed the pooled stream: one retry on a fresh one
        stream = await self._open_stream(peer, protocol)
        connection = _Connection(stream, FrameReader(stream, self.max_frame_bytes))
        try:
            return await self._round_trip(pool, connection, data)
        except _StaleStream as exc:
            raise PeerUnreachableError(f"{peer} closed the stream without answering") from exc

    async def _take_idle(self, pool: _Pool) -> _Connection | None:
        now = trio.current_time()
        while pool.idle:
            connection = pool.idle.pop()  # the most recently used is the least likely stale
            if now - connection.idle_since < self.idle_timeout_s:
                return connection
            await reset_quietly(connection.stream)
        return None

    async def _round_trip(self, pool: _Pool, connection: _Connection, data: bytes) -> bytes:
        keep = False
        try:
            await write_frame(connection.stream, data, self.max_frame_bytes)
            payload = await connection.reader.read_frame()
            if payload is None:
                raise _StaleStream("the stream ended before a response")
            response = decode_response(payload)
            keep = True
        except StreamBrokenError as exc:
            if connection.reader.started_frame:
                raise PeerUnreachableError(f"the stream broke mid-response: {exc}") from exc
            raise _StaleStream(str(exc)) from exc
        finally:
            if keep:
                await self._put_idle(pool, connection)
            else:
                await reset_quietly(connection.stream)
        if response.status is ResponseStatus.OK:
            return response.body
        if response.status is ResponseStatus.BUSY:
            raise PeerBusyError(f"peer busy: {response.reason}")
        raise RemoteError(f"peer refused the request: {response.reason}")

    async def _put_idle(self, pool: _Pool, connection: _Connection) -> None:
        if len(pool.idle) >= self.max_idle_per_key:
            await close_quietly(connection.stream)
            return
        connection.idle_since = trio.current_time()
        pool.idle.append(connection)


class _StaleStream(Exception):
    """The stream ended or broke before any byte of the response (safe to retry)."""


# -- server ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What one served stream may cost us."""

    max_frame_bytes: int
    handler_timeout_s: float
    idle_timeout_s: float = DEFAULT_SERVER_IDLE_TIMEOUT_S


async def serve_requests(
    stream: ByteStream,
    peer: PeerId,
    handler: Handler,
    limits: ServerLimits,
    handler_slots: trio.CapacityLimiter,
    *,
    on_served: Callable[[], None] | None = None,
) -> int:
    """Answer requests on ``stream`` until it ends or idles out; the number answered
    (``on_served`` is called after each answer, for live metrics).

    A request when all ``handler_slots`` are taken gets ``BUSY`` at once (the requester may
    retry elsewhere) instead of queueing unboundedly. ``ProtocolViolationError`` (a garbled
    or oversize frame) propagates after the stream is reset, so the caller can penalise
    the peer."""
    reader = FrameReader(stream, limits.max_frame_bytes)
    served = 0
    try:
        while True:
            request: bytes | None = None
            with trio.move_on_after(limits.idle_timeout_s):
                request = await reader.read_frame()
            if request is None:  # the requester is done, or idle for too long
                break
            response = await _answer(peer, handler, request, limits, handler_slots)
            await stream.write(response)
            served += 1
            if on_served is not None:
                on_served()
    except ProtocolViolationError:
        await reset_quietly(stream)
        raise
    except StreamBrokenError:
        await reset_quietly(stream)
        return served
    await close_quietly(stream)
    return served


async def _answer(
    peer: PeerId,
    handler: Handler,
    request: bytes,
    limits: ServerLimits,
    handler_slots: trio.CapacityLimiter,
) -> bytes:
    """The framed response to one request (never raises for the handler's failures)."""
    try:
        handler_slots.acquire_nowait()
    except trio.WouldBlock:
        return _frame(encode_failure(ResponseStatus.BUSY, "all handler slots busy"), limits)
    try:
        body = b""
        with trio.move_on_after(limits.handler_timeout_s) as scope:
            body = await handler(peer, request)
        if scope.cancelled_caught:
            return _frame(encode_failure(ResponseStatus.ERROR, "handler timed out"), limits)
        if len(body) + RESPONSE_OVERHEAD_BYTES > limits.max_frame_bytes:
            logger.warning("handler response of %d bytes over the frame limit", len(body))
            return _frame(encode_failure(ResponseStatus.ERROR, "response too large"), limits)
        return _frame(encode_ok(body), limits)
    except RequestRejectedError as exc:
        return _frame(encode_failure(ResponseStatus.ERROR, str(exc)), limits)
    except Exception:
        logger.exception("request handler failed on a request from %s", peer)
        return _frame(encode_failure(ResponseStatus.ERROR, "internal error"), limits)
    finally:
        handler_slots.release()


def _frame(payload: bytes, limits: ServerLimits) -> bytes:
    return encode_frame(payload, limits.max_frame_bytes)

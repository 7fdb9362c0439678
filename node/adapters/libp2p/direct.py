"""The node's own streams on a ``Libp2pNetwork``: direct messages and request/response.

- direct messages (``send``): one long-lived stream per ready peer on ``/bighealth/direct/1``,
  opened on first use and fed from a bounded queue by one writer task, so that they arrive
  in order; queued frames are written in batches (``node.adapters.wire`` direct format);
- request/response (``register_handler``/``request``): pooled long-lived streams
  (``node.adapters.rpc``), one protocol id per kind, the hello's among them;
- inbound streams: at most ``max_inbound_streams_per_peer`` per peer (one more is reset and
  the peer charged ``STREAM_FLOOD``), only from a peer that is not banned, on a protocol we
  speak, and (the hello aside) once the peer is ready; a peer that breaks the framing is
  penalised. (Every inbound stream, of any protocol, first passes ``Peers``' stream gate.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Final

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol

from node.adapters.config import (
    DIRECT_PROTOCOL,
    PROTOCOL_PATTERN,
    RESERVED_PROTOCOLS,
    STATUS_PROTOCOL,
    Libp2pNetworkConfig,
)
from node.adapters.errors import (
    FrameTooLargeError,
    MalformedMessageError,
    NetworkConfigError,
    ProtocolViolationError,
    StreamBrokenError,
)
from node.adapters.framing import encode_frame
from node.adapters.libp2p.host import Libp2pStream, Stack
from node.adapters.libp2p.inbound import Inbound
from node.adapters.libp2p.peers import Peers
from node.adapters.metrics import Drop, NetworkCounters
from node.adapters.peer_scoring import Offense
from node.adapters.queues import BoundedQueue
from node.adapters.rpc import Handler, RequestClient, ServerLimits, serve_requests
from node.adapters.streams import ByteStream, FrameReader, reset_quietly
from node.adapters.wire import DIRECT_OVERHEAD_BYTES, decode_direct, encode_direct
from node.errors import PeerUnreachableError, RequestError, UnknownPeerError
from node.ports import InboundMessage, PeerId

logger = logging.getLogger(__name__)

WRITER_BATCH_MESSAGES: Final = 256  # direct frames coalesced into one stream write
WRITER_BATCH_BYTES: Final = 256 * 1024
LINK_RETRY_PAUSE_S: Final = 0.1  # after a failed direct stream, before opening another


@dataclass(slots=True)
class _Link:
    """The outbound side of direct messages to one ready peer."""

    queue: BoundedQueue[bytes]
    wakeup: trio.lowlevel.ParkingLot = field(default_factory=trio.lowlevel.ParkingLot)
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)


class DirectStreams:
    """Direct messages, request handlers and requests of one network."""

    def __init__(
        self,
        config: Libp2pNetworkConfig,
        counters: NetworkCounters,
        stack: Stack,
        client: RequestClient,
        *,
        peers: Peers,
        inbound: Inbound,
    ) -> None:
        self.config = config
        self._counters = counters
        self._stack = stack
        self._client = client
        self._peers = peers
        self._inbound = inbound
        self._frame_bytes = config.max_message_bytes + DIRECT_OVERHEAD_BYTES
        self._server_limits = ServerLimits(config.max_frame_bytes, config.handler_timeout_ms / 1000)
        self._handler_slots = trio.CapacityLimiter(config.max_concurrent_handlers)
        self._handlers: dict[str, Handler] = {STATUS_PROTOCOL: peers.handle_status}
        self._links: dict[PeerId, _Link] = {}
        self._inbound_streams: dict[PeerId, int] = {}

    # -- what the network asks --------------------------------------------------------------

    def send(self, peer: PeerId, topic: str, payload: bytes) -> None:
        """Queue ``payload`` (checked already) for ``peer``'s direct stream."""
        link = self._links.get(peer)
        if link is None:
            if not self._peers.was_known(peer):
                raise UnknownPeerError(f"unknown peer {peer!r}")
            self._counters.drop(Drop.PEER_GONE)
            return
        frame = encode_frame(encode_direct(topic, payload), self._frame_bytes)
        if not link.queue.push(frame, len(frame)):
            self._counters.drop(Drop.OUTBOUND_FULL)
            return
        self._counters.message_out(topic, len(payload))
        link.wakeup.unpark_all()

    def queued_bytes(self, peer: PeerId) -> int:
        """Bytes of direct messages queued for ``peer`` and not yet written."""
        link = self._links.get(peer)
        return 0 if link is None else link.queue.queued_bytes

    def register_handler(self, protocol: str, handler: Handler) -> None:
        """Answer requests on ``protocol`` with ``handler`` (see ``Libp2pNetwork``)."""
        if PROTOCOL_PATTERN.fullmatch(protocol) is None:
            raise NetworkConfigError(f"protocol ids look like /bighealth/<name>/<n>: {protocol!r}")
        if protocol in RESERVED_PROTOCOLS:
            raise NetworkConfigError(f"{protocol} is reserved for the network itself")
        self._handlers[protocol] = handler
        if self._stack.running is not None:
            self._stack.running.host.set_stream_handler(TProtocol(protocol), self.accept_stream)

    async def request(self, peer: PeerId, protocol: str, data: bytes, timeout_ms: int) -> bytes:
        """``peer``'s response to ``data`` on ``protocol`` (see ``Libp2pNetwork.request``)."""
        if PROTOCOL_PATTERN.fullmatch(protocol) is None or protocol in RESERVED_PROTOCOLS:
            raise NetworkConfigError(f"not a request protocol: {protocol!r}")
        if timeout_ms < 1:
            raise ValueError(f"timeout_ms must be >= 1, got {timeout_ms}")
        if not self._peers.is_ready(peer):
            raise PeerUnreachableError(f"{peer} is not a connected, verified peer")
        self._counters.requests_sent += 1
        try:
            return await self._client.request(peer, protocol, data, timeout_ms / 1000)
        except ProtocolViolationError as exc:
            self._counters.requests_failed += 1
            self._peers.penalize(peer, Offense.MALFORMED_MESSAGE, str(exc))
            raise
        except (RequestError, FrameTooLargeError):
            self._counters.requests_failed += 1
            raise

    # -- peers coming and going -------------------------------------------------------------

    def attach(self, host: IHost) -> None:
        """Make ``host`` hand us the streams of our protocols (before it runs)."""
        for protocol in (DIRECT_PROTOCOL, *self._handlers):
            host.set_stream_handler(TProtocol(protocol), self.accept_stream)

    def peer_ready(self, peer: PeerId) -> None:
        """Open ``peer``'s direct link: a queue and its writer task."""
        link = _Link(BoundedQueue(self.config.peer_queue_messages, self.config.peer_queue_bytes))
        self._links[peer] = link
        self._stack.require().nursery.start_soon(self._run_link, peer, link)

    def peer_gone(self, peer: PeerId) -> None:
        """Close ``peer``'s link (what it held is dropped and counted) and its idle streams."""
        link = self._links.pop(peer, None)
        if link is not None:
            self._counters.drop(Drop.PEER_GONE, link.queue.clear())
            link.scope.cancel()
        self._stack.require().nursery.start_soon(self._client.forget_peer, peer)

    def clear(self) -> None:
        """Forget every link and inbound stream (the network stopped)."""
        self._links.clear()
        self._inbound_streams.clear()

    # -- inbound streams --------------------------------------------------------------------

    async def accept_stream(self, raw: INetStream) -> None:
        """libp2p's handler for our protocols: hand the stream to our nursery and return."""
        running = self._stack.running
        peer = str(raw.muxed_conn.peer_id.to_base58())
        protocol = str(raw.get_protocol())
        streams = self._inbound_streams.get(peer, 0)
        if (
            running is None
            or self._peers.is_banned(peer)
            or streams >= self.config.max_inbound_streams_per_peer
            or (protocol != DIRECT_PROTOCOL and protocol not in self._handlers)
        ):
            if running is not None and streams >= self.config.max_inbound_streams_per_peer:
                cap = self.config.max_inbound_streams_per_peer
                self._peers.penalize(
                    peer, Offense.STREAM_FLOOD, f"more than {cap} on our protocols"
                )
            await reset_quietly(Libp2pStream(raw))
            return
        self._inbound_streams[peer] = streams + 1
        running.nursery.start_soon(self._serve_stream, Libp2pStream(raw), peer, protocol)

    async def _serve_stream(self, stream: Libp2pStream, peer: PeerId, protocol: str) -> None:
        try:
            if protocol != STATUS_PROTOCOL and not await self._peers.wait_ready(peer):
                await reset_quietly(stream)
            elif protocol == DIRECT_PROTOCOL:
                await self._read_direct(stream, peer)
            else:
                await serve_requests(
                    stream,
                    peer,
                    self._handlers[protocol],
                    self._server_limits,
                    self._handler_slots,
                    on_served=self._count_served,
                )
        except (ProtocolViolationError, FrameTooLargeError) as exc:
            logger.info("%s broke %s: %s", peer, protocol, exc)
            self._peers.penalize(peer, Offense.MALFORMED_FRAME, str(exc))
        finally:
            remaining = self._inbound_streams.get(peer, 1) - 1
            if remaining > 0:
                self._inbound_streams[peer] = remaining
            else:
                self._inbound_streams.pop(peer, None)

    def _count_served(self) -> None:
        self._counters.requests_served += 1

    # -- direct messages --------------------------------------------------------------------

    async def _read_direct(self, stream: Libp2pStream, peer: PeerId) -> None:
        reader = FrameReader(stream, self._frame_bytes)
        try:
            while (frame := await reader.read_frame()) is not None:
                self._on_direct_frame(peer, frame)
        except (ProtocolViolationError, FrameTooLargeError):
            await reset_quietly(stream)
            raise
        except StreamBrokenError:
            await reset_quietly(stream)

    def _on_direct_frame(self, peer: PeerId, frame: bytes) -> None:
        if self._peers.is_banned(peer):
            self._counters.drop(Drop.BANNED)
            return
        try:
            topic, data = decode_direct(frame)
        except MalformedMessageError as exc:
            self._counters.drop(Drop.INVALID)
            self._peers.penalize(peer, Offense.MALFORMED_MESSAGE, str(exc))
            return
        if len(data) > self.config.max_message_bytes:
            self._counters.drop(Drop.INVALID)
            self._peers.penalize(peer, Offense.INVALID_MESSAGE, "oversize direct message")
            return
        if self._inbound.judge(peer, topic, data):
            self._inbound.deliver(InboundMessage(peer, topic, data))

    async def _run_link(self, peer: PeerId, link: _Link) -> None:
        """Write one peer's queued direct frames to its stream, opened on first use."""
        stream: ByteStream | None = None
        with link.scope:
            try:
                while True:
                    frames = link.queue.pop_many(WRITER_BATCH_MESSAGES, WRITER_BATCH_BYTES)
                    if not frames:
                        await link.wakeup.park()
                        continue
                    try:
                        if stream is None:
                            stream = await self._stack.open_stream(peer, DIRECT_PROTOCOL)
                            self._counters.direct_streams_opened += 1
                        await stream.write(b"".join(frames))
                    except (RequestError, StreamBrokenError) as exc:
                        logger.info("direct stream to %s failed: %s", peer, exc)
                        self._counters.drop(Drop.STREAM_FAILED, len(frames))
                        if stream is not None:
                            await reset_quietly(stream)
                        stream = None
                        await trio.sleep(LINK_RETRY_PAUSE_S)
            finally:
                if stream is not None:  # the peer left or we stop: nothing more to say
                    await reset_quietly(stream)

"""The py-libp2p host of a node: identity, transport, running and stopping, streams.

- identity: the libp2p Ed25519 key pair of the node key seed (kept in ``<home>/node_key`` by
  ``node.adapters.identity``) and the peer id it gives;
- transport (``make_host``): TCP, Noise only (no plaintext, pitfall 2), Yamux only, one
  connection per peer (the 250 ms happy-eyeballs wait otherwise, pitfall 1), and room for a
  few connections above ``max_peers`` so that admission is ours, not libp2p's;
- ``run_host``: the Pubsub and GossipSub services entered before ``host.run`` (pitfall 11),
  libp2p's auto-connector stopped (the peer set is ours to manage), and every connection
  closed on the way out, so that peers learn at once that the node stopped;
- ``Stack``: the host, its Pubsub and router and the network's nursery while ``serve`` runs,
  shared by the network's parts; it opens streams to connected peers (never dials);
- ``Libp2pStream``: a libp2p stream as a ``ByteStream``; ``ConnectionEvents``: the host's
  connection events, forwarded.

The pitfalls are those of ``docs/NETWORKING.md``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost, IMuxedConn, INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.host.exceptions import StreamFailure
from libp2p.network.config import ConnectionConfig
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

from node.adapters.config import Libp2pNetworkConfig
from node.adapters.errors import KeyFileError, NetworkConfigError, StreamBrokenError
from node.adapters.libp2p.gossipsub import ConsensusGossipSub
from node.adapters.streams import ByteStream
from node.errors import PeerUnreachableError, ProtocolNotSupportedError
from node.ports import PeerId

logger = logging.getLogger(__name__)

# Connections above max_peers the swarm accepts, so that a new connection can be told "full"
# by us (and a persistent peer let in) rather than refused blindly by libp2p.
CONNECTION_SLACK: Final = 16
# How long a stopping network spends telling its peers (yamux GO_AWAY, then closing each
# socket): cancellation alone leaves the sockets open, and peers keep a stopped node.
CLOSE_ON_STOP_S: Final = 1.0
CLOSE_POLL_S: Final = 0.001


# -- identity and addresses -----------------------------------------------------------------


def make_key_pair(seed: bytes) -> KeyPair:
    """The libp2p Ed25519 key pair of a node key seed (``KeyFileError`` if unusable)."""
    try:
        return create_new_key_pair(seed)
    except ValueError as exc:
        raise KeyFileError(f"the node key is not a usable Ed25519 key: {exc}") from exc


def key_peer_id(key_pair: KeyPair) -> PeerId:
    """The peer id (base58, as libp2p prints it) of a libp2p key pair."""
    return str(ID.from_pubkey(key_pair.public_key).to_base58())


def peer_id_of(seed: bytes) -> PeerId:
    """The peer id (base58) a node with this key seed has on the network."""
    return key_peer_id(make_key_pair(seed))


def parse_multiaddr(text: str, what: str) -> multiaddr.Multiaddr:
    """``text`` as a multiaddr (``NetworkConfigError`` naming ``what`` otherwise)."""
    try:
        return multiaddr.Multiaddr(text)
    except Exception as exc:  # multiaddr raises several error types for bad input
        raise NetworkConfigError(f"{what}: not a multiaddr: {text!r} ({exc})") from exc


def parse_peer_addr(text: str) -> PeerInfo:
    """A peer's address, ending in ``/p2p/<peer id>`` (``NetworkConfigError`` otherwise)."""
    try:
        return info_from_p2p_addr(parse_multiaddr(text, "bootstrap"))
    except NetworkConfigError:
        raise
    except Exception as exc:
        raise NetworkConfigError(f"bootstrap: {text!r} must end in /p2p/<peer id>") from exc


# -- the host -------------------------------------------------------------------------------


def make_host(key_pair: KeyPair, listen: multiaddr.Multiaddr, config: Libp2pNetworkConfig) -> IHost:
    """A host with ``key_pair``'s identity listening on ``listen``: Noise (with its own
    X25519 key) and Yamux alone, one connection per peer, connections never pruned."""
    noise = NoiseTransport(key_pair, noise_privkey=create_new_x25519_key_pair().private_key)
    max_connections = config.max_peers + CONNECTION_SLACK
    connections = ConnectionConfig(
        max_connections=max_connections,
        min_connections=0,
        low_watermark=0,
        high_watermark=max_connections,  # never prune: admission is ours
        max_connections_per_peer=1,
        dial_timeout=config.dial_timeout_ms / 1000,
    )
    return new_host(
        key_pair=key_pair,
        sec_opt={NOISE_PROTOCOL_ID: noise},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        listen_addrs=[listen],
        connection_config=connections,
    )


@asynccontextmanager
async def run_host(
    host: IHost, pubsub: Pubsub, router: GossipSub, listen: multiaddr.Multiaddr
) -> AsyncIterator[None]:
    """Run ``host`` with its Pubsub and router for the body of an ``async with``.

    The services are entered before ``host.run`` (pitfall 11: the other nesting raised
    "Nursery is closed to new arrivals"). On the way out every connection is closed
    (shielded, within ``CLOSE_ON_STOP_S``) before the services stop."""
    async with (
        background_trio_service(pubsub),
        background_trio_service(router),
        host.run([listen]),
    ):
        await _stop_auto_connector(host)
        try:
            yield
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_ON_STOP_S):
                await _close_connections(host)


async def _stop_auto_connector(host: IHost) -> None:
    """libp2p dials peers it heard of to keep ~100 connections; the peer set is ours."""
    swarm = host.get_network()
    if isinstance(swarm, Swarm):
        await swarm.auto_connector.stop()


async def _close_connections(host: IHost) -> None:
    """Close every connection of ``host`` at once (yamux GO_AWAY, then the socket); return
    when every socket is closed. libp2p's bookkeeping after that (several 0.1 s pauses per
    connection) is of no use to a host that stops, and is cut short."""
    muxers = [connection.muxed_conn for connection in host.get_network().get_connections()]
    async with trio.open_nursery() as closing:
        for muxer in muxers:
            closing.start_soon(_close_quietly, muxer)
        while not all(_is_closed(muxer) for muxer in muxers):
            await trio.sleep(CLOSE_POLL_S)  # yamux offers no event for "socket closed"
        closing.cancel_scope.cancel()


async def _close_quietly(muxer: IMuxedConn) -> None:
    try:
        await muxer.close()
    except Exception:  # already broken: closed either way
        logger.debug("closing a connection on stop failed", exc_info=True)


def _is_closed(muxer: IMuxedConn) -> bool:
    return bool(getattr(muxer, "is_closed", True))  # yamux's; the interface has none


# -- while it runs --------------------------------------------------------------------------


def now_ms() -> int:
    """The network's clock: trio's, in milliseconds (a virtual one in some tests)."""
    return int(trio.current_time() * 1000)


@dataclass(slots=True)
class Running:
    """What exists only while ``serve`` runs."""

    host: IHost
    pubsub: Pubsub
    router: ConsensusGossipSub
    nursery: trio.Nursery


class Stack:
    """The running host (``running``, ``None`` outside ``serve``), shared by every part of
    the network: each checks it before it starts anything."""

    __slots__ = ("running",)

    def __init__(self) -> None:
        self.running: Running | None = None

    def require(self) -> Running:
        """What runs (``RuntimeError`` outside ``serve``)."""
        if self.running is None:
            raise RuntimeError("the network is not running")
        return self.running

    @property
    def listen_addrs(self) -> tuple[str, ...]:
        """The addresses peers can dial (with ``/p2p/<id>``); empty outside ``serve``."""
        if self.running is None:
            return ()
        return tuple(str(addr) for addr in self.running.host.get_addrs())

    async def open_stream(self, peer: PeerId, protocol: str) -> ByteStream:
        """A new stream to a connected peer (never dials: connecting is the dialers' job)."""
        running = self.running
        if running is None:
            raise PeerUnreachableError("the network is not running")
        peer_id = ID.from_base58(peer)
        if not running.host.get_network().get_connections(peer_id):
            raise PeerUnreachableError(f"{peer} is not connected")
        try:
            raw = await running.host.new_stream(peer_id, [TProtocol(protocol)])
        except StreamFailure as exc:
            if "not supported" in str(exc.__cause__):
                raise ProtocolNotSupportedError(f"{peer} does not speak {protocol}") from exc
            raise PeerUnreachableError(f"no stream to {peer}: {exc.__cause__}") from exc
        except Exception as exc:  # swarm and muxer errors of a connection going away
            raise PeerUnreachableError(f"no stream to {peer}: {exc!r}") from exc
        return Libp2pStream(raw)


class Libp2pStream:
    """A libp2p stream as a ``ByteStream``: ``b""`` at end, ``StreamBrokenError`` on failure."""

    __slots__ = ("raw",)

    def __init__(self, raw: INetStream) -> None:
        self.raw = raw

    async def read(self, max_bytes: int) -> bytes:
        try:
            data: bytes = await self.raw.read(max_bytes)
        except StreamEOF:
            return b""
        except Exception as exc:  # the library raises a zoo of errors for a dead stream
            raise StreamBrokenError(f"read failed: {exc!r}") from exc
        return data

    async def write(self, data: bytes) -> None:
        try:
            await self.raw.write(data)
        except Exception as exc:
            raise StreamBrokenError(f"write failed: {exc!r}") from exc

    async def close(self) -> None:
        try:
            await self.raw.close()
        except Exception as exc:
            raise StreamBrokenError(f"close failed: {exc!r}") from exc

    async def reset(self) -> None:
        try:
            await self.raw.reset()
        except Exception:  # resetting a dead stream may fail: it is dead either way
            logger.debug("stream reset failed", exc_info=True)


def is_inbound(stream: INetStream) -> bool:
    """True for a stream the peer opened (yamux's flag; the interface has none)."""
    muxed = getattr(stream, "muxed_stream", None)
    return getattr(muxed, "is_initiator", True) is False


def open_inbound_streams(stream: INetStream) -> int:
    """How many streams the peer of ``stream`` has opened on its connection and not yet
    closed (``stream`` included)."""
    connection = getattr(stream, "swarm_conn", None)
    streams = getattr(connection, "streams", ())
    return sum(1 for each in streams if is_inbound(each))


class ConnectionEvents(INotifee):
    """Forwards the host's connection events and the streams peers open (before their
    protocol is negotiated); libp2p awaits these: they must not block."""

    def __init__(
        self,
        on_connected: Callable[[ID], None],
        on_disconnected: Callable[[ID], None],
        on_inbound_stream: Callable[[INetStream], None] | None = None,
    ) -> None:
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._on_inbound_stream = on_inbound_stream

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._on_connected(conn.muxed_conn.peer_id)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._on_disconnected(conn.muxed_conn.peer_id)

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        if self._on_inbound_stream is not None and is_inbound(stream):
            self._on_inbound_stream(stream)

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None

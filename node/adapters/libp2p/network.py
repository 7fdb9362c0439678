"""``Libp2pNetwork``: the ``node.ports.Network`` port over a real py-libp2p host, under trio.

What it sets up, and why (the pitfalls are those of ``docs/NETWORKING.md``), part by part:

- ``host``: an Ed25519 identity from ``<home>/node_key`` (``node.adapters.identity``); TCP,
  Noise only (no plaintext, pitfall 2), Yamux only, one connection per peer (the 250 ms
  happy-eyeballs wait otherwise, pitfall 1); libp2p's auto-connector stopped, since the peer
  set is ours to manage; Pubsub and GossipSub entered before ``host.run`` (pitfall 11);
  stopping closes every connection, so that peers learn of it at once;
- ``gossipsub``: D=6/4/12, 1 s heartbeat, no spam protection, no adaptive gossip (pitfall 3),
  /meshsub/1.1.0 and 1.0.0 (pitfall 4), strict signing (pitfall 13), no equivocation store
  (pitfall 5), no replay of old messages to late subscribers and no queue for peers whose
  subscription is not known yet (a broadcast reaches the peers subscribed when it is sent);
  sequence numbers start at the clock in nanoseconds, so a restarted node's messages are
  never taken for its earlier ones; the prune back-off is a few heartbeats; subscription
  buffers raised before subscribing;
- ``gossip``: subscriptions drained by our own tasks; publishing paced on libp2p's per-peer
  queues (pitfall 6); topic validators async and never raising (pitfall 8), judging form
  only (pitfall 9); each publisher's order restored;
- ``direct``: direct messages (``send``) over one long-lived stream per peer on
  ``/bighealth/direct/1``, fed from a bounded queue by one writer task per peer, so they
  arrive in order; request/response (``register_handler``/``request``) over pooled
  long-lived streams (``node.adapters.rpc``), one protocol id per kind;
- ``peers``: a hello exchange on ``/bighealth/status/1`` on every connection (another chain
  id: disconnected and banned), our own scoring and bans (pitfall 10), persistent bootstrap
  peers redialled with capped, jittered exponential backoff; a member that disconnects or
  reconnects is forgiven its gossip back-off and GRAFT-flood records unless it is banned;
- ``inbound``: the node's validator for each topic, then one bounded inbound queue.

Everything runs in the nursery of the caller of ``serve`` (``await nursery.start(net.serve)``)
and stops when that scope is cancelled. ``send``/``broadcast``/``receive`` never block.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio

from node.adapters.config import Libp2pNetworkConfig
from node.adapters.errors import NetworkConfigError
from node.adapters.identity import load_or_create_node_key
from node.adapters.libp2p.direct import DirectStreams
from node.adapters.libp2p.gossip import Gossip
from node.adapters.libp2p.gossipsub import make_pubsub
from node.adapters.libp2p.host import (
    ConnectionEvents,
    Running,
    Stack,
    key_peer_id,
    make_host,
    make_key_pair,
    parse_multiaddr,
    parse_peer_addr,
    run_host,
)
from node.adapters.libp2p.inbound import Inbound
from node.adapters.libp2p.peers import Peers
from node.adapters.metrics import NetworkCounters
from node.adapters.peer_scoring import Ban
from node.adapters.rpc import Handler, RequestClient
from node.errors import InvalidTopicError, MessageTooLargeError, UnknownPeerError
from node.ports import (
    InboundMessage,
    MessageValidator,
    NetworkSnapshot,
    PeerId,
    Rng,
    is_valid_topic,
)


class Libp2pNetwork:
    """A node's network endpoint (implements ``node.ports.Network``), plus request/response,
    peer management and metrics. Construct, register handlers and validators, subscribe,
    then run ``serve`` in a nursery; see the module docstring for what it sets up."""

    def __init__(
        self,
        config: Libp2pNetworkConfig,
        *,
        rng: Rng,
        status_provider: Callable[[], bytes] | None = None,
        key_rng: Rng | None = None,
    ) -> None:
        """Load (or create) the node key under ``config.home`` and check the addresses.

        ``rng`` jitters reconnect delays (a seeded one replays the schedule);
        ``status_provider`` returns the opaque status (at most 1 KiB) sent in hellos;
        ``key_rng`` draws a new node key (the OS's CSPRNG by default: leave it so in
        production)."""
        self.config = config
        self._key_pair = make_key_pair(load_or_create_node_key(config.home, key_rng))
        self._local: PeerId = key_peer_id(self._key_pair)
        self._listen = parse_multiaddr(config.listen_multiaddr, "listen_multiaddr")
        bootstrap = [parse_peer_addr(text) for text in config.bootstrap]
        if self._local in {str(info.peer_id.to_base58()) for info in bootstrap}:
            raise NetworkConfigError("bootstrap lists this node itself")
        self.counters = NetworkCounters()
        self._stack = Stack()
        client = RequestClient(self._stack.open_stream, max_frame_bytes=config.max_frame_bytes)
        self._peers = Peers(
            config,
            self.counters,
            self._stack,
            client,
            rng=rng,
            bootstrap=bootstrap,
            status_provider=status_provider or bytes,
            on_ready=self._peer_ready,
            on_gone=self._peer_gone,
        )
        self._inbound = Inbound(config, self.counters, self._peers.penalize)
        self._direct = DirectStreams(
            config, self.counters, self._stack, client, peers=self._peers, inbound=self._inbound
        )
        self._gossip = Gossip(
            config, self.counters, self._stack, self._peers, self._inbound, local=self._local
        )
        self._served = False

    # -- the Network port -------------------------------------------------------------------

    @property
    def local_peer(self) -> PeerId:
        """This node's peer id (base58, as libp2p prints it)."""
        return self._local

    @property
    def max_message_bytes(self) -> int:
        """The largest ``data`` ``send`` and ``broadcast`` carry."""
        return self.config.max_message_bytes

    def peers(self) -> tuple[PeerId, ...]:
        """Connected peers whose hello was accepted, sorted."""
        return self._peers.ready()

    def subscribe(self, topic: str) -> None:
        """Receive broadcasts on ``topic`` (takes effect in the background; idempotent)."""
        _check_topic(topic)
        self._gossip.subscribe(topic)

    def unsubscribe(self, topic: str) -> None:
        """Stop receiving broadcasts on ``topic`` (at once: later arrivals are dropped)."""
        _check_topic(topic)
        self._gossip.unsubscribe(topic)

    def send(self, peer: PeerId, topic: str, data: bytes) -> None:
        """Queue ``data`` for ``peer``'s direct stream; returns at once.

        ``UnknownPeerError`` for a peer that never completed a handshake with us; a message
        to a known peer that is not connected now is dropped and counted (``peer_gone``)."""
        _check_topic(topic)
        payload = self._checked_data(data)
        if peer == self._local:
            raise UnknownPeerError("a node does not send to itself")
        self._direct.send(peer, topic, payload)

    def broadcast(self, topic: str, data: bytes) -> None:
        """Queue ``data`` for every other peer subscribed to ``topic``; returns at once."""
        _check_topic(topic)
        self._gossip.broadcast(topic, self._checked_data(data))

    def receive(self, max_messages: int) -> list[InboundMessage]:
        """Up to ``max_messages`` delivered messages, oldest first; ``[]`` when none."""
        return self._inbound.receive(max_messages)

    # -- beyond the port --------------------------------------------------------------------

    @property
    def listen_addrs(self) -> tuple[str, ...]:
        """The addresses peers can dial (with ``/p2p/<id>``); empty until ``serve`` started."""
        return self._stack.listen_addrs

    @property
    def arrivals(self) -> int:
        """How many messages were ever queued for ``receive`` (for waiting on new ones)."""
        return self._inbound.arrivals

    def set_validator(self, topic: str, validator: MessageValidator | None) -> None:
        """Judge messages on ``topic`` (direct and gossip) with ``validator``; ``None`` removes
        it (then only size and form are checked). See ``MessageValidator`` for the rules."""
        _check_topic(topic)
        self._inbound.set_validator(topic, validator)

    def register_handler(self, protocol: str, handler: Handler) -> None:
        """Answer requests on ``protocol`` (``/bighealth/<name>/<version>``) with ``handler``,
        an ``async fn(peer, request bytes) -> response bytes``. A handler raising
        ``RequestRejectedError`` sends its message back; any other exception is reported to
        the requester as an internal error and logged here."""
        self._direct.register_handler(protocol, handler)

    async def request(self, peer: PeerId, protocol: str, data: bytes, timeout_ms: int) -> bytes:
        """Send ``data`` to ``peer``'s handler for ``protocol``; its response.

        Raises ``RequestTimeoutError``, ``PeerUnreachableError`` (not a ready peer, or the
        connection broke), ``ProtocolNotSupportedError``, ``FrameTooLargeError``,
        ``RemoteError``/``PeerBusyError``; a garbled response also penalises the peer."""
        return await self._direct.request(peer, protocol, data, timeout_ms)

    def subscriptions(self) -> tuple[str, ...]:
        """The topics this node receives broadcasts on, sorted."""
        return self._gossip.subscriptions()

    def gossip_topics(self) -> tuple[str, ...]:
        """The topics libp2p is subscribed to now (lags ``subscriptions``; see
        ``GossipParams.unsubscribe_linger_ms``), sorted."""
        return self._gossip.gossip_topics()

    def outbound_queued_bytes(self, peer: PeerId) -> int:
        """Bytes of direct messages queued for ``peer`` and not yet written (0 for a peer
        that is not ready): lets a bulk sender pace itself instead of overflowing the queue."""
        return self._direct.queued_bytes(peer)

    def peer_status(self, peer: PeerId) -> bytes | None:
        """The status a ready peer sent in its last hello, or ``None``."""
        return self._peers.status_of(peer)

    def gossip_peers(self, topic: str) -> tuple[PeerId, ...]:
        """Peers libp2p knows to be subscribed to ``topic``, sorted (empty before ``serve``)."""
        return self._gossip.gossip_peers(topic)

    def mesh_peers(self, topic: str) -> tuple[PeerId, ...]:
        """Peers in our gossip mesh for ``topic``, sorted (empty before ``serve``)."""
        return self._gossip.mesh_peers(topic)

    def ban(self, peer: PeerId, reason: str, duration_ms: int | None = None) -> Ban:
        """Ban ``peer`` (disconnect it, refuse it) for ``duration_ms`` or the policy's time."""
        return self._peers.ban(peer, reason, duration_ms)

    def unban(self, peer: PeerId) -> bool:
        """Lift a ban early; True if there was one."""
        return self._peers.unban(peer)

    def banned_peers(self) -> tuple[Ban, ...]:
        """Bans in force, by peer."""
        return self._peers.bans()

    def snapshot(self) -> NetworkSnapshot:
        """Every counter and gauge, frozen."""
        self.counters.gossip_reordered = self._gossip.reordered()
        return self.counters.snapshot(
            peers_connected=len(self._peers.connected()),
            peers_ready=len(self._peers.ready()),
            peers_banned=len(self._peers.bans()),
            inbound_queued=self._inbound.queued,
        )

    async def wait_arrival(self, after: int) -> None:
        """Return once ``arrivals`` exceeds ``after``."""
        await self._inbound.wait_arrival(after)

    async def wait_for_peers(self, peers: Sequence[PeerId]) -> None:
        """Return once every peer in ``peers`` is ready (bound it with a timeout)."""
        await self._peers.wait_for(peers)

    async def connect(self, address: str) -> PeerId:
        """Dial a peer at ``address`` (ending in ``/p2p/<id>``) once; its peer id. The
        handshake follows in the background (``wait_for_peers`` to wait for it).
        ``PeerBannedError`` if we banned it, ``PeerUnreachableError`` if the dial fails."""
        return await self._peers.connect(address)

    async def disconnect(self, peer: PeerId) -> None:
        """Close the connection to ``peer`` (a bootstrap peer will be redialled)."""
        await self._peers.disconnect(peer)

    # -- the service ------------------------------------------------------------------------

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Run the host until cancelled (use ``await nursery.start(network.serve)``; it
        reports the listen addresses once they are bound). Runs once per instance."""
        if self._served:
            raise RuntimeError("a Libp2pNetwork serves once; make a new one to restart")
        self._served = True
        host = make_host(self._key_pair, self._listen, self.config)
        router, pubsub = make_pubsub(host, self.config.gossip)
        events = ConnectionEvents(
            self._peers.on_connected, self._peers.on_disconnected, self._peers.on_inbound_stream
        )
        host.get_network().register_notifee(events)
        self._direct.attach(host)
        try:
            async with run_host(host, pubsub, router, self._listen):
                try:
                    async with trio.open_nursery() as nursery:
                        self._stack.running = Running(host, pubsub, router, nursery)
                        self._gossip.start(nursery)
                        self._peers.start(nursery)
                        task_status.started(self.listen_addrs)
                        await trio.sleep_forever()
                finally:
                    # Before run_host closes the connections: their ends start nothing now.
                    self._stack.running = None
        finally:
            self._stack.running = None
            self._direct.clear()
            self._peers.clear()

    # -- helpers ----------------------------------------------------------------------------

    def _peer_ready(self, peer: PeerId) -> None:
        self._direct.peer_ready(peer)

    def _peer_gone(self, peer: PeerId) -> None:
        self._direct.peer_gone(peer)

    def _checked_data(self, data: bytes) -> bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        if len(data) > self.config.max_message_bytes:
            raise MessageTooLargeError(
                f"{len(data)} bytes exceeds the limit of {self.config.max_message_bytes} bytes"
            )
        return bytes(data)


def _check_topic(topic: str) -> None:
    if not is_valid_topic(topic):
        raise InvalidTopicError(f"invalid topic {topic!r}: 1..64 chars of [a-z0-9/_.-]")


@asynccontextmanager
async def open_libp2p_network(
    config: Libp2pNetworkConfig,
    *,
    rng: Rng,
    status_provider: Callable[[], bytes] | None = None,
    key_rng: Rng | None = None,
    before_start: Callable[[Libp2pNetwork], Awaitable[None] | None] | None = None,
) -> AsyncIterator[Libp2pNetwork]:
    """A running ``Libp2pNetwork`` for the body of an ``async with``; stopped on exit.

    ``before_start`` may register handlers, validators and subscriptions first."""
    network = Libp2pNetwork(config, rng=rng, status_provider=status_provider, key_rng=key_rng)
    if before_start is not None:
        pending = before_start(network)
        if pending is not None:
            await pending
    async with trio.open_nursery() as nursery:
        await nursery.start(network.serve)
        yield network
        nursery.cancel_scope.cancel()

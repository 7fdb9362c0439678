"""The peers of a ``Libp2pNetwork``: connections, the hello, persistent peers, scores and bans.

- connections: a new connection is refused while its peer is banned or when ``max_peers``
  are connected (a persistent peer is always let in; ``node.adapters.peers.PeerTable``);
- the hello (``/bighealth/status/1``, ``node.adapters.handshake``), exchanged on every
  connection: a peer of another chain is banned at once, a garbled hello penalised, a peer
  that does not speak it kept for gossip only if ``allow_observers``; a peer whose hello was
  accepted is *ready* (``on_ready``: its direct stream opens) until its connection ends
  (``on_gone``);
- gossip back-off: a member that disconnects or reconnects is forgiven its back-off and
  GRAFT-flood records (``ConsensusGossipSub.forget_backoff``), unless it is banned;
- scores and bans, our own (pitfall 10, ``node.adapters.peer_scoring``): a banned peer is
  blacklisted in pubsub and disconnected (after a short grace, so that the reply to its
  hello goes out) and refused until the ban lapses;
- inbound streams (``on_inbound_stream``, every protocol, before it is negotiated): past
  the rate or the open-stream cap of ``StreamGate`` a stream is reset and the peer charged
  ``STREAM_FLOOD``, so a peer opening streams without end is banned and disconnected;
- persistent peers (``bootstrap``): redialled with capped, jittered exponential backoff
  (``node.adapters.backoff``), never while banned.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Final

import trio
from libp2p.abc import INetStream
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo

from node.adapters.backoff import Backoff
from node.adapters.config import STATUS_PROTOCOL, Libp2pNetworkConfig
from node.adapters.errors import (
    ChainMismatchError,
    FrameTooLargeError,
    HandshakeError,
    PeerBannedError,
    ProtocolViolationError,
)
from node.adapters.handshake import (
    MAX_STATUS_BYTES,
    NETWORK_PROTOCOL_VERSION,
    Hello,
    check_hello,
    decode_hello,
    encode_hello,
)
from node.adapters.libp2p.gossipsub import ConsensusGossipSub
from node.adapters.libp2p.host import (
    Libp2pStream,
    Stack,
    now_ms,
    open_inbound_streams,
    parse_peer_addr,
)
from node.adapters.metrics import NetworkCounters
from node.adapters.peer_scoring import Ban, Offense, Scoreboard, StreamGate
from node.adapters.peers import Admission, PeerTable
from node.adapters.rpc import RequestClient
from node.adapters.streams import reset_quietly
from node.errors import (
    PeerUnreachableError,
    ProtocolNotSupportedError,
    RequestError,
    RequestRejectedError,
)
from node.ports import PeerId, Rng

logger = logging.getLogger(__name__)

BAN_DISCONNECT_GRACE_S: Final = 0.2  # lets the reply to a banned peer's hello go out first

PeerHook = Callable[[PeerId], None]


class Peers:
    """The peer set of one network; ``client`` carries our hello, ``on_ready`` and
    ``on_gone`` say when a peer's hello was accepted and when its connection ended."""

    def __init__(
        self,
        config: Libp2pNetworkConfig,
        counters: NetworkCounters,
        stack: Stack,
        client: RequestClient,
        *,
        rng: Rng,
        bootstrap: Sequence[PeerInfo],
        status_provider: Callable[[], bytes],
        on_ready: PeerHook,
        on_gone: PeerHook,
    ) -> None:
        self.config = config
        self._counters = counters
        self._stack = stack
        self._client = client
        self._rng = rng
        self._bootstrap = tuple(bootstrap)
        self._persistent = frozenset(str(i.peer_id.to_base58()) for i in self._bootstrap)
        self._status_provider = status_provider
        self._on_ready = on_ready
        self._on_gone = on_gone
        self._table = PeerTable(config.max_peers)
        self._scores = Scoreboard(config.scoring)
        self._stream_gate = StreamGate(config.scoring)
        self.streams_refused = 0
        """Inbound streams reset by the stream gate (since start)."""
        self._peer_lot = trio.lowlevel.ParkingLot()
        self._ban_lot = trio.lowlevel.ParkingLot()

    # -- what is known ----------------------------------------------------------------------

    def connected(self) -> tuple[PeerId, ...]:
        """Connected peers, ready or not, sorted."""
        return self._table.connected()

    def ready(self) -> tuple[PeerId, ...]:
        """Connected peers whose hello was accepted, sorted."""
        return self._table.ready()

    def is_ready(self, peer: PeerId) -> bool:
        """True for a connected peer whose hello was accepted."""
        return self._table.is_ready(peer)

    def was_known(self, peer: PeerId) -> bool:
        """True for a peer that was ready once (it may have gone since)."""
        return self._table.was_known(peer)

    def status_of(self, peer: PeerId) -> bytes | None:
        """The status a ready peer sent in its last hello, or ``None``."""
        record = self._table.record(peer)
        return record.hello.status if record is not None and record.hello is not None else None

    def is_banned(self, peer: PeerId) -> bool:
        """True while ``peer`` is banned."""
        return self._scores.is_banned(peer, now_ms())

    def bans(self) -> tuple[Ban, ...]:
        """Bans in force, by peer."""
        return self._scores.bans(now_ms())

    async def wait_ready(self, peer: PeerId) -> bool:
        """Whether ``peer`` became ready within the handshake timeout."""
        with trio.move_on_after(self.config.handshake_timeout_ms / 1000):
            while not self._table.is_ready(peer):
                await self._peer_lot.park()
        return self._table.is_ready(peer)

    async def wait_for(self, peers: Sequence[PeerId]) -> None:
        """Return once every peer in ``peers`` is ready."""
        while not all(self._table.is_ready(p) for p in peers):
            await self._peer_lot.park()

    # -- the service ------------------------------------------------------------------------

    def start(self, nursery: trio.Nursery) -> None:
        """Start lifting lapsed bans and keeping the persistent peers connected."""
        nursery.start_soon(self._ban_expiry_loop)
        for info in self._bootstrap:
            nursery.start_soon(self._dial_loop, info)

    def clear(self) -> None:
        """Forget every connection (the network stopped)."""
        for peer in self._table.connected():
            self._table.remove(peer)

    # -- connections and the handshake ------------------------------------------------------

    def on_connected(self, peer_id: ID) -> None:
        """A connection to ``peer_id`` opened: admit the peer and greet it, or refuse it."""
        running = self._stack.running
        if running is None:
            return
        peer = str(peer_id.to_base58())
        if self._scores.is_banned(peer, now_ms()):
            running.nursery.start_soon(self._disconnect_quietly, peer_id)
            return
        admission = self._table.admit(peer, now_ms(), persistent=peer in self._persistent)
        if admission is Admission.FULL:
            logger.info("refusing %s: %d peers already", peer, self.config.max_peers)
            running.nursery.start_soon(self._disconnect_quietly, peer_id)
        elif admission is Admission.ADMITTED:
            running.nursery.start_soon(self._handshake, peer)
        elif self._table.is_ready(peer):
            # A member dialled again before we saw its older connection end: it restarted.
            self._forget_gossip_backoff(running.router, peer)
        self._peer_lot.unpark_all()

    def on_inbound_stream(self, raw: INetStream) -> None:
        """A peer opened a stream: let it be, or reset it and charge the peer."""
        running = self._stack.running
        if running is None:
            return
        peer = str(raw.muxed_conn.peer_id.to_base58())
        refused = (
            "banned"
            if self._scores.is_banned(peer, now_ms())
            else self._stream_gate.admit(peer, now_ms(), open_inbound_streams(raw))
        )
        if refused is None:
            return
        self.streams_refused += 1
        running.nursery.start_soon(reset_quietly, Libp2pStream(raw))
        if refused != "banned":
            self.penalize(peer, Offense.STREAM_FLOOD, refused)

    def on_disconnected(self, peer_id: ID) -> None:
        """A connection to ``peer_id`` closed: forget the peer if it was the last one."""
        running = self._stack.running
        if running is None or running.host.get_network().get_connections(peer_id):
            return  # another connection to the peer is still up
        peer = str(peer_id.to_base58())
        record = self._table.remove(peer)
        if record is None:
            return
        if record.ready:
            self._forget_gossip_backoff(running.router, peer)
        self._on_gone(peer)
        self._peer_lot.unpark_all()

    def _forget_gossip_backoff(self, router: ConsensusGossipSub, peer: PeerId) -> None:
        """Give a member whose connection ended or began a clean gossip slate: it is leaving
        or restarting, not grafting too eagerly. A banned peer keeps its records."""
        if self._scores.is_banned(peer, now_ms()):
            return
        self._counters.gossip_backoffs_cleared += router.forget_backoff(ID.from_base58(peer))

    def _hello(self) -> Hello:
        status = self._status_provider()
        if len(status) > MAX_STATUS_BYTES:
            logger.error("status of %d bytes exceeds %d: not sent", len(status), MAX_STATUS_BYTES)
            status = b""
        return Hello(NETWORK_PROTOCOL_VERSION, self.config.chain_id, self.config.agent, status)

    async def _handshake(self, peer: PeerId) -> None:
        """Send our hello; accept the peer, or disconnect (and maybe ban) it."""
        timeout_s = self.config.handshake_timeout_ms / 1000
        try:
            reply = await self._client.request(
                peer, STATUS_PROTOCOL, encode_hello(self._hello()), timeout_s
            )
            hello = decode_hello(reply)
            check_hello(self.config.chain_id, hello)
        except ChainMismatchError as exc:
            self._counters.handshakes_failed += 1
            logger.warning("banning %s: %s", peer, exc)
            self.penalize(peer, Offense.WRONG_CHAIN, str(exc))
            return
        except HandshakeError as exc:
            self._counters.handshakes_failed += 1
            self.penalize(peer, Offense.BAD_HANDSHAKE, str(exc))
        except ProtocolNotSupportedError:
            if self.config.allow_observers:
                return  # a plain libp2p peer: it may gossip, but is never ``ready``
            self._counters.handshakes_failed += 1
        except (RequestError, ProtocolViolationError, FrameTooLargeError) as exc:
            self._counters.handshakes_failed += 1
            logger.info("handshake with %s failed: %s", peer, exc)
        else:
            self._mark_ready(peer, hello)
            return
        await self._disconnect_quietly(ID.from_base58(peer))

    async def handle_status(self, peer: PeerId, data: bytes) -> bytes:
        """The server side of the handshake: judge the peer's hello, answer with ours."""
        try:
            hello = decode_hello(data)
            check_hello(self.config.chain_id, hello)
        except ChainMismatchError as exc:
            self._counters.handshakes_failed += 1
            self.penalize(peer, Offense.WRONG_CHAIN, str(exc))
            return encode_hello(self._hello())  # so that the peer learns why, and bans us too
        except HandshakeError as exc:
            self._counters.handshakes_failed += 1
            self.penalize(peer, Offense.BAD_HANDSHAKE, str(exc))
            raise RequestRejectedError(str(exc)) from exc
        self._mark_ready(peer, hello)
        return encode_hello(self._hello())

    def _mark_ready(self, peer: PeerId, hello: Hello) -> None:
        running = self._stack.running
        if running is None or not self._table.mark_ready(peer, hello, now_ms()):
            return
        self._counters.handshakes_ok += 1
        # Back-off records made since the member's last connection ended (its PRUNEs can be
        # read after the disconnect) would keep it out of the meshes it is about to join.
        self._forget_gossip_backoff(running.router, peer)
        self._on_ready(peer)
        self._peer_lot.unpark_all()

    async def _disconnect_quietly(self, peer_id: ID) -> None:
        running = self._stack.running
        if running is None:
            return
        try:
            await running.host.disconnect(peer_id)
        except Exception:  # already gone
            logger.debug("disconnect from %s failed", peer_id, exc_info=True)

    # -- scores and bans --------------------------------------------------------------------

    def penalize(self, peer: PeerId, offense: Offense, detail: str) -> None:
        """Charge ``peer`` for ``offense``; ban it if its points reach the threshold."""
        if self._scores.penalize(peer, offense, now_ms(), detail):
            self._on_banned(peer, f"{offense.value}: {detail}")

    def ban(self, peer: PeerId, reason: str, duration_ms: int | None = None) -> Ban:
        """Ban ``peer`` (disconnect it, refuse it) for ``duration_ms`` or the policy's time."""
        ban = self._scores.ban(peer, now_ms(), reason, duration_ms)
        self._on_banned(peer, reason)
        return ban

    def unban(self, peer: PeerId) -> bool:
        """Lift a ban early; True if there was one."""
        lifted = self._scores.unban(peer)
        if lifted and self._stack.running is not None:
            self._stack.running.pubsub.remove_from_blacklist(ID.from_base58(peer))
        return lifted

    def _on_banned(self, peer: PeerId, reason: str) -> None:
        self._counters.bans += 1
        logger.warning("banned %s: %s", peer, reason)
        self._ban_lot.unpark_all()
        running = self._stack.running
        if running is None:
            return
        peer_id = ID.from_base58(peer)
        running.pubsub.add_to_blacklist(peer_id)
        running.nursery.start_soon(self._disconnect_after_grace, peer_id)

    async def _disconnect_after_grace(self, peer_id: ID) -> None:
        await trio.sleep(BAN_DISCONNECT_GRACE_S)
        await self._disconnect_quietly(peer_id)

    async def _ban_expiry_loop(self) -> None:
        running = self._stack.require()
        while True:
            expiry_ms = self._scores.next_expiry_ms()
            deadline_s = math.inf if expiry_ms is None else expiry_ms / 1000
            with trio.move_on_at(deadline_s):
                await self._ban_lot.park()
            for peer in self._scores.expire(now_ms()):
                logger.info("ban of %s lapsed", peer)
                running.pubsub.remove_from_blacklist(ID.from_base58(peer))

    # -- dialing ----------------------------------------------------------------------------

    async def connect(self, address: str) -> PeerId:
        """Dial a peer at ``address`` (ending in ``/p2p/<id>``) once; its peer id.
        ``PeerBannedError`` if we banned it, ``PeerUnreachableError`` if the dial fails."""
        info = parse_peer_addr(address)
        peer = str(info.peer_id.to_base58())
        ban = self._scores.ban_of(peer)
        if ban is not None and self._scores.is_banned(peer, now_ms()):
            raise PeerBannedError(f"{peer} is banned ({ban.reason})")
        if not await self._dial(info):
            raise PeerUnreachableError(f"could not connect to {address}")
        return peer

    async def disconnect(self, peer: PeerId) -> None:
        """Close the connection to ``peer`` (a bootstrap peer will be redialled)."""
        if self._stack.running is not None:
            await self._stack.running.host.disconnect(ID.from_base58(peer))

    async def _dial_loop(self, info: PeerInfo) -> None:
        """Keep a persistent peer connected: dial, wait for the connection to end, back off."""
        peer = str(info.peer_id.to_base58())
        backoff = Backoff(self.config.backoff, self._rng)
        while True:
            await self._wait_until_not_banned(peer)
            if not self._table.is_connected(peer) and not await self._dial(info):
                await trio.sleep(backoff.next_delay_ms() / 1000)
                continue
            connected_at_ms = now_ms()
            while self._table.is_connected(peer):
                await self._peer_lot.park()
            backoff.connection_ended(now_ms() - connected_at_ms)
            await trio.sleep(backoff.next_delay_ms() / 1000)

    async def _dial(self, info: PeerInfo) -> bool:
        running = self._stack.require()
        connected = False
        with trio.move_on_after(self.config.dial_timeout_ms / 1000):
            try:
                await running.host.connect(info)
                connected = True
            except Exception as exc:  # refused, reset, upgrade failed: all "not now"
                logger.debug("dial %s failed: %r", info.peer_id, exc)
        if connected:
            self._counters.dials_ok += 1
        else:
            self._counters.dials_failed += 1
        return connected

    async def _wait_until_not_banned(self, peer: PeerId) -> None:
        while (ban := self._scores.ban_of(peer)) is not None and self._scores.is_banned(
            peer, now_ms()
        ):
            await trio.sleep_until(ban.until_ms / 1000)

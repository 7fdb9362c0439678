"""A plain py-libp2p host, configured as any libp2p implementation would be (Noise, Yamux,
GossipSub /meshsub/1.1.0) and knowing nothing of Big Health: the interoperability probe."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.host.ping import ID as PING
from libp2p.identity.identify.identify import ID as IDENTIFY
from libp2p.identity.identify.identify import parse_identify_response
from libp2p.identity.identify.pb.identify_pb2 import Identify
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

PING_BYTES = 32
MAX_IDENTIFY_BYTES = 64 * 1024


class PlainHost:
    """A running plain host; use ``PlainHost.running()``."""

    def __init__(self, host: Any, pubsub: Pubsub, subscriptions: dict[str, Any]) -> None:
        self.host = host
        self.pubsub = pubsub
        self.subscriptions = subscriptions

    @classmethod
    @asynccontextmanager
    async def running(cls, topics: list[str]) -> AsyncIterator[PlainHost]:
        key_pair = create_new_key_pair()
        noise = NoiseTransport(key_pair, noise_privkey=create_x25519_key_pair().private_key)
        host = new_host(
            key_pair=key_pair,
            sec_opt={NOISE: noise},
            muxer_opt={TProtocol(YAMUX): Yamux},
        )
        router = GossipSub(
            protocols=[TProtocol("/meshsub/1.1.0")],
            degree=6,
            degree_low=4,
            degree_high=12,
            heartbeat_interval=1,
        )
        pubsub = Pubsub(host, router)
        listen = multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")
        async with (
            background_trio_service(pubsub),
            background_trio_service(router),
            host.run([listen]),
        ):
            await pubsub.wait_until_ready()
            subscriptions = {topic: await pubsub.subscribe(topic) for topic in topics}
            yield cls(host, pubsub, subscriptions)

    async def connect(self, address: str) -> ID:
        info = info_from_p2p_addr(multiaddr.Multiaddr(address))
        await self.host.connect(info)
        return info.peer_id

    async def identify(self, peer: ID) -> Identify:
        stream = await self.host.new_stream(peer, [IDENTIFY])
        data = b""
        while len(data) < MAX_IDENTIFY_BYTES:
            try:
                chunk = await stream.read(MAX_IDENTIFY_BYTES)
            except StreamEOF:
                break
            if not chunk:
                break
            data += chunk
        await stream.close()
        return parse_identify_response(data)

    async def ping(self, peer: ID) -> float:
        """One ping round trip, in seconds (the echo must match)."""
        stream = await self.host.new_stream(peer, [PING])
        payload = os.urandom(PING_BYTES)
        started = trio.current_time()
        await stream.write(payload)
        echo = b""
        while len(echo) < PING_BYTES:
            echo += await stream.read(PING_BYTES - len(echo))
        await stream.close()
        if echo != payload:
            raise AssertionError("the ping echo differs from what was sent")
        return trio.current_time() - started

    async def next_gossip(self, topic: str) -> tuple[str, bytes]:
        """The next message on ``topic``: (publisher's peer id, data)."""
        message = await self.subscriptions[topic].get()
        return str(ID(message.from_id).to_base58()), bytes(message.data)

"""Settings of the libp2p network adapter, its protocol ids, and a validator helper.

Every limit has a name with its unit and a default chosen from what py-libp2p 0.8.1 was
measured to do (``docs/NETWORKING.md``): messages well under 1 MiB (larger ones
vanish silently in gossipsub), GossipSub with a 1 s heartbeat and neither spam protection nor
adaptive gossip, /meshsub/1.1.0 and 1.0.0 only. ``Libp2pNetworkConfig`` checks itself on
construction and raises ``NetworkConfigError`` naming the setting at fault.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from node.adapters.backoff import BackoffPolicy
from node.adapters.errors import NetworkConfigError
from node.adapters.framing import HARD_MAX_FRAME_BYTES
from node.adapters.handshake import MAX_AGENT_CHARS
from node.adapters.peer_scoring import ScoringPolicy
from node.codec import CHAIN_ID_PATTERN, MAX_MESSAGE_BYTES, MAX_TX_BATCH_BYTES
from node.errors import DecodeError
from node.ports import MessageValidator, Verdict

KIB: Final = 1024
MIB: Final = 1024 * KIB

# -- protocol ids ---------------------------------------------------------------------------

STATUS_PROTOCOL: Final = "/bighealth/status/1"  # the handshake (hello exchange)
DIRECT_PROTOCOL: Final = "/bighealth/direct/1"  # Network.send: one long-lived stream per peer
RESERVED_PROTOCOLS: Final = frozenset({STATUS_PROTOCOL, DIRECT_PROTOCOL})
PROTOCOL_PATTERN: Final = re.compile(r"/bighealth/[a-z][a-z0-9_-]{0,31}/[0-9]{1,4}", re.ASCII)
MESHSUB_V11: Final = "/meshsub/1.1.0"
MESHSUB_V10: Final = "/meshsub/1.0.0"

# -- limits ---------------------------------------------------------------------------------

# Gossipsub loses messages of ~1 MiB without an error; 1,024,000 B still passed. Our ceiling
# leaves room for the envelope, the signature and protobuf framing.
MAX_GOSSIP_MESSAGE_BYTES: Final = 768 * KIB
DEFAULT_MAX_MESSAGE_BYTES: Final = MAX_TX_BATCH_BYTES + 128 * KIB  # a full TxBatch and more
# A response frame carries one message of the largest kind (a committed block).
DEFAULT_MAX_FRAME_BYTES: Final = MAX_MESSAGE_BYTES + 1 * KIB
MAX_SUBSCRIPTION_CHANNEL_MESSAGES: Final = 65_536
# Seconds between the GRAFT-flood threshold and the prune back-off (see GossipParams).
FLOOD_MARGIN_S: Final = 2


def decoding_validator(decode: Callable[[bytes], object], max_bytes: int) -> MessageValidator:
    """A validator that accepts what ``decode`` decodes within ``max_bytes`` and rejects the
    rest (for instance ``decoding_validator(node.codec.decode_message, limit)``)."""

    def validate(data: bytes) -> Verdict:
        if len(data) > max_bytes:
            return Verdict.REJECT
        try:
            decode(data)
        except DecodeError:
            return Verdict.REJECT
        return Verdict.ACCEPT

    return validate


@dataclass(frozen=True, slots=True)
class GossipParams:
    """GossipSub settings (libp2p's defaults are wrong for consensus; see the notes)."""

    degree: int = 6
    degree_low: int = 4
    degree_high: int = 12
    heartbeat_interval_s: int = 1
    protocols: tuple[str, ...] = (MESHSUB_V11, MESHSUB_V10)  # not 1.2.0: IDONTWANT costs CPU
    strict_signing: bool = True  # what js-libp2p expects (StrictSign)
    seen_ttl_s: int = 120
    validation_timeout_s: float = 5.0
    # Per-subscription buffer between libp2p and our drain task (libp2p's default, 32, drops
    # silently under bursts).
    subscription_channel_messages: int = 4096
    # How long a gap in one publisher's sequence is waited for before it is skipped.
    reorder_window_ms: int = 25
    # Publishing pauses while a peer's libp2p outbound queue (32 RPCs, drops when full) holds
    # this many, for at most ``publish_backpressure_max_ms`` (a stalled peer must not stall
    # everyone).
    publish_high_water_rpcs: int = 16
    publish_backpressure_max_ms: int = 200
    # A topic left stays subscribed in libp2p this long (its messages dropped): peers refuse
    # to take a node that left a topic back into their mesh for ``unsubscribe_backoff_s``.
    unsubscribe_linger_ms: int = 30_000
    # How long a peer pruned from a mesh stays out of it (asked of peers in our PRUNEs, and
    # kept for them here); a GRAFT during it is refused. libp2p's 60 s suits large open
    # networks where a pruned peer has other meshes to join; among a few validators a peer
    # left out is a voice unheard, and a few heartbeats damp mesh churn enough. Peers that
    # PRUNE us with a longer back-off are obeyed.
    prune_backoff_s: int = 5
    # A GRAFT this soon after a PRUNE between the same two peers is a flood (refused and
    # scored). libp2p rounds back-off expiry down to whole seconds, so a peer whose back-off
    # just ended may GRAFT up to 1 s early by the other's reckoning: with a threshold as long
    # as the back-off, that GRAFT draws a fresh PRUNE and two peers can refuse each other
    # indefinitely (measured: 1 run in 4 unsettled after 90 s). Keep it well below.
    graft_flood_threshold_s: int = 3
    # How long a peer that left a topic is not grafted again (libp2p's default).
    unsubscribe_backoff_s: int = 10

    def check(self) -> None:
        """Raise ``NetworkConfigError`` if the settings are inconsistent."""
        if not 1 <= self.degree_low <= self.degree <= self.degree_high:
            raise NetworkConfigError("gossip needs 1 <= degree_low <= degree <= degree_high")
        if self.heartbeat_interval_s < 1:
            raise NetworkConfigError("gossip heartbeat_interval_s must be >= 1")
        if not self.protocols or any(p not in (MESHSUB_V11, MESHSUB_V10) for p in self.protocols):
            raise NetworkConfigError(f"gossip protocols must be among {MESHSUB_V11}, {MESHSUB_V10}")
        if not 1 <= self.subscription_channel_messages <= MAX_SUBSCRIPTION_CHANNEL_MESSAGES:
            raise NetworkConfigError("subscription_channel_messages out of range")
        if min(self.reorder_window_ms, self.publish_backpressure_max_ms) < 0 or (
            self.unsubscribe_linger_ms < 0
        ):
            raise NetworkConfigError("gossip time settings must be >= 0")
        if self.publish_high_water_rpcs < 1 or self.validation_timeout_s <= 0:
            raise NetworkConfigError("publish_high_water_rpcs and validation_timeout_s > 0")
        if self.prune_backoff_s < self.heartbeat_interval_s:
            # The mesh is repaired once a heartbeat: a shorter back-off would damp nothing.
            raise NetworkConfigError("gossip prune_backoff_s must be >= heartbeat_interval_s")
        if not 1 <= self.graft_flood_threshold_s <= self.prune_backoff_s - FLOOD_MARGIN_S:
            raise NetworkConfigError(
                f"gossip graft_flood_threshold_s must be 1..prune_backoff_s - {FLOOD_MARGIN_S}"
            )
        if self.unsubscribe_backoff_s < 1:
            raise NetworkConfigError("gossip unsubscribe_backoff_s must be >= 1")


@dataclass(frozen=True, slots=True)
class Libp2pNetworkConfig:
    """Everything a ``Libp2pNetwork`` is configured with (times in ms, sizes in bytes)."""

    chain_id: str
    home: Path  # holds the node key file
    listen_multiaddr: str = "/ip4/127.0.0.1/tcp/0"
    bootstrap: tuple[str, ...] = ()  # multiaddrs ending in /p2p/<peer id>: persistent peers
    agent: str = "bighealth/0.1"
    allow_observers: bool = False  # keep peers that do not speak our handshake (gossip only)
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    max_peers: int = 50
    max_topics: int = 64
    inbound_queue_messages: int = 10_000
    inbound_queue_bytes: int = 64 * MIB
    peer_queue_messages: int = 1024  # direct messages waiting for one peer's stream
    peer_queue_bytes: int = 16 * MIB
    broadcast_queue_messages: int = 1024
    broadcast_queue_bytes: int = 32 * MIB
    max_inbound_streams_per_peer: int = 16
    max_concurrent_handlers: int = 64
    handler_timeout_ms: int = 10_000
    handshake_timeout_ms: int = 5_000
    dial_timeout_ms: int = 5_000
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    scoring: ScoringPolicy = field(default_factory=ScoringPolicy)
    gossip: GossipParams = field(default_factory=GossipParams)

    def __post_init__(self) -> None:
        if CHAIN_ID_PATTERN.fullmatch(self.chain_id) is None:
            raise NetworkConfigError(f"invalid chain id {self.chain_id!r}")
        if not self.agent or len(self.agent) > MAX_AGENT_CHARS:
            raise NetworkConfigError(f"agent must be 1..{MAX_AGENT_CHARS} characters")
        if not 1 <= self.max_message_bytes <= MAX_GOSSIP_MESSAGE_BYTES:
            raise NetworkConfigError(
                f"max_message_bytes must be 1..{MAX_GOSSIP_MESSAGE_BYTES} (gossipsub loses "
                f"messages near 1 MiB), got {self.max_message_bytes}"
            )
        if not self.max_message_bytes < self.max_frame_bytes <= HARD_MAX_FRAME_BYTES:
            raise NetworkConfigError(
                f"max_frame_bytes must be above max_message_bytes and at most "
                f"{HARD_MAX_FRAME_BYTES}, got {self.max_frame_bytes}"
            )
        for name in _POSITIVE_SETTINGS:
            if getattr(self, name) < 1:
                raise NetworkConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("inbound_queue_bytes", "peer_queue_bytes", "broadcast_queue_bytes"):
            if getattr(self, name) < self.max_message_bytes + KIB:  # one message and its framing
                raise NetworkConfigError(f"{name} must hold at least one message")
        self.gossip.check()


_POSITIVE_SETTINGS: Final = (
    "max_peers",
    "max_topics",
    "inbound_queue_messages",
    "inbound_queue_bytes",
    "peer_queue_messages",
    "peer_queue_bytes",
    "broadcast_queue_messages",
    "broadcast_queue_bytes",
    "max_inbound_streams_per_peer",
    "max_concurrent_handlers",
    "handler_timeout_ms",
    "handshake_timeout_ms",
    "dial_timeout_ms",
)

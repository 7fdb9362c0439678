"""Ports: the only ways time, randomness, the network, storage and signing reach the node.

Pure modules (codec, app, mempool, core) never read a clock, draw ambient randomness, open a
socket or touch a disk: they are handed these objects (or the values read from them) by the
shell. The trio runtime implements them over the real world, ``netsim`` over a simulated one,
``node.testing`` with deterministic in-memory fakes; every implementation honours the
contracts stated here (for ``Network``: ``node.testing.check_network_conformance``).
The values a network exchanges with the runtime beyond the port (``Verdict`` and
``MessageValidator`` for per-topic checks, ``NetworkSnapshot`` of its counters) are declared
here too, so that the runtime and the API name no network adapter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final, Protocol, runtime_checkable

PeerId = str

MAX_TOPIC_CHARS: Final = 64
TOPIC_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9/_.-]{0,63}", re.ASCII)


def is_valid_topic(topic: str) -> bool:
    """True when ``topic`` is 1..64 characters of ``[a-z0-9/_.-]`` starting alphanumeric."""
    return isinstance(topic, str) and TOPIC_PATTERN.fullmatch(topic) is not None


@runtime_checkable
class Clock(Protocol):
    """Wall-clock time as the shell sees it."""

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch. Not monotonic (a real clock may step back):
        consensus-relevant time is the agreed block time, this is only used to propose a
        time and to bound how far ahead of it a proposed time may be."""
        ...


@runtime_checkable
class Rng(Protocol):
    """Randomness from a seed the shell controls (replayable in simulation)."""

    def random_bytes(self, count: int) -> bytes:
        """``count`` random bytes (``count >= 0``)."""
        ...

    def randint(self, low: int, high: int) -> int:
        """A uniformly random integer in ``[low, high]`` (inclusive; ``low <= high``)."""
        ...


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message as the network hands it to the node."""

    sender: PeerId
    topic: str
    data: bytes


@runtime_checkable
class Network(Protocol):
    """Message transport between peers, sans-I/O friendly: sending never blocks and incoming
    messages are plain data the owner drains with ``receive``.

    Contract (what ``check_network_conformance`` tests):
    - ``send(peer, topic, data)`` delivers ``data`` to ``peer`` at most once, whatever the
      peer subscribed to; ``broadcast(topic, data)`` delivers to every *other* peer subscribed
      to ``topic``, never back to the sender.
    - Messages from one sender to one receiver arrive in the order they were sent (per-peer
      FIFO); nothing is promised across senders.
    - ``data`` longer than ``max_message_bytes`` raises ``MessageTooLargeError`` and is not
      sent; an unknown peer raises ``UnknownPeerError``; a bad topic ``InvalidTopicError``.
    - Delivery is not guaranteed (peers crash, queues overflow): protocols above must
      tolerate loss and recover by request/response.
    """

    @property
    def local_peer(self) -> PeerId:
        """This node's peer id."""
        ...

    @property
    def max_message_bytes(self) -> int:
        """The largest ``data`` this network carries."""
        ...

    def peers(self) -> tuple[PeerId, ...]:
        """The other peers this node knows, sorted."""
        ...

    def subscribe(self, topic: str) -> None:
        """Receive broadcasts on ``topic`` from now on (idempotent)."""
        ...

    def unsubscribe(self, topic: str) -> None:
        """Stop receiving broadcasts on ``topic`` (idempotent)."""
        ...

    def send(self, peer: PeerId, topic: str, data: bytes) -> None:
        """Queue ``data`` for one peer; returns at once."""
        ...

    def broadcast(self, topic: str, data: bytes) -> None:
        """Queue ``data`` for every other peer subscribed to ``topic``; returns at once."""
        ...

    def receive(self, max_messages: int) -> list[InboundMessage]:
        """Up to ``max_messages`` (>= 1, else ``ValueError``) delivered messages, oldest
        first; ``[]`` when none."""
        ...


class Verdict(Enum):
    """A validator's answer about one incoming message."""

    ACCEPT = "accept"  # deliver it (and relay it, for gossip)
    REJECT = "reject"  # drop it and penalise the peer that sent it
    IGNORE = "ignore"  # drop it quietly (e.g. a duplicate): no penalty


MessageValidator = Callable[[bytes], Verdict]
"""Judges a message's bytes. Must be fast, pure and must not raise (an exception counts as a
bug in the node, drops the message and penalises nobody). It checks *form* (size, decoding):
it must not reject a message only for being early (a vote for a future height, say) —
gossipsub remembers a rejection for minutes, so the message would be lost for good; the core
buffers early messages instead."""


@dataclass(frozen=True, slots=True)
class TopicStats:
    """Traffic of one topic (direct and gossip together); bytes are message data bytes."""

    messages_in: int = 0
    bytes_in: int = 0
    messages_out: int = 0
    bytes_out: int = 0


@dataclass(frozen=True, slots=True)
class NetworkSnapshot:
    """Every counter of a network at one moment (what a runtime exports as metrics)."""

    peers_connected: int
    peers_ready: int
    peers_banned: int
    topics: dict[str, TopicStats]
    dropped: dict[str, int]
    direct_streams_opened: int
    requests_sent: int
    requests_failed: int
    requests_served: int
    handshakes_ok: int
    handshakes_failed: int
    dials_ok: int
    dials_failed: int
    bans: int
    gossip_reordered: int
    inbound_queued: int
    # Gossip back-off and GRAFT-flood records dropped for members that disconnected or
    # reconnected (so that a restarted member is taken back into meshes at once).
    gossip_backoffs_cleared: int


@dataclass(frozen=True, slots=True)
class Put:
    """Write ``value`` under ``key`` (part of an atomic write batch)."""

    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove ``key`` if present (part of an atomic write batch)."""

    key: bytes


WriteOp = Put | Delete


@runtime_checkable
class Storage(Protocol):
    """A sorted byte-key/byte-value store (LevelDB in production).

    Durability: a write is visible to reads at once but survives a crash (power loss) only
    once ``sync()`` returned, or if it was written with ``write_batch(..., sync=True)``.
    A batch is atomic: after a crash either all of it or none of it is there.
    """

    def get(self, key: bytes) -> bytes | None:
        """The value under ``key``, or ``None``."""
        ...

    def put(self, key: bytes, value: bytes) -> None:
        """Write one value (not durable until synced)."""
        ...

    def delete(self, key: bytes) -> None:
        """Remove one key if present (not durable until synced)."""
        ...

    def write_batch(self, ops: Sequence[WriteOp], *, sync: bool = False) -> None:
        """Apply ``ops`` in order, atomically; with ``sync`` they are durable on return."""
        ...

    def iterate_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries whose key starts with ``prefix``, in ascending key order, as of the call
        (later writes are not seen by an iterator already made)."""
        ...

    def sync(self) -> None:
        """Make every write so far durable."""
        ...


@runtime_checkable
class Signer(Protocol):
    """A key that signs (an ``Ed25519KeyPair``, a hardware key, a remote signer)."""

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        ...

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        ...


__all__ = [
    "MAX_TOPIC_CHARS",
    "Clock",
    "Delete",
    "InboundMessage",
    "MessageValidator",
    "Network",
    "NetworkSnapshot",
    "PeerId",
    "Put",
    "Rng",
    "Signer",
    "Storage",
    "TopicStats",
    "Verdict",
    "WriteOp",
    "is_valid_topic",
]

"""The contract between the simulator and the nodes it runs.

A simulated node is a :class:`SimNode`: the simulator calls it when something happens to it
(it boots, a message arrives, one of its timers fires, a client hands it a transaction) and
it acts only through the :class:`NodeEnv` it was built with — its clock, its disk, its random
stream, the network and the decision log. A node never sees virtual time or other nodes'
objects, so whatever runs here (the reference replica of :mod:`netsim.replica`, a
``NodeCore`` behind an adapter, a Byzantine wrapper) is driven exactly as a real shell would
drive it, and a crash is modelled by dropping the object and building a new one over the same
disk.

Messages travel as :class:`Envelope` s: the canonical bytes of a ``node.codec`` message, their
SHA-256 (computed once per send, shared by every receiver of a broadcast) and the decoded
message, cached on first use (decoding is a pure function of the bytes, so every receiver
would get an equal object anyway).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from netsim.storage import SimStorage
from netsim.topology import Topology
from node.codec import Message, decode_message
from node.errors import DecodeError
from node.ports import Clock, Rng
from node.types import Event, TxReceipt

TimerToken = tuple[int, ...]
"""What a node gets back when its timer fires: up to four non-negative ints it chose."""

MAX_TIMER_TOKEN_ITEMS = 4
UNKNOWN_KIND = 0
"""The kind of an envelope whose bytes do not start like a ``node.codec`` message."""

_FIXARRAY_2 = 0x92
_POSITIVE_FIXINT_END = 0x80


def peek_kind(data: bytes) -> int:
    """The ``node.codec.MessageKind`` tag of ``data`` without decoding it (UNKNOWN_KIND if
    the bytes do not start with a ``[tag, body]`` envelope)."""
    if len(data) >= 2 and data[0] == _FIXARRAY_2 and data[1] < _POSITIVE_FIXINT_END:
        return data[1]
    return UNKNOWN_KIND


class Envelope:
    """One message on the simulated wire: bytes, kind tag, topic, digest, cached decoding.

    ``topic`` is the gossip topic it was published on ("" when sent directly or unknown).
    """

    __slots__ = ("_decoded", "_error", "data", "digest", "kind", "topic")

    def __init__(self, data: bytes, topic: str = "") -> None:
        """Wrap ``data`` (TypeError unless bytes)."""
        if type(data) is not bytes:
            raise TypeError(f"an envelope carries bytes, not {type(data).__name__}")
        self.data = data
        self.topic = topic
        self.kind = peek_kind(data)
        self.digest = hashlib.sha256(data).digest()
        self._decoded: Message | None = None
        self._error: DecodeError | None = None

    @property
    def size_bytes(self) -> int:
        """Bytes on the wire."""
        return len(self.data)

    def decoded(self) -> Message:
        """The message, decoded once (``DecodeError`` for bytes that are no valid message)."""
        if self._decoded is not None:
            return self._decoded
        if self._error is not None:
            raise self._error
        try:
            self._decoded = decode_message(self.data)
        except DecodeError as exc:
            self._error = exc
            raise
        return self._decoded


@dataclass(frozen=True, slots=True)
class Decision:
    """A node committed a block: what the checkers compare across nodes.

    ``app_state_root`` is the application state root *after* executing the block;
    ``tx_hashes`` are the SHA-256 of the block's transactions, in block order;
    ``previous_block_id`` is the parent id its header names (None if the node did not read
    it: the checker then relies on agreement, as the block id covers the header).
    ``time_ms``, ``receipts`` and ``events`` are what executing the block gave (the block
    time, each transaction's receipt, the block-time events of due work) for the workload to
    read, when the node code reports them (0 and empty otherwise); the checkers do not
    compare them (the state root covers the state they come from).
    """

    height: int
    block_id: bytes
    previous_block_id: bytes | None
    app_state_root: bytes
    tx_hashes: tuple[bytes, ...]
    time_ms: int = 0
    receipts: tuple[TxReceipt, ...] = ()
    events: tuple[Event, ...] = ()


class NodeEnv(Protocol):
    """What a node may use: its own clock, disk and randomness, the network, the log."""

    @property
    def index(self) -> int:
        """This node's id (validators are ``0 .. validators-1``)."""
        ...

    @property
    def topology(self) -> Topology:
        """Who is a validator, and this node's upstreams and downstream."""
        ...

    @property
    def clock(self) -> Clock:
        """This node's (drifting) wall clock."""
        ...

    @property
    def storage(self) -> SimStorage:
        """This node's disk; it survives crashes up to the last sync."""
        ...

    @property
    def rng(self) -> Rng:
        """This node's random stream (a new one after each restart)."""
        ...

    def send(self, dst: int, envelope: Envelope) -> None:
        """Queue ``envelope`` for node ``dst`` (another node); returns at once."""
        ...

    def multicast(self, dsts: Sequence[int], envelope: Envelope) -> None:
        """Queue ``envelope`` for each of ``dsts`` (this node itself is skipped)."""
        ...

    def set_timer(self, delay_ms: int, token: TimerToken) -> int:
        """Call ``on_timer(token)`` once this node's clock advanced ``delay_ms``; returns the
        timer's id (for :meth:`cancel_timer`).

        ValueError for a bad token or delay; LimitExceeded past MAX_TIMERS_PER_NODE pending.
        """
        ...

    def cancel_timer(self, timer_id: int) -> None:
        """Cancel a pending timer (no effect if it fired or was cancelled already)."""
        ...

    def decided(self, decision: Decision) -> None:
        """Report a committed block (heights in order; a repeat after restart is allowed)."""
        ...

    def accused(self, validator: bytes) -> None:
        """Report evidence that ``validator`` equivocated."""
        ...

    def rejected(self, sender: int, reason: str) -> None:
        """Count an input from ``sender`` refused as invalid (``reason`` is a short tag)."""
        ...


class SimNode(Protocol):
    """A node as the simulator drives it (see the module docstring)."""

    def start(self) -> None:
        """Boot (or restart) from what the disk holds."""
        ...

    def on_message(self, sender: int, envelope: Envelope) -> None:
        """A message from node ``sender`` arrived."""
        ...

    def on_timer(self, token: TimerToken) -> None:
        """A timer set with ``token`` fired."""
        ...

    def submit_tx(self, tx: bytes) -> str | None:
        """A client handed this node the transaction ``tx`` (canonical bytes). Returns why
        the node refused it (``"<reason>: <message>"``, what a real node answers the client),
        or None when it was admitted or the node code gives no answer."""
        ...


NodeFactory = Callable[[NodeEnv], SimNode]
"""Builds a node over its environment; called at boot and after every crash."""


def check_token(token: TimerToken) -> TimerToken:
    """``token`` if it is a tuple of 1..4 ints in 0..2^63-1, else ValueError."""
    if (
        type(token) is not tuple
        or not 1 <= len(token) <= MAX_TIMER_TOKEN_ITEMS
        or any(type(item) is not int or not 0 <= item < 2**63 for item in token)
    ):
        raise ValueError(f"a timer token is 1..4 ints in 0..2^63-1, got {token!r}")
    return token

"""Events: everything a shell tells ``NodeCore.handle`` (frozen dataclasses, no I/O).

Times are milliseconds since the Unix epoch read from the shell's ``Clock`` when the event
happened (``now_ms``); the core never reads a clock. Bytes from the network are handed over
raw: the core decodes and verifies them, and reports bad ones as ``PeerMisbehaved``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeAlias

from node.errors import TxRejected
from node.mempool import VerifiedTx
from node.ports import PeerId


class TimerKind(IntEnum):
    """What a timer is for (the ``kind`` of a ``TimerKey``)."""

    PROPOSE = 1
    """Consensus timeoutPropose of (height, round)."""
    PREVOTE = 2
    """Consensus timeoutPrevote of (height, round)."""
    PRECOMMIT = 3
    """Consensus timeoutPrecommit of (height, round)."""
    COMMIT_WAIT = 4
    """The pause after committing ``height - 1`` before starting ``height``."""
    TX_GOSSIP = 5
    """Flush locally submitted transactions to peers."""
    SYNC_TICK = 6
    """Check whether this node fell behind; re-send its latest votes if stalled."""
    SYNC_REQUEST = 7
    """A block request to ``peer`` went unanswered."""
    STATUS = 8
    """Broadcast this node's status."""


@dataclass(frozen=True, slots=True)
class TimerKey:
    """Names one timer. ``SetTimer`` with a key already pending replaces that timer."""

    kind: TimerKind
    height: int = 0
    round: int = 0
    peer: PeerId = ""


@dataclass(frozen=True, slots=True)
class Start:
    """First event after ``NodeCore.open``: start (or resume) the chain."""

    now_ms: int


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """Bytes ``data`` arrived from peer ``sender`` on ``topic`` (broadcast or direct)."""

    sender: PeerId
    topic: str
    data: bytes
    now_ms: int


@dataclass(frozen=True, slots=True)
class TimerFired:
    """The timer ``key`` of a ``SetTimer`` action elapsed."""

    key: TimerKey
    now_ms: int


@dataclass(frozen=True, slots=True)
class TxSubmitted:
    """A client submitted the encoded transaction ``raw`` (the answer is a ``TxResult``)."""

    raw: bytes
    now_ms: int


@dataclass(frozen=True, slots=True)
class VerifiedTxsReceived:
    """The transactions of a ``TxBatch`` from peer ``sender``, already decoded and checked by
    the shell (e.g. in worker threads): ``verified`` enter the mempool without their
    signatures being checked again; ``rejected`` are the refusals, which report ``sender``.

    Contract: ``verified`` holds only results of ``node.mempool.verify_transaction`` (or
    ``verify_transactions``) called with this node's chain id — the core trusts their
    signatures. ``NodeCore.handle`` raises ``TypeError`` or ``ValueError`` for anything else
    it can see (another type, another chain id), before changing anything. The raw bytes
    arrive as ``MessageReceived`` otherwise, and are then checked by the core itself.
    """

    sender: PeerId
    verified: tuple[VerifiedTx, ...]
    rejected: tuple[TxRejected, ...]
    now_ms: int

    @classmethod
    def from_results(
        cls, sender: PeerId, results: Sequence[VerifiedTx | TxRejected], now_ms: int
    ) -> VerifiedTxsReceived:
        """The event of what ``verify_transactions`` returned for one batch of ``sender``."""
        verified = tuple(r for r in results if isinstance(r, VerifiedTx))
        rejected = tuple(r for r in results if isinstance(r, TxRejected))
        return cls(sender, verified, rejected, now_ms)


@dataclass(frozen=True, slots=True)
class VerifiedTxsSubmitted:
    """A client's batch of transactions, decoded and checked by the shell (in worker threads):
    ``results[i]`` is what ``node.mempool.verify_transaction`` gave for the batch's i-th
    transaction, whose hash is ``tx_hashes[i]``. The core answers with one ``TxResult`` per
    transaction, in batch order (a refusal is answered as it is).

    Contract: as ``VerifiedTxsReceived`` (verified with this node's chain id; ``TypeError`` or
    ``ValueError`` otherwise, before anything changes); the two tuples have the same length,
    at most ``MAX_TXS_PER_BATCH``.
    """

    tx_hashes: tuple[bytes, ...]
    results: tuple[VerifiedTx | TxRejected, ...]
    now_ms: int


@dataclass(frozen=True, slots=True)
class BlocksReceived:
    """Peer ``peer`` answered a ``RequestBlocks`` with encoded ``CommittedBlock`` s (from its
    ``NodeCore.blocks_for_sync``); ``blocks`` is empty if it had none."""

    peer: PeerId
    blocks: tuple[bytes, ...]
    now_ms: int


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """Peer ``peer`` reports its latest committed ``height`` and block id (e.g. from a
    handshake); the same as a ``Status`` message on the status topic."""

    peer: PeerId
    height: int
    last_block_id: bytes
    now_ms: int


@dataclass(frozen=True, slots=True)
class PeerDisconnected:
    """The connection to ``peer`` is gone: forget its height and pending requests."""

    peer: PeerId
    now_ms: int


Event: TypeAlias = (
    Start
    | MessageReceived
    | TimerFired
    | TxSubmitted
    | VerifiedTxsReceived
    | VerifiedTxsSubmitted
    | BlocksReceived
    | PeerStatus
    | PeerDisconnected
)

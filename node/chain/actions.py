"""Actions: what ``NodeCore.handle`` asks its shell to do, in list order.

Each docstring says what the shell must do and what, if anything, it feeds back. Durability
is not among them: the core writes and syncs through the ``Storage`` port itself, in the
right order, before it returns an action that depends on it (a signed vote is durable in
the consensus log before the ``Broadcast`` carrying it is returned).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

from consensus.evidence import DuplicateVoteEvidence
from node.chain.events import TimerKey
from node.errors import RejectReason
from node.ports import PeerId
from node.types import Event, TxReceipt


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Publish ``data`` on ``topic`` to every peer subscribed to it. Feed back nothing; the
    network may lose it (the core recovers by timeouts and block sync)."""

    topic: str
    data: bytes


@dataclass(frozen=True, slots=True)
class SendTo:
    """Send ``data`` on ``topic`` to ``peer`` only. Feed back nothing."""

    peer: PeerId
    topic: str
    data: bytes


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Start (or restart) the timer ``key``: after ``delay_ms`` feed back
    ``TimerFired(key, now_ms)``. A pending timer with the same key is replaced."""

    key: TimerKey
    delay_ms: int


@dataclass(frozen=True, slots=True)
class RequestBlocks:
    """Ask ``peer`` for up to ``max_blocks`` committed blocks from ``from_height`` on (the
    peer's shell answers with its core's ``blocks_for_sync``). Feed the answer back as
    ``BlocksReceived``; if none comes, feed nothing (a ``SYNC_REQUEST`` timer covers it)."""

    peer: PeerId
    from_height: int
    max_blocks: int


@dataclass(frozen=True, slots=True)
class BlockCommitted:
    """Block ``height`` is committed and durable: notify the API, metrics and subscribers.

    ``app_state_root`` is the state root after executing it; ``events`` are the block-time
    events (due work), ``receipts`` hold each transaction's outcome and events. Feed back
    nothing."""

    height: int
    block_id: bytes
    time_ms: int
    num_txs: int
    app_state_root: bytes
    events: tuple[Event, ...]
    receipts: tuple[TxReceipt, ...]
    round: int = 0
    """The consensus round that decided it (above 0: earlier rounds timed out)."""


@dataclass(frozen=True, slots=True)
class TxResult:
    """The admission outcome of a ``TxSubmitted``: answer the client. ``reason`` is None
    when accepted. Feed back nothing."""

    tx_hash: bytes
    accepted: bool
    reason: RejectReason | None
    message: str


class Offence(StrEnum):
    """How a peer broke the protocol (for scoring and banning)."""

    MALFORMED = "malformed"
    """Bytes that do not decode, an unknown topic or a message on the wrong topic."""
    OVERSIZE = "oversize"
    """A message above the size limit of its topic."""
    WRONG_CHAIN = "wrong_chain"
    """A message signed for another chain."""
    INVALID_SIGNATURE = "invalid_signature"
    """A forged or corrupt signature (vote, proposal, transaction, certificate)."""
    NOT_A_VALIDATOR = "not_a_validator"
    """A vote or proposal signed by a key outside the height's validator set."""
    NOT_PROPOSER = "not_proposer"
    """A proposal signed by a validator that is not the proposer of its round."""
    INVALID_BLOCK = "invalid_block"
    """A committed block (block sync) that breaks the chain rules or its certificate."""
    UNSOLICITED = "unsolicited"
    """Blocks nobody asked for."""


@dataclass(frozen=True, slots=True)
class PeerMisbehaved:
    """``peer`` sent something no honest peer sends; it changed nothing here. The shell may
    score the peer down or ban it. Feed back nothing."""

    peer: PeerId
    offence: Offence
    reason: str


@dataclass(frozen=True, slots=True)
class EquivocationDetected:
    """A validator signed two conflicting votes; ``evidence`` proves it to anyone holding
    the validator set of its height. Report it (metrics, logs); the core itself puts it into
    a block, and once committed the block's events carry ``validator.equivocated`` for
    governance. Feed back nothing."""

    evidence: DuplicateVoteEvidence


Action: TypeAlias = (
    Broadcast
    | SendTo
    | SetTimer
    | RequestBlocks
    | BlockCommitted
    | TxResult
    | PeerMisbehaved
    | EquivocationDetected
)

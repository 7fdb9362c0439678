"""Gossip topics of the chain core and the checked decoding of what arrives on them.

Topics (fixed, valid under ``node.ports.is_valid_topic``):

- ``consensus``: ``Proposal``, ``Block`` and ``Vote`` messages. A proposer broadcasts the
  proposed block first, then the signed proposal naming its id (two messages; per-peer FIFO
  normally delivers them in that order, and the receiver buffers either until the other
  arrives, within limits).
- ``txs``: ``TxBatch`` messages, many transactions each.
- ``status``: ``Status`` messages (height and last block id), broadcast periodically and
  sent directly to a newly seen peer.

Every message uses the ``node.codec`` envelope. ``decode_inbound`` checks the size limit of
the topic before decoding and that the message kind belongs to the topic; a violation raises
``PeerFault``, which the core turns into a ``PeerMisbehaved`` action.
"""

from __future__ import annotations

from typing import Final

from node.chain.actions import Offence
from node.codec import (
    ENVELOPE_OVERHEAD_BYTES,
    MAX_TX_BATCH_BYTES,
    STATUS_CODEC,
    Message,
    MessageKind,
    decode_message,
    message_kind,
)
from node.errors import DecodeError, OversizeError

TOPIC_CONSENSUS: Final = "consensus"
TOPIC_TXS: Final = "txs"
TOPIC_STATUS: Final = "status"
TOPICS: Final = (TOPIC_CONSENSUS, TOPIC_TXS, TOPIC_STATUS)
"""Every topic a node subscribes to."""

_KINDS_BY_TOPIC: Final = {
    TOPIC_CONSENSUS: frozenset(
        {
            MessageKind.PROPOSAL,
            MessageKind.VOTE,
            MessageKind.BLOCK,
            MessageKind.COMPACT_BLOCK,
            MessageKind.BLOCK_TXS_REQUEST,
            MessageKind.BLOCK_TXS,
        }
    ),
    TOPIC_TXS: frozenset({MessageKind.TX_BATCH}),
    TOPIC_STATUS: frozenset({MessageKind.STATUS}),
}


class PeerFault(Exception):
    """A peer's message broke the protocol: ``offence`` and a readable ``reason``."""

    def __init__(self, offence: Offence, reason: str) -> None:
        super().__init__(f"{offence.value}: {reason}")
        self.offence = offence
        self.reason = reason


def topic_limit_bytes(topic: str, max_block_bytes: int) -> int:
    """The largest message accepted on ``topic``, in bytes (``PeerFault`` if unknown)."""
    if topic == TOPIC_CONSENSUS:
        return max_block_bytes + ENVELOPE_OVERHEAD_BYTES
    if topic == TOPIC_TXS:
        return MAX_TX_BATCH_BYTES + ENVELOPE_OVERHEAD_BYTES
    if topic == TOPIC_STATUS:
        return STATUS_CODEC.max_bytes + ENVELOPE_OVERHEAD_BYTES
    raise PeerFault(Offence.MALFORMED, f"unknown topic {topic[:64]!r}")


def decode_inbound(topic: str, data: bytes, max_block_bytes: int) -> Message:
    """The message in ``data`` received on ``topic``; ``PeerFault`` for anything else."""
    limit = topic_limit_bytes(topic, max_block_bytes)
    if type(data) is not bytes:
        raise PeerFault(Offence.MALFORMED, f"data must be bytes, not {type(data).__name__}")
    if len(data) > limit:
        raise PeerFault(Offence.OVERSIZE, f"{len(data)} bytes on {topic!r} (limit {limit})")
    try:
        message = decode_message(data)
    except OversizeError as exc:
        raise PeerFault(Offence.OVERSIZE, str(exc)) from exc
    except DecodeError as exc:
        raise PeerFault(Offence.MALFORMED, str(exc)) from exc
    kind = message_kind(message)
    if kind not in _KINDS_BY_TOPIC[topic]:
        raise PeerFault(Offence.MALFORMED, f"a {kind.name} message on topic {topic!r}")
    return message

"""Payload formats inside frames and gossip messages, sans-I/O.

- Direct message (``/bighealth/direct/1``, one frame each): ``u8 topic length || topic ||
  data``; the topic obeys ``node.ports.is_valid_topic``.
- Response (every request/response protocol): ``u8 status || body``; status ``OK`` carries
  the handler's bytes, ``ERROR`` and ``BUSY`` a short UTF-8 reason.
- Gossip envelope (every gossipsub message we publish): ``u8 version || 8-byte epoch ||
  u64 sequence || data``. The epoch is drawn when a node starts and the sequence counts that
  node's messages per topic, so a receiver can put one publisher's messages back in order
  (py-libp2p hands validated messages over from concurrent tasks) and tell a restart from a
  replay.

Decoding raises ``MalformedMessageError`` for anything a well-behaved peer never sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from node.adapters.errors import MalformedMessageError
from node.ports import MAX_TOPIC_CHARS, is_valid_topic

MAX_REASON_BYTES: Final = 256  # the error text a peer may send us
GOSSIP_ENVELOPE_VERSION: Final = 1
EPOCH_BYTES: Final = 8
_SEQUENCE_BYTES: Final = 8
GOSSIP_HEADER_BYTES: Final = 1 + EPOCH_BYTES + _SEQUENCE_BYTES
MAX_SEQUENCE: Final = (1 << 64) - 1
DIRECT_OVERHEAD_BYTES: Final = 1 + MAX_TOPIC_CHARS  # the most a direct frame adds to data
RESPONSE_OVERHEAD_BYTES: Final = 1


# -- direct messages ------------------------------------------------------------------------


def encode_direct(topic: str, data: bytes) -> bytes:
    """The payload of one direct-message frame (``topic`` must already be valid)."""
    raw_topic = topic.encode("ascii")
    return bytes([len(raw_topic)]) + raw_topic + data


def decode_direct(payload: bytes) -> tuple[str, bytes]:
    """``(topic, data)`` of a direct-message frame."""
    if not payload:
        raise MalformedMessageError("empty direct message")
    topic_end = 1 + payload[0]
    if len(payload) < topic_end:
        raise MalformedMessageError("direct message shorter than its topic")
    try:
        topic = payload[1:topic_end].decode("ascii")
    except UnicodeDecodeError:
        raise MalformedMessageError("direct message topic is not ASCII") from None
    if not is_valid_topic(topic):
        raise MalformedMessageError(f"direct message has an invalid topic {topic!r}")
    return topic, payload[topic_end:]


# -- responses ------------------------------------------------------------------------------


class ResponseStatus(IntEnum):
    """The first byte of a response."""

    OK = 0
    ERROR = 1
    BUSY = 2


@dataclass(frozen=True, slots=True)
class Response:
    """A decoded response: ``body`` for ``OK``, ``reason`` otherwise."""

    status: ResponseStatus
    body: bytes = b""
    reason: str = ""


def encode_ok(body: bytes) -> bytes:
    """A successful response carrying ``body``."""
    return bytes([ResponseStatus.OK]) + body


def encode_failure(status: ResponseStatus, reason: str) -> bytes:
    """An ``ERROR`` or ``BUSY`` response; the reason is cut to ``MAX_REASON_BYTES``."""
    if status is ResponseStatus.OK:
        raise ValueError("a failure response needs the ERROR or BUSY status")
    raw = reason.encode("utf-8", errors="replace")[:MAX_REASON_BYTES]
    return bytes([status]) + raw


def decode_response(payload: bytes) -> Response:
    """The status and body or reason of a response frame."""
    if not payload:
        raise MalformedMessageError("empty response")
    try:
        status = ResponseStatus(payload[0])
    except ValueError:
        raise MalformedMessageError(f"unknown response status {payload[0]}") from None
    if status is ResponseStatus.OK:
        return Response(status, body=payload[1:])
    if len(payload) - 1 > MAX_REASON_BYTES:
        raise MalformedMessageError(f"error reason longer than {MAX_REASON_BYTES} bytes")
    # The text is the peer's: shown to operators, never trusted, so make it printable.
    reason = payload[1:].decode("utf-8", errors="replace")
    return Response(status, reason="".join(c if c.isprintable() else "?" for c in reason))


# -- gossip envelope ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GossipEnvelope:
    """One gossip message as its publisher wrapped it."""

    epoch: bytes
    sequence: int
    data: bytes


def encode_gossip(epoch: bytes, sequence: int, data: bytes) -> bytes:
    """Wrap ``data`` for publishing."""
    if len(epoch) != EPOCH_BYTES:
        raise ValueError(f"an epoch is {EPOCH_BYTES} bytes")
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"sequence out of range: {sequence}")
    return (
        bytes([GOSSIP_ENVELOPE_VERSION]) + epoch + sequence.to_bytes(_SEQUENCE_BYTES, "big") + data
    )


def decode_gossip(payload: bytes) -> GossipEnvelope:
    """Unwrap a gossip message."""
    if len(payload) < GOSSIP_HEADER_BYTES:
        raise MalformedMessageError("gossip message shorter than its envelope")
    if payload[0] != GOSSIP_ENVELOPE_VERSION:
        raise MalformedMessageError(f"unknown gossip envelope version {payload[0]}")
    epoch = payload[1 : 1 + EPOCH_BYTES]
    sequence = int.from_bytes(payload[1 + EPOCH_BYTES : GOSSIP_HEADER_BYTES], "big")
    return GossipEnvelope(epoch, sequence, payload[GOSSIP_HEADER_BYTES:])

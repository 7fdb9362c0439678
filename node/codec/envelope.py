"""The network envelope: every message travels as ``[tag, body]`` (``MessageKind``), and
committed blocks keep the bytes they were received or built as."""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Final, cast

from node.codec.limits import ENVELOPE_OVERHEAD_BYTES, MAX_MESSAGE_BYTES
from node.codec.schema import (
    StructCodec,
    _as_bytes,
    _pack,
    _require_canonical,
    _show,
    _unpack,
)
from node.codec.schemas import (
    BLOCK_CODEC,
    BLOCK_REQUEST_CODEC,
    BLOCK_TXS_CODEC,
    BLOCK_TXS_REQUEST_CODEC,
    COMMIT_CERTIFICATE_CODEC,
    COMMITTED_BLOCK_CODEC,
    COMPACT_BLOCK_CODEC,
    PROPOSAL_CODEC,
    STATUS_CODEC,
    TX_BATCH_CODEC,
    VOTE_CODEC,
)
from node.errors import EncodeError, OversizeError, SchemaError
from node.types import (
    Block,
    BlockRequest,
    BlockTxs,
    BlockTxsRequest,
    CommitCertificate,
    CommittedBlock,
    CompactBlock,
    Proposal,
    Status,
    TxBatch,
    Vote,
)


class MessageKind(IntEnum):
    """The tag of a network message: the first item of its ``[tag, body]`` envelope."""

    TX_BATCH = 1
    PROPOSAL = 2
    VOTE = 3
    BLOCK = 4
    STATUS = 5
    BLOCK_REQUEST = 6
    COMMITTED_BLOCK = 7
    COMPACT_BLOCK = 8
    BLOCK_TXS_REQUEST = 9
    BLOCK_TXS = 10


Message = (
    TxBatch
    | Proposal
    | Vote
    | Block
    | Status
    | BlockRequest
    | CommittedBlock
    | CompactBlock
    | BlockTxsRequest
    | BlockTxs
)

_MESSAGE_CODECS: dict[MessageKind, StructCodec[Any]] = {
    MessageKind.TX_BATCH: TX_BATCH_CODEC,
    MessageKind.PROPOSAL: PROPOSAL_CODEC,
    MessageKind.VOTE: VOTE_CODEC,
    MessageKind.BLOCK: BLOCK_CODEC,
    MessageKind.STATUS: STATUS_CODEC,
    MessageKind.BLOCK_REQUEST: BLOCK_REQUEST_CODEC,
    MessageKind.COMMITTED_BLOCK: COMMITTED_BLOCK_CODEC,
    MessageKind.COMPACT_BLOCK: COMPACT_BLOCK_CODEC,
    MessageKind.BLOCK_TXS_REQUEST: BLOCK_TXS_REQUEST_CODEC,
    MessageKind.BLOCK_TXS: BLOCK_TXS_CODEC,
}
_MESSAGE_KINDS: dict[type, MessageKind] = {
    codec.cls: kind for kind, codec in _MESSAGE_CODECS.items()
}


def message_kind(message: Message) -> MessageKind:
    """The envelope tag of ``message`` (``EncodeError`` for a type that is not a message)."""
    kind = _MESSAGE_KINDS.get(type(message))
    if kind is None:
        raise EncodeError(f"{type(message).__name__} is not a network message type")
    return kind


def encode_message(message: Message) -> bytes:
    """The canonical ``[tag, body]`` envelope of a network message."""
    kind = message_kind(message)
    codec = _MESSAGE_CODECS[kind]
    data = _pack([int(kind), codec.to_wire(message)])
    if len(data) > codec.max_bytes + ENVELOPE_OVERHEAD_BYTES:
        raise EncodeError(f"{codec.name} message of {len(data)} bytes exceeds its limit")
    return data


# A ``[tag, body]`` envelope starts with a fixarray header of 2 and a one-byte (fixint) tag.
_ENVELOPE_PREFIX_BYTES: Final = 2
_PAIR_HEADER: Final = b"\x92"


def message_body(data: bytes) -> bytes:
    """The canonical encoding of the body of an envelope ``decode_message`` accepted (e.g.
    the block of a ``BLOCK`` message), without encoding anything again."""
    if len(data) <= _ENVELOPE_PREFIX_BYTES or data[:1] != _PAIR_HEADER or data[1] >= 0x80:
        raise ValueError("not a [tag, body] envelope with a one-byte tag")
    return data[_ENVELOPE_PREFIX_BYTES:]


def block_message(block_bytes: bytes) -> bytes:
    """The ``BLOCK`` message of a block, from the block's canonical encoding."""
    data = _PAIR_HEADER + bytes([MessageKind.BLOCK]) + block_bytes
    if len(data) > BLOCK_CODEC.max_bytes + ENVELOPE_OVERHEAD_BYTES:
        raise EncodeError(f"Block message of {len(data)} bytes exceeds its limit")
    return data


def committed_block_bytes(block_bytes: bytes, certificate: CommitCertificate) -> bytes:
    """The canonical encoding of ``CommittedBlock(block, certificate)``, from the block's
    canonical encoding (only the certificate is encoded)."""
    data = _PAIR_HEADER + block_bytes + COMMIT_CERTIFICATE_CODEC.encode(certificate)
    if len(data) > COMMITTED_BLOCK_CODEC.max_bytes:
        raise EncodeError(f"CommittedBlock: {len(data)} bytes exceeds its limit")
    return data


def decode_committed_block(data: bytes) -> tuple[CommittedBlock, bytes]:
    """A ``CommittedBlock`` and the canonical encoding of its block (``DecodeError`` on bad
    input). The input is canonical once decoded, so the block's bytes are what lies between
    the pair header and the certificate's own canonical encoding."""
    data = _as_bytes(data)
    committed = COMMITTED_BLOCK_CODEC.decode(data)
    certificate_bytes = len(COMMIT_CERTIFICATE_CODEC.encode(committed.commit))
    return committed, data[len(_PAIR_HEADER) : len(data) - certificate_bytes]


def decode_message(data: bytes) -> Message:
    """Decode any network message in one call; every bad input raises a ``DecodeError``.

    The size limit is the one of the message's own kind (a vote cannot be 4 MiB), checked as
    soon as the tag is known.
    """
    data = _as_bytes(data)
    raw = _unpack(data, MAX_MESSAGE_BYTES, "message")
    if type(raw) is not list or len(raw) != 2:
        raise SchemaError("message: expected a [tag, body] array")
    tag = raw[0]
    if type(tag) is not int or tag not in _MESSAGE_CODECS:
        raise SchemaError(f"message: unknown message tag {_show(tag)}")
    codec = _MESSAGE_CODECS[MessageKind(tag)]
    if len(data) > codec.max_bytes + ENVELOPE_OVERHEAD_BYTES:
        raise OversizeError(f"message: a {codec.name} of {len(data)} bytes exceeds its limit")
    message = codec.from_wire(raw[1])
    _require_canonical(raw, data, "message")
    return cast(Message, message)

"""The schema of every chain type that is hashed, signed, stored or sent, and the generic
``encode``/``decode`` over them."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from consensus.errors import InvalidEvidenceError
from node.codec.limits import (
    ATTRIBUTE_KEY_PATTERN,
    CHAIN_ID_PATTERN,
    EVENT_NAME_PATTERN,
    KIB,
    KIND_PATTERN,
    MAX_ATTRIBUTE_VALUE_CHARS,
    MAX_BLOCK_BYTES,
    MAX_BLOCK_TXS_REQUEST_BYTES,
    MAX_CERTIFICATE_BYTES,
    MAX_CHAIN_ID_CHARS,
    MAX_COMPACT_BLOCK_BYTES,
    MAX_EVENT_ATTRIBUTES,
    MAX_EVENTS_PER_TX,
    MAX_EVIDENCE_BYTES,
    MAX_EVIDENCE_PER_BLOCK,
    MAX_HEADER_BYTES,
    MAX_LOG_CHARS,
    MAX_PROOF_PATH_HASHES,
    MAX_RECEIPT_BYTES,
    MAX_STATE_KEY_BYTES,
    MAX_STATE_PROOF_BYTES,
    MAX_STATE_VALUE_BYTES,
    MAX_TX_BATCH_BYTES,
    MAX_TX_BYTES,
    MAX_TX_PRIORITY,
    MAX_TXS_PER_BATCH,
    MAX_TXS_PER_BLOCK,
    MAX_VALIDATORS,
    MAX_VOTE_BYTES,
    U32_MAX,
)
from node.codec.schema import (
    ArrayOf,
    Bytes,
    EnumOf,
    Int,
    Kind,
    Maybe,
    Nested,
    StructCodec,
    Text,
    UInt,
)
from node.errors import EncodeError
from node.types import (
    DIGEST_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    Block,
    BlockHeader,
    BlockRequest,
    BlockTxs,
    BlockTxsRequest,
    CommitCertificate,
    CommitSignature,
    CommittedBlock,
    CompactBlock,
    DuplicateVoteEvidence,
    Event,
    EventAttribute,
    LeafProof,
    Proposal,
    ResultCode,
    StateProof,
    Status,
    Transaction,
    TxBatch,
    TxReceipt,
    UnsignedTransaction,
    Validator,
    Vote,
    VoteType,
)

T = TypeVar("T")


_HASH = Bytes.exactly(DIGEST_BYTES)
_PUBLIC_KEY = Bytes.exactly(PUBLIC_KEY_BYTES)
_SIGNATURE = Bytes.exactly(SIGNATURE_BYTES)
_CHAIN_ID = Text(MAX_CHAIN_ID_CHARS, CHAIN_ID_PATTERN)
_ROUND = UInt(U32_MAX)

_TX_FIELDS: list[tuple[str, Kind]] = [
    ("chain_id", _CHAIN_ID),
    ("sender", _PUBLIC_KEY),
    ("nonce", UInt()),
    ("kind", Text(65, KIND_PATTERN)),
    ("payload", Bytes(MAX_TX_BYTES)),
    ("priority", UInt(MAX_TX_PRIORITY)),
]
UNSIGNED_TX_CODEC = StructCodec(UnsignedTransaction, _TX_FIELDS, MAX_TX_BYTES)
TX_CODEC = StructCodec(Transaction, [*_TX_FIELDS, ("signature", _SIGNATURE)], MAX_TX_BYTES)

VOTE_CODEC = StructCodec(
    Vote,
    [
        ("chain_id", _CHAIN_ID),
        ("height", UInt()),
        ("round", _ROUND),
        ("vote_type", EnumOf(VoteType)),
        ("value_id", Maybe(_HASH)),
        ("validator", _PUBLIC_KEY),
        ("signature", _SIGNATURE),
    ],
    MAX_VOTE_BYTES,
)
PROPOSAL_CODEC = StructCodec(
    Proposal,
    [
        ("chain_id", _CHAIN_ID),
        ("height", UInt()),
        ("round", _ROUND),
        ("value_id", _HASH),
        ("valid_round", Int(-1, U32_MAX)),
        ("proposer", _PUBLIC_KEY),
        ("signature", _SIGNATURE),
    ],
    MAX_VOTE_BYTES,
)
EVIDENCE_CODEC = StructCodec(
    DuplicateVoteEvidence,
    [("vote_a", Nested(VOTE_CODEC)), ("vote_b", Nested(VOTE_CODEC))],
    MAX_EVIDENCE_BYTES,
    invariant_errors=(InvalidEvidenceError,),
)
COMMIT_SIGNATURE_CODEC = StructCodec(
    CommitSignature, [("validator", _PUBLIC_KEY), ("signature", _SIGNATURE)], MAX_VOTE_BYTES
)
COMMIT_CERTIFICATE_CODEC = StructCodec(
    CommitCertificate,
    [
        ("chain_id", _CHAIN_ID),
        ("height", UInt()),
        ("round", _ROUND),
        ("value_id", _HASH),
        ("signatures", ArrayOf(Nested(COMMIT_SIGNATURE_CODEC), MAX_VALIDATORS)),
    ],
    MAX_CERTIFICATE_BYTES,
)
VALIDATOR_CODEC = StructCodec(
    Validator, [("public_key", _PUBLIC_KEY), ("voting_power", UInt())], MAX_VOTE_BYTES
)
HEADER_CODEC = StructCodec(
    BlockHeader,
    [
        ("chain_id", _CHAIN_ID),
        ("height", UInt()),
        ("time_ms", UInt()),
        ("previous_block_id", _HASH),
        ("tx_root", _HASH),
        ("app_state_root", _HASH),
        ("validator_set_hash", _HASH),
        ("proposer", _PUBLIC_KEY),
        ("last_commit", Maybe(Nested(COMMIT_CERTIFICATE_CODEC))),
        ("evidence_root", _HASH),
    ],
    MAX_HEADER_BYTES,
)
BLOCK_CODEC = StructCodec(
    Block,
    [
        ("header", Nested(HEADER_CODEC)),
        ("txs", ArrayOf(Bytes(MAX_TX_BYTES), MAX_TXS_PER_BLOCK)),
        ("evidence", ArrayOf(Nested(EVIDENCE_CODEC), MAX_EVIDENCE_PER_BLOCK)),
    ],
    MAX_BLOCK_BYTES,
)
ATTRIBUTE_CODEC = StructCodec(
    EventAttribute,
    [("key", Text(32, ATTRIBUTE_KEY_PATTERN)), ("value", Text(MAX_ATTRIBUTE_VALUE_CHARS))],
    4 * KIB,
)
EVENT_CODEC = StructCodec(
    Event,
    [
        ("name", Text(65, EVENT_NAME_PATTERN)),
        ("attributes", ArrayOf(Nested(ATTRIBUTE_CODEC), MAX_EVENT_ATTRIBUTES)),
    ],
    MAX_RECEIPT_BYTES,
)
RECEIPT_CODEC = StructCodec(
    TxReceipt,
    [
        ("tx_hash", _HASH),
        ("code", EnumOf(ResultCode)),
        ("log", Text(MAX_LOG_CHARS)),
        ("gas_used", UInt()),
        ("events", ArrayOf(Nested(EVENT_CODEC), MAX_EVENTS_PER_TX)),
    ],
    MAX_RECEIPT_BYTES,
)
_PATH = ArrayOf(_HASH, MAX_PROOF_PATH_HASHES)
LEAF_PROOF_CODEC = StructCodec(
    LeafProof,
    [
        ("key", Bytes(MAX_STATE_KEY_BYTES)),
        ("value", Bytes(MAX_STATE_VALUE_BYTES)),
        ("leaf_index", UInt()),
        ("path", _PATH),
    ],
    MAX_STATE_PROOF_BYTES,
)
_LEAF = Maybe(Nested(LEAF_PROOF_CODEC))
STATE_PROOF_CODEC = StructCodec(
    StateProof,
    [
        ("height", UInt()),
        ("state_root", _HASH),
        ("tree_size", UInt()),
        ("key", Bytes(MAX_STATE_KEY_BYTES)),
        ("value", Maybe(Bytes(MAX_STATE_VALUE_BYTES))),
        ("found", _LEAF),
        ("lower", _LEAF),
        ("upper", _LEAF),
    ],
    MAX_STATE_PROOF_BYTES,
)
TX_BATCH_CODEC = StructCodec(
    TxBatch, [("txs", ArrayOf(Bytes(MAX_TX_BYTES), MAX_TXS_PER_BATCH))], MAX_TX_BATCH_BYTES
)
STATUS_CODEC = StructCodec(Status, [("height", UInt()), ("last_block_id", _HASH)], 128)
BLOCK_REQUEST_CODEC = StructCodec(BlockRequest, [("height", UInt())], 16)
COMMITTED_BLOCK_CODEC = StructCodec(
    CommittedBlock,
    [("block", Nested(BLOCK_CODEC)), ("commit", Nested(COMMIT_CERTIFICATE_CODEC))],
    MAX_BLOCK_BYTES + MAX_CERTIFICATE_BYTES,
)

COMPACT_BLOCK_CODEC = StructCodec(
    CompactBlock,
    [
        ("header", Nested(HEADER_CODEC)),
        ("tx_hashes", ArrayOf(_HASH, MAX_TXS_PER_BLOCK)),
        ("evidence", ArrayOf(Nested(EVIDENCE_CODEC), MAX_EVIDENCE_PER_BLOCK)),
    ],
    MAX_COMPACT_BLOCK_BYTES,
)
_INDEXES = ArrayOf(UInt(), MAX_TXS_PER_BLOCK)
BLOCK_TXS_REQUEST_CODEC = StructCodec(
    BlockTxsRequest, [("block_id", _HASH), ("indexes", _INDEXES)], MAX_BLOCK_TXS_REQUEST_BYTES
)
BLOCK_TXS_CODEC = StructCodec(
    BlockTxs,
    [
        ("block_id", _HASH),
        ("indexes", ArrayOf(UInt(), MAX_TXS_PER_BATCH)),
        ("txs", ArrayOf(Bytes(MAX_TX_BYTES), MAX_TXS_PER_BATCH)),
    ],
    MAX_TX_BATCH_BYTES,
)

_CODECS: dict[type, StructCodec[Any]] = {
    codec.cls: codec
    for codec in (
        UNSIGNED_TX_CODEC,
        TX_CODEC,
        VOTE_CODEC,
        PROPOSAL_CODEC,
        EVIDENCE_CODEC,
        COMMIT_SIGNATURE_CODEC,
        COMMIT_CERTIFICATE_CODEC,
        VALIDATOR_CODEC,
        HEADER_CODEC,
        BLOCK_CODEC,
        ATTRIBUTE_CODEC,
        EVENT_CODEC,
        RECEIPT_CODEC,
        LEAF_PROOF_CODEC,
        STATE_PROOF_CODEC,
        TX_BATCH_CODEC,
        STATUS_CODEC,
        BLOCK_REQUEST_CODEC,
        COMMITTED_BLOCK_CODEC,
        COMPACT_BLOCK_CODEC,
        BLOCK_TXS_REQUEST_CODEC,
        BLOCK_TXS_CODEC,
    )
}


def codec_for(cls: type[T]) -> StructCodec[T]:
    """The schema of a chain type (``KeyError`` for a type without one)."""
    return cast(StructCodec[T], _CODECS[cls])


def registered_types() -> tuple[type, ...]:
    """Every type with a schema here, in a fixed order."""
    return tuple(_CODECS)


def encode(value: object) -> bytes:
    """The canonical encoding of any chain type (``EncodeError`` for anything else)."""
    codec = _CODECS.get(type(value))
    if codec is None:
        raise EncodeError(f"no schema for {type(value).__name__}")
    return codec.encode(value)


def decode(cls: type[T], data: bytes) -> T:
    """Decode a canonical encoding of ``cls`` (``DecodeError`` on any bad input)."""
    return codec_for(cls).decode(data)

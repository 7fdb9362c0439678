"""Canonical msgpack codec with a fixed schema for every type that is hashed, signed or sent.

Wire format: each dataclass is a msgpack *array* of its fields in declaration order (no maps,
so there is no key order to agree on); ints are bounded (u64 unless stated), text is UTF-8
``str``, bytes are ``bin`` (``use_bin_type=True``), optional fields are ``nil``, enums their
int value, nested dataclasses nested arrays.

Canonical: the encoder emits the shortest form msgpack has for every item, and the decoder
accepts an input only if re-encoding what it decoded gives back exactly the same bytes. So
every value has one encoding, and ``sha256(encode(x))`` is *the* hash of ``x``.

Hostile input: the size of the input is checked against the type's limit *before* parsing
(``OversizeError``), msgpack length prefixes can never exceed the input size, maps and ext
types are refused, and every field is type- and range-checked (``SchemaError``). Every failure
is a ``node.errors.DecodeError``; nothing else escapes ``decode`` for bytes input.

The schema toolkit (``StructCodec`` and the field kinds) is public so application modules
can give their transaction payloads the same guarantees.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from enum import IntEnum
from typing import Any, Final, Generic, TypeVar, cast

import msgpack

from consensus.errors import InvalidEvidenceError
from consensus.limits import MAX_CHAIN_ID_BYTES
from consensus.limits import MAX_VALIDATORS as CONSENSUS_MAX_VALIDATORS
from crypto_core import hash_leaf, merkle_root
from crypto_core.signatures import sha256, verify
from node.errors import (
    DecodeError,
    EncodeError,
    MalformedError,
    NonCanonicalError,
    OversizeError,
    SchemaError,
)
from node.ports import Signer
from node.types import (
    DIGEST_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    Block,
    BlockHeader,
    BlockRequest,
    CommitCertificate,
    CommitSignature,
    CommittedBlock,
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

# -- limits (bytes unless the name says otherwise) ------------------------------------------

U64_MAX: Final = (1 << 64) - 1
U32_MAX: Final = (1 << 32) - 1
KIB: Final = 1024
MIB: Final = 1024 * KIB

MAX_TX_BYTES: Final = 64 * KIB
MAX_BLOCK_BYTES: Final = 4 * MIB
MAX_TXS_PER_BLOCK: Final = 20_000
MAX_TX_PRIORITY: Final = 65_535
MAX_CHAIN_ID_CHARS: Final = MAX_CHAIN_ID_BYTES  # chain ids are ASCII: chars = bytes
MAX_VALIDATORS: Final = CONSENSUS_MAX_VALIDATORS
MAX_VOTE_BYTES: Final = 1 * KIB
# One evidence object: two votes inside a one-byte array header.
MAX_EVIDENCE_BYTES: Final = 2 * MAX_VOTE_BYTES + 1
# The most evidence objects any block may carry (ConsensusParams sets a chain's own limit).
MAX_EVIDENCE_PER_BLOCK: Final = 256
# One commit signature: array header (1) + bin8 key (2 + 32) + bin8 signature (2 + 64).
COMMIT_SIGNATURE_BYTES: Final = 101
MAX_CERTIFICATE_BYTES: Final = MAX_VALIDATORS * COMMIT_SIGNATURE_BYTES + 256
MAX_HEADER_BYTES: Final = MAX_CERTIFICATE_BYTES + 1 * KIB
MAX_TX_BATCH_BYTES: Final = 512 * KIB
MAX_TXS_PER_BATCH: Final = 1024
MAX_EVENTS_PER_TX: Final = 32
MAX_EVENT_ATTRIBUTES: Final = 16
MAX_ATTRIBUTE_VALUE_CHARS: Final = 256
MAX_LOG_CHARS: Final = 256
MAX_RECEIPT_BYTES: Final = 256 * KIB
MAX_STATE_KEY_BYTES: Final = 256
MAX_STATE_VALUE_BYTES: Final = 64 * KIB
MAX_PROOF_PATH_HASHES: Final = 64
MAX_STATE_PROOF_BYTES: Final = 256 * KIB
# A tag and an array header around the body of a network message.
ENVELOPE_OVERHEAD_BYTES: Final = 16
MAX_MESSAGE_BYTES: Final = MAX_BLOCK_BYTES + MAX_CERTIFICATE_BYTES + ENVELOPE_OVERHEAD_BYTES
# msgpack bin header of a byte string of up to 4 GiB: 1 type byte + up to 4 length bytes.
BIN_HEADER_MAX_BYTES: Final = 5

TX_SIGN_DOMAIN: Final = b"bighealth/tx/v1\x00"

CHAIN_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
KIND_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,31}\.[a-z][a-z0-9_]{0,31}", re.ASCII)
EVENT_NAME_PATTERN: Final = KIND_PATTERN
ATTRIBUTE_KEY_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,31}", re.ASCII)


# -- field kinds ----------------------------------------------------------------------------


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Kind:
    """How one field is checked and put on the wire; subclasses override ``accepts`` or the
    two conversions. ``to_wire`` raises ``EncodeError``, ``from_wire`` ``SchemaError``."""

    __slots__ = ("description",)

    def __init__(self, description: str) -> None:
        self.description = description

    def accepts(self, value: object) -> bool:
        """True when ``value`` is a valid Python value of this kind."""
        raise NotImplementedError

    def to_wire(self, value: object, path: str) -> object:
        """The msgpack-ready form of a valid ``value``."""
        if not self.accepts(value):
            raise EncodeError(f"{path}: expected {self.description}, got {_show(value)}")
        return value

    def from_wire(self, raw: object, path: str) -> object:
        """The Python value of a decoded wire item."""
        if not self.accepts(raw):
            raise SchemaError(f"{path}: expected {self.description}, got {_show(raw)}")
        return raw


class Int(Kind):
    """An ``int`` (never a ``bool``) within ``[low, high]``."""

    __slots__ = ("high", "low")

    def __init__(self, low: int, high: int) -> None:
        super().__init__(f"an integer in [{low}, {high}]")
        self.low = low
        self.high = high

    def accepts(self, value: object) -> bool:
        return type(value) is int and self.low <= value <= self.high


class UInt(Int):
    """An unsigned integer, ``0..high`` (u64 by default)."""

    __slots__ = ()

    def __init__(self, high: int = U64_MAX) -> None:
        super().__init__(0, high)


class Bool(Kind):
    """``True`` or ``False``."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("a bool")

    def accepts(self, value: object) -> bool:
        return type(value) is bool


class Bytes(Kind):
    """``bytes`` whose length is within ``[min_len, max_len]``."""

    __slots__ = ("max_len", "min_len")

    def __init__(self, max_len: int, min_len: int = 0) -> None:
        shape = f"{max_len}" if min_len == max_len else f"{min_len}..{max_len}"
        super().__init__(f"{shape} bytes")
        self.min_len = min_len
        self.max_len = max_len

    @classmethod
    def exactly(cls, length: int) -> Bytes:
        """Bytes of exactly ``length`` (a hash, a key, a signature)."""
        return cls(length, length)

    def accepts(self, value: object) -> bool:
        return type(value) is bytes and self.min_len <= len(value) <= self.max_len


class Text(Kind):
    """A ``str`` of at most ``max_chars`` characters, optionally matching ``pattern``."""

    __slots__ = ("max_chars", "pattern")

    def __init__(self, max_chars: int, pattern: re.Pattern[str] | None = None) -> None:
        rule = f" matching {pattern.pattern!r}" if pattern else ""
        super().__init__(f"text of at most {max_chars} characters{rule}")
        self.max_chars = max_chars
        self.pattern = pattern

    def accepts(self, value: object) -> bool:
        if type(value) is not str or len(value) > self.max_chars:
            return False
        if self.pattern is not None:
            return self.pattern.fullmatch(value) is not None
        return value.isascii() or _is_utf8_encodable(value)


def _is_utf8_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: msgpack could not pack it
        return False
    return True


E = TypeVar("E", bound=IntEnum)


class EnumOf(Kind, Generic[E]):
    """A member of an ``IntEnum``, carried as its int value."""

    __slots__ = ("enum_cls", "values")

    def __init__(self, enum_cls: type[E]) -> None:
        super().__init__(f"a {enum_cls.__name__} value")
        self.enum_cls = enum_cls
        self.values = frozenset(int(member) for member in enum_cls)

    def accepts(self, value: object) -> bool:
        return isinstance(value, self.enum_cls)

    def to_wire(self, value: object, path: str) -> object:
        return int(cast(int, super().to_wire(value, path)))

    def from_wire(self, raw: object, path: str) -> object:
        if type(raw) is not int or raw not in self.values:
            raise SchemaError(f"{path}: expected {self.description}, got {_show(raw)}")
        return self.enum_cls(raw)


class Maybe(Kind):
    """``None`` or a value of the inner kind."""

    __slots__ = ("inner",)

    def __init__(self, inner: Kind) -> None:
        super().__init__(f"nil or {inner.description}")
        self.inner = inner

    def accepts(self, value: object) -> bool:
        return value is None or self.inner.accepts(value)

    def to_wire(self, value: object, path: str) -> object:
        return None if value is None else self.inner.to_wire(value, path)

    def from_wire(self, raw: object, path: str) -> object:
        return None if raw is None else self.inner.from_wire(raw, path)


class ArrayOf(Kind):
    """A tuple of at most ``max_items`` values of the inner kind (a msgpack array)."""

    __slots__ = ("inner", "max_items")

    def __init__(self, inner: Kind, max_items: int) -> None:
        super().__init__(f"an array of at most {max_items} items of {inner.description}")
        self.inner = inner
        self.max_items = max_items

    def accepts(self, value: object) -> bool:
        return isinstance(value, tuple) and len(value) <= self.max_items

    def to_wire(self, value: object, path: str) -> object:
        if not self.accepts(value):
            raise EncodeError(f"{path}: expected {self.description}, got {_show(value)}")
        to_wire = self.inner.to_wire
        return [to_wire(item, f"{path}[{i}]") for i, item in enumerate(cast(tuple[Any], value))]

    def from_wire(self, raw: object, path: str) -> object:
        if type(raw) is not list or len(raw) > self.max_items:
            raise SchemaError(f"{path}: expected {self.description}, got {_show(raw)}")
        inner = self.inner
        # The hot path of blocks (a list of tx encodings): one pass, no per-item paths.
        if isinstance(inner, Bytes) and all(inner.accepts(item) for item in raw):
            return tuple(raw)
        from_wire = self.inner.from_wire
        return tuple(from_wire(item, f"{path}[{i}]") for i, item in enumerate(raw))


class Nested(Kind):
    """A dataclass encoded by its own ``StructCodec``."""

    __slots__ = ("codec",)

    def __init__(self, codec: StructCodec[Any]) -> None:
        super().__init__(f"a {codec.name}")
        self.codec = codec

    def accepts(self, value: object) -> bool:
        return type(value) is self.codec.cls

    def to_wire(self, value: object, path: str) -> object:
        return self.codec.to_wire(value, path)

    def from_wire(self, raw: object, path: str) -> object:
        return self.codec.from_wire(raw, path)


# -- struct codec ---------------------------------------------------------------------------


class StructCodec(Generic[T]):
    """The schema of one dataclass: its fields, in declaration order, each with a ``Kind``,
    and ``max_bytes``, the largest canonical encoding accepted or produced.

    Construction fails (``TypeError``) unless the schema names exactly the dataclass's fields
    in their declared order: a field added to a type must be added here too, or encoding would
    silently drop it. ``invariant_errors`` are the exceptions the type's own constructor
    raises for fields that fit their kinds but not each other (e.g. two votes of evidence in
    the wrong order); decoding turns them into ``SchemaError``.
    """

    __slots__ = ("cls", "field_count", "fields", "invariant_errors", "max_bytes", "name")

    def __init__(
        self,
        cls: type[T],
        fields: Sequence[tuple[str, Kind]],
        max_bytes: int,
        *,
        invariant_errors: tuple[type[Exception], ...] = (),
    ) -> None:
        declared = tuple(f.name for f in dataclasses.fields(cast(Any, cls)))
        named = tuple(name for name, _ in fields)
        if declared != named:
            raise TypeError(f"schema of {cls.__name__} names {named}, the type has {declared}")
        self.cls = cls
        self.name = cls.__name__
        self.fields = tuple(fields)
        self.field_count = len(self.fields)
        self.max_bytes = max_bytes
        self.invariant_errors = invariant_errors

    def to_wire(self, value: object, path: str | None = None) -> list[object]:
        """The msgpack-ready array of a ``value`` of this type (``EncodeError`` if invalid)."""
        path = path or self.name
        if type(value) is not self.cls:
            raise EncodeError(f"{path}: expected a {self.name}, got {_show(value)}")
        return [kind.to_wire(getattr(value, name), f"{path}.{name}") for name, kind in self.fields]

    def from_wire(self, raw: object, path: str | None = None) -> T:
        """The value of a decoded wire array (``SchemaError`` if it does not fit)."""
        path = path or self.name
        if type(raw) is not list:
            raise SchemaError(f"{path}: expected an array of {self.field_count} fields")
        if len(raw) != self.field_count:
            which = "missing" if len(raw) < self.field_count else "unknown"
            raise SchemaError(
                f"{path}: {len(raw)} fields, expected {self.field_count} ({which} fields)"
            )
        values = [
            kind.from_wire(item, f"{path}.{name}")
            for (name, kind), item in zip(self.fields, raw, strict=True)
        ]
        try:
            return self.cls(*values)
        except self.invariant_errors as exc:
            raise SchemaError(f"{path}: {exc}") from exc

    def encode(self, value: T) -> bytes:
        """The canonical encoding of ``value`` (``EncodeError`` if invalid or too large)."""
        data = _pack(self.to_wire(value))
        if len(data) > self.max_bytes:
            raise EncodeError(f"{self.name}: {len(data)} bytes exceeds {self.max_bytes} bytes")
        return data

    def decode(self, data: bytes) -> T:
        """The value of a canonical encoding; any other input raises a ``DecodeError``."""
        data = _as_bytes(data)
        raw = _unpack(data, self.max_bytes, self.name)
        value = self.from_wire(raw)
        _require_canonical(raw, data, self.name)
        return value


def _as_bytes(data: object) -> bytes:
    if type(data) is bytes:
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"can only decode bytes, not {type(data).__name__}")


def _pack(wire: object) -> bytes:
    return cast(bytes, msgpack.packb(wire, use_bin_type=True))


def _unpack(data: bytes, max_bytes: int, what: str) -> object:
    if len(data) > max_bytes:
        raise OversizeError(f"{what}: {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    if not data:
        raise MalformedError(f"{what}: empty input")
    try:
        # Length prefixes are capped at the input size, so a hostile 4 GiB prefix is refused
        # before anything is allocated; maps and ext types belong to no schema.
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=max_bytes,
            max_bin_len=max_bytes,
            max_array_len=max_bytes,
            max_map_len=0,
            max_ext_len=0,
        )
    except msgpack.exceptions.ExtraData as exc:
        raise NonCanonicalError(f"{what}: trailing bytes after the value") from exc
    except (ValueError, msgpack.exceptions.UnpackException) as exc:
        if "max_map_len" in str(exc) or "max_ext_len" in str(exc):
            raise SchemaError(f"{what}: maps and ext types are not part of any schema") from exc
        detail = str(exc) or type(exc).__name__
        raise MalformedError(f"{what}: not well-formed msgpack ({detail})") from exc


def _require_canonical(raw: object, data: bytes, what: str) -> None:
    if _pack(raw) != data:
        raise NonCanonicalError(f"{what}: not the canonical (shortest) msgpack encoding")


# -- the schemas ----------------------------------------------------------------------------

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


# -- network envelope -----------------------------------------------------------------------


class MessageKind(IntEnum):
    """The tag of a network message: the first item of its ``[tag, body]`` envelope."""

    TX_BATCH = 1
    PROPOSAL = 2
    VOTE = 3
    BLOCK = 4
    STATUS = 5
    BLOCK_REQUEST = 6
    COMMITTED_BLOCK = 7


Message = TxBatch | Proposal | Vote | Block | Status | BlockRequest | CommittedBlock

_MESSAGE_CODECS: dict[MessageKind, StructCodec[Any]] = {
    MessageKind.TX_BATCH: TX_BATCH_CODEC,
    MessageKind.PROPOSAL: PROPOSAL_CODEC,
    MessageKind.VOTE: VOTE_CODEC,
    MessageKind.BLOCK: BLOCK_CODEC,
    MessageKind.STATUS: STATUS_CODEC,
    MessageKind.BLOCK_REQUEST: BLOCK_REQUEST_CODEC,
    MessageKind.COMMITTED_BLOCK: COMMITTED_BLOCK_CODEC,
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
    message = codec.from_wire(raw[1], codec.name)
    _require_canonical(raw, data, "message")
    return cast(Message, message)


# -- transactions, blocks -------------------------------------------------------------------


def tx_sign_bytes(tx: UnsignedTransaction | Transaction) -> bytes:
    """What the sender signs: ``TX_SIGN_DOMAIN`` + the canonical unsigned transaction.

    The domain tag keeps a transaction signature from ever being valid as a consensus vote or
    any other signed message of the project.
    """
    unsigned = tx.unsigned if isinstance(tx, Transaction) else tx
    return TX_SIGN_DOMAIN + UNSIGNED_TX_CODEC.encode(unsigned)


def sign_transaction(unsigned: UnsignedTransaction, signer: Signer) -> Transaction:
    """Sign ``unsigned`` with ``signer``, whose public key must be the sender's."""
    if signer.public_key != unsigned.sender:
        raise ValueError("the signer's public key is not the transaction's sender")
    signature = signer.sign(tx_sign_bytes(unsigned))
    return Transaction(
        chain_id=unsigned.chain_id,
        sender=unsigned.sender,
        nonce=unsigned.nonce,
        kind=unsigned.kind,
        payload=unsigned.payload,
        priority=unsigned.priority,
        signature=signature,
    )


def tx_signature_ok(tx: Transaction) -> bool:
    """True iff ``tx.signature`` is the sender's Ed25519 signature of ``tx_sign_bytes(tx)``."""
    return verify(tx.sender, tx_sign_bytes(tx), tx.signature)


def tx_hash(tx_bytes: bytes) -> bytes:
    """The id of a transaction: SHA-256 of its canonical bytes."""
    return sha256(tx_bytes)


def tx_root(txs: Sequence[bytes]) -> bytes:
    """RFC 9162 Merkle root over ``hash_leaf`` of each transaction's bytes."""
    return cast(bytes, merkle_root([hash_leaf(tx) for tx in txs]))


def evidence_root(evidence: Sequence[DuplicateVoteEvidence]) -> bytes:
    """RFC 9162 Merkle root over ``hash_leaf`` of each evidence object's canonical bytes
    (a block's ``evidence_root``; ``EMPTY_EVIDENCE_ROOT`` for none)."""
    return cast(bytes, merkle_root([hash_leaf(EVIDENCE_CODEC.encode(e)) for e in evidence]))


def block_id(header: BlockHeader) -> bytes:
    """The id of a block: SHA-256 of its header's canonical bytes."""
    return sha256(HEADER_CODEC.encode(header))


def block_tx_bytes(tx_bytes_len: int) -> int:
    """Bytes a transaction of ``tx_bytes_len`` takes inside a block's tx list."""
    return tx_bytes_len + BIN_HEADER_MAX_BYTES


__all__ = [
    "MAX_BLOCK_BYTES",
    "MAX_EVIDENCE_BYTES",
    "MAX_EVIDENCE_PER_BLOCK",
    "MAX_MESSAGE_BYTES",
    "MAX_TXS_PER_BLOCK",
    "MAX_TX_BYTES",
    "ArrayOf",
    "Bool",
    "Bytes",
    "DecodeError",
    "EnumOf",
    "Int",
    "Kind",
    "Maybe",
    "Message",
    "MessageKind",
    "Nested",
    "StructCodec",
    "Text",
    "UInt",
    "block_id",
    "block_message",
    "codec_for",
    "committed_block_bytes",
    "decode",
    "decode_committed_block",
    "decode_message",
    "encode",
    "encode_message",
    "evidence_root",
    "message_body",
    "message_kind",
    "registered_types",
    "sign_transaction",
    "tx_hash",
    "tx_root",
    "tx_sign_bytes",
    "tx_signature_ok",
]

"""The consensus input log (write-ahead log) of the current height, through ``Storage``.

``ConsensusCore`` is deterministic, so the inputs it was given since the latest
``StartHeight`` rebuild its exact state (``ConsensusCore.replay``). The log keeps them:

- every accepted input is appended in memory (``append``);
- a ``Persist`` effect makes the log durable *with* the signing record in one synced write
  batch (``flush``) before the sign effect that follows it is carried out — so a node only
  ever signs what its durable log explains, and a restarted node never signs anything
  conflicting;
- inputs after the last ``Persist`` may be lost by a crash: they produced no signature, so
  losing them is like losing the messages.

The log of a height is complete from that height's own ``StartHeight``: the chain core never
hands consensus an input of a height it has not started (such messages wait in
``node.chain.future`` and enter after the ``StartHeight``), so the consensus core's own
next-height buffer stays empty and nothing that shaped a height is logged under the previous
one.

Records are ``[tag, fields]`` msgpack arrays under ``wal/<height u64><sequence u32>``;
``StartHeight`` is logged as its height only (the validator set is the schedule's). The log of
a height is deleted in the same atomic batch that commits the height.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final, TypeAlias, cast

import msgpack

from consensus.inputs import (
    CommitCertificateReceived,
    Input,
    ProposalReceived,
    ProposeValue,
    StartHeight,
    TimeoutElapsed,
    ValueValidity,
    VoteReceived,
)
from consensus.sign_guard import SigningRecord, SigningStep
from consensus.timeouts import TimeoutKind
from node.chain.errors import StorageMismatchError
from node.codec import (
    COMMIT_CERTIFICATE_CODEC,
    PROPOSAL_CODEC,
    U32_MAX,
    VOTE_CODEC,
    Bool,
    Bytes,
    EnumOf,
    Maybe,
    Nested,
    StructCodec,
    UInt,
)
from node.errors import DecodeError, StorageError
from node.ports import Delete, Put, Storage, WriteOp

WAL_PREFIX: Final = b"wal/"
SIGNING_RECORD_KEY: Final = b"sign/last"
MAX_RECORD_BYTES: Final = 2 * 1024 * 1024
"""Largest log record (a commit certificate of the largest validator set fits)."""
_HEIGHT_SEQUENCE: Final = struct.Struct(">QI")


@dataclass(frozen=True, slots=True)
class LoggedStart:
    """A logged ``StartHeight``: the set is rebuilt from the validator schedule."""

    height: int


LogRecord: TypeAlias = Input | LoggedStart
"""What a log record decodes to."""


class _Tag(IntEnum):
    START = 1
    PROPOSAL = 2
    VALIDITY = 3
    VOTE = 4
    PROPOSE_VALUE = 5
    TIMEOUT = 6
    CERTIFICATE = 7


_HASH = Bytes.exactly(32)
_ROUND = UInt(U32_MAX)
_CODECS: Final[dict[_Tag, StructCodec[Any]]] = {
    _Tag.START: StructCodec(LoggedStart, [("height", UInt())], 32),
    _Tag.PROPOSAL: StructCodec(
        ProposalReceived,
        [("proposal", Nested(PROPOSAL_CODEC)), ("value_valid", Maybe(Bool()))],
        2048,
    ),
    _Tag.VALIDITY: StructCodec(
        ValueValidity, [("height", UInt()), ("value_id", _HASH), ("valid", Bool())], 128
    ),
    _Tag.VOTE: StructCodec(VoteReceived, [("vote", Nested(VOTE_CODEC))], 2048),
    _Tag.PROPOSE_VALUE: StructCodec(
        ProposeValue, [("height", UInt()), ("round", _ROUND), ("value_id", _HASH)], 128
    ),
    _Tag.TIMEOUT: StructCodec(
        TimeoutElapsed,
        [("kind", EnumOf(TimeoutKind)), ("height", UInt()), ("round", _ROUND)],
        64,
    ),
    _Tag.CERTIFICATE: StructCodec(
        CommitCertificateReceived,
        [("certificate", Nested(COMMIT_CERTIFICATE_CODEC))],
        MAX_RECORD_BYTES,
    ),
}
_TAG_OF: Final = {codec.cls: tag for tag, codec in _CODECS.items()}
_TAGS: Final = frozenset(int(tag) for tag in _Tag)
SIGNING_RECORD_CODEC: Final = StructCodec(
    SigningRecord,
    [
        ("height", UInt()),
        ("round", _ROUND),
        ("step", EnumOf(SigningStep)),
        ("sign_bytes", Bytes(1024)),
    ],
    2048,
)


def encode_record(event: Input) -> bytes:
    """The log record of a consensus input."""
    record: object = LoggedStart(event.height) if isinstance(event, StartHeight) else event
    tag = _TAG_OF[type(record)]
    return cast(bytes, msgpack.packb([int(tag), _CODECS[tag].to_wire(record)]))


def decode_record(data: bytes) -> LogRecord:
    """A log record back (``StorageMismatchError`` if it is not one this module wrote)."""
    try:
        raw = msgpack.unpackb(data, raw=False, max_map_len=0, max_ext_len=0)
        if type(raw) is not list or len(raw) != 2 or type(raw[0]) is not int or raw[0] not in _TAGS:
            raise StorageMismatchError("a consensus log record has no known tag")
        return cast(LogRecord, _CODECS[_Tag(raw[0])].from_wire(raw[1]))
    except (DecodeError, ValueError, msgpack.exceptions.UnpackException) as exc:
        raise StorageMismatchError(f"corrupt consensus log record: {exc}") from exc


def wal_key(height: int, sequence: int) -> bytes:
    """The storage key of record ``sequence`` of ``height``."""
    return WAL_PREFIX + _HEIGHT_SEQUENCE.pack(height, sequence)


def load_log(storage: Storage, height: int) -> list[bytes]:
    """The durable records of ``height``, in order."""
    prefix = WAL_PREFIX + height.to_bytes(8, "big")
    return [value for _, value in storage.iterate_prefix(prefix)]


def stale_log_ops(storage: Storage, height: int) -> list[WriteOp]:
    """Deletions of every record of a height other than ``height`` (left by nothing we
    know of, but a log must never be replayed into the wrong height)."""
    keep = WAL_PREFIX + height.to_bytes(8, "big")
    return [
        Delete(key) for key, _ in storage.iterate_prefix(WAL_PREFIX) if not key.startswith(keep)
    ]


def load_signing_record(storage: Storage) -> SigningRecord | None:
    """The record of the latest signature made durable, if any."""
    stored = storage.get(SIGNING_RECORD_KEY)
    if stored is None:
        return None
    try:
        return SIGNING_RECORD_CODEC.decode(stored)
    except DecodeError as exc:
        raise StorageMismatchError(f"corrupt signing record: {exc}") from exc


class ConsensusLog:
    """The log of one height: durable records in storage, newer ones pending in memory."""

    __slots__ = (
        "_durable_bytes",
        "_durable_count",
        "_enabled",
        "_height",
        "_max_bytes",
        "_overflowed",
        "_pending",
        "_pending_bytes",
        "_storage",
        "refused_flushes",
    )

    def __init__(
        self,
        storage: Storage,
        height: int,
        max_bytes: int,
        durable: Sequence[bytes] = (),
        *,
        enabled: bool = True,
    ) -> None:
        """The log of ``height`` whose durable records are ``durable``; at most
        ``max_bytes`` of records are kept for one height, in memory and storage together.
        A disabled log (a node without a key, which never signs) keeps nothing."""
        self._storage = storage
        self._height = height
        self._max_bytes = max_bytes
        self._enabled = enabled
        self._durable_count = len(durable)
        self._durable_bytes = sum(len(record) for record in durable)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._overflowed = False
        self.refused_flushes = 0
        """Flushes refused (log over its limit or storage full): signatures withheld."""

    @property
    def height(self) -> int:
        """The height whose inputs are logged."""
        return self._height

    @property
    def durable_count(self) -> int:
        """Records already durable for this height."""
        return self._durable_count

    def reset(self, height: int) -> None:
        """Start logging ``height`` (after its predecessor's records were deleted)."""
        self._height = height
        self._durable_count = 0
        self._durable_bytes = 0
        self._pending.clear()
        self._pending_bytes = 0
        self._overflowed = False

    def append(self, record: bytes) -> None:
        """Log one accepted input (durable at the next ``flush``). Past the height's limit
        the log stops growing and refuses every later flush: a gap in the log must never
        explain a signature."""
        if not self._enabled or self._overflowed:
            return
        if self._durable_bytes + self._pending_bytes + len(record) > self._max_bytes:
            self._overflowed = True
            return
        self._pending.append(record)
        self._pending_bytes += len(record)

    def flush(self, signing_record: SigningRecord) -> bool:
        """Write the pending records and ``signing_record`` in one synced batch.

        False (nothing written) if the log is disabled or overflowed, or the storage refuses
        the write: the caller must then not carry out the signature it protects.
        """
        if not self._enabled or self._overflowed:
            self.refused_flushes += 1
            return False
        added_bytes = self._pending_bytes
        ops: list[WriteOp] = [
            Put(wal_key(self._height, self._durable_count + i), record)
            for i, record in enumerate(self._pending)
        ]
        ops.append(Put(SIGNING_RECORD_KEY, SIGNING_RECORD_CODEC.encode(signing_record)))
        try:
            self._storage.write_batch(ops, sync=True)
        except StorageError:
            self.refused_flushes += 1
            return False
        self._durable_count += len(self._pending)
        self._durable_bytes += added_bytes
        self._pending.clear()
        self._pending_bytes = 0
        return True

    def delete_ops(self) -> list[WriteOp]:
        """Deletions of this height's durable records (for the batch that commits it)."""
        return [Delete(wal_key(self._height, i)) for i in range(self._durable_count)]

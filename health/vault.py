"""The vault: ciphertexts of health records and their wrapped keys, kept by a custodian.

A custodian's node keeps the blobs of the records it is named custodian of in its own
``Storage`` (LevelDB at ``HOME/vault``, opened by the composition root). A blob arrives
**pending** (uploaded before or around its ``records.commit``), becomes **stored** when the
commitment is committed with the blob's SHA-256 and size, and is dropped when its time
(``pending_ttl_ms``) runs out first. The vault never holds a key that opens a record: only
data keys wrapped for their readers.

Layout (every key under ``v/``):

- ``v/m/<record>`` -> ``RecordMeta``: the commitment fields, the author's signature, pending
  or stored, the pending blob's expiry;
- ``v/c/<record>`` -> the ciphertext;
- ``v/k/<record><recipient>`` -> the data key wrapped for ``recipient``;
- ``v/e/<u64 expires_ms><record>`` -> empty: pending blobs in expiry order, so
  ``expire_pending`` is one bounded range scan from the start;
- ``v/o/<owner><record>`` -> empty: the owner's stored records;
- ``v/q/<owner>`` -> ``Usage``: records and bytes (pending and stored) held for the owner,
  the quota's counters;
- ``v/t`` -> ``Totals``: pending and stored counts and bytes (the pending bounds, stats).

Every operation writes in one atomic ``write_batch``; moving a blob to stored, adding keys
to a stored record and erasing are synced (a custodian must not lose a record it
acknowledged by committing it, nor keep one it was told to destroy). The vault is
synchronous and single-owner: in the node it is used from the trio thread only, so an
operation's reads and its batch are not interleaved with another's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Final, TypeVar

from crypto_core.signatures import sha256
from health.contracts.common import (
    CODE_PATTERN,
    FHIR_TYPE_PATTERN,
    ID_BYTES,
    MAX_CODE_CHARS,
    MAX_FHIR_TYPE_CHARS,
    u64,
)
from health.envelopes import NONCE_BYTES, TAG_BYTES, WRAPPED_KEY_BYTES
from health.records_wire import MAX_CIPHERTEXT_BYTES, MAX_WRAPPED_KEYS, RecordsError
from node.codec import Bool, Bytes, StructCodec, Text, UInt
from node.errors import DecodeError
from node.ports import Delete, Put, Storage, WriteOp
from node.types import SIGNATURE_BYTES

logger = logging.getLogger("health.vault")
T = TypeVar("T")

META_PREFIX: Final = b"v/m/"
BLOB_PREFIX: Final = b"v/c/"
KEY_PREFIX: Final = b"v/k/"
EXPIRY_PREFIX: Final = b"v/e/"
OWNER_PREFIX: Final = b"v/o/"
USAGE_PREFIX: Final = b"v/q/"
TOTALS_KEY: Final = b"v/t"
MIB: Final = 1024 * 1024
MIN_CIPHERTEXT_BYTES: Final = NONCE_BYTES + TAG_BYTES
"""A sealed record is at least its nonce and its tag (``health.envelopes.seal``)."""
DEFAULT_EXPIRE_LIMIT: Final = 1_000


class VaultError(RecordsError):
    """A vault operation refused; ``reason`` as ``RecordsError``'s (``malformed``,
    ``too_large``, ``quota``, ``not_found``, ``mismatch``)."""


@dataclass(frozen=True, slots=True)
class VaultLimits:
    """Bounds of a vault. ``max_pending`` and ``max_pending_bytes`` bound the blobs waiting
    for their commitment (all owners); the per-owner bounds count pending and stored."""

    max_record_bytes: int = MIB + 64
    max_wrapped_keys_per_record: int = 64
    max_records_per_owner: int = 100_000
    max_bytes_per_owner: int = 1024 * MIB
    pending_ttl_ms: int = 10 * 60 * 1000
    max_pending: int = 10_000
    max_pending_bytes: int = 256 * MIB

    def __post_init__(self) -> None:
        if not MIN_CIPHERTEXT_BYTES <= self.max_record_bytes <= MAX_CIPHERTEXT_BYTES:
            raise ValueError(
                f"max_record_bytes must be {MIN_CIPHERTEXT_BYTES}..{MAX_CIPHERTEXT_BYTES}"
            )
        if not 1 <= self.max_wrapped_keys_per_record <= MAX_WRAPPED_KEYS:
            raise ValueError(f"max_wrapped_keys_per_record must be 1..{MAX_WRAPPED_KEYS}")
        for name in (
            "max_records_per_owner",
            "max_bytes_per_owner",
            "pending_ttl_ms",
            "max_pending",
            "max_pending_bytes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"VaultLimits.{name} must be >= 1")


@dataclass(frozen=True, slots=True)
class RecordFields:
    """The commitment fields every form of a record in the vault starts with: the record,
    its owner and author, what it is (FHIR type and code), its key epoch and data time.
    ``PendingBlob``, ``StoredRecord`` and ``RecordMeta`` extend it, so these stay their
    first fields, in this order (``META_CODEC`` encodes ``RecordMeta`` in field order)."""

    record_id: bytes
    owner: bytes
    author: bytes
    resource_type: str
    code: str
    key_epoch: int
    data_time_ms: int


@dataclass(frozen=True, slots=True)
class PendingBlob(RecordFields):
    """An uploaded blob waiting for its commitment: the commitment fields the author signed
    (``author_signature`` over ``envelopes.commitment_statement``), the ciphertext and the
    data key wrapped for each first reader (recipient identity id -> wrapped key)."""

    ciphertext: bytes
    wrapped_keys: dict[bytes, bytes]
    author_signature: bytes


@dataclass(frozen=True, slots=True)
class StoredRecord(RecordFields):
    """A stored record: its commitment fields, the ciphertext and every wrapped key."""

    ciphertext_sha256: bytes
    ciphertext: bytes
    wrapped_keys: dict[bytes, bytes]
    author_signature: bytes


@dataclass(frozen=True, slots=True)
class RecordMeta(RecordFields):
    """What the vault keeps of a record beside its ciphertext and keys."""

    ciphertext_sha256: bytes
    size_bytes: int
    author_signature: bytes
    stored: bool
    expires_ms: int


@dataclass(frozen=True, slots=True)
class Usage:
    """Records and bytes held for one owner (pending and stored)."""

    records: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Totals:
    """Pending and stored records and bytes of the whole vault."""

    pending: int
    pending_bytes: int
    stored: int
    stored_bytes: int


@dataclass(slots=True)
class VaultCounters:
    """What happened since the vault was opened (operators' metrics)."""

    accepted: int = 0
    committed: int = 0
    mismatched: int = 0
    expired: int = 0
    erased: int = 0
    refused: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VaultStats:
    """``Vault.stats()``: the totals held and the counters since opening."""

    pending: int
    pending_bytes: int
    stored: int
    stored_bytes: int
    accepted: int
    committed: int
    mismatched: int
    expired: int
    erased: int
    refused: dict[str, int]


_ID = Bytes.exactly(ID_BYTES)
META_CODEC: Final = StructCodec(
    RecordMeta,
    [
        ("record_id", _ID),
        ("owner", _ID),
        ("author", _ID),
        ("resource_type", Text(MAX_FHIR_TYPE_CHARS, FHIR_TYPE_PATTERN)),
        ("code", Text(MAX_CODE_CHARS, CODE_PATTERN)),
        ("key_epoch", UInt()),
        ("data_time_ms", UInt()),
        ("ciphertext_sha256", Bytes.exactly(32)),
        ("size_bytes", UInt()),
        ("author_signature", Bytes.exactly(SIGNATURE_BYTES)),
        ("stored", Bool()),
        ("expires_ms", UInt()),
    ],
    1024,
)
USAGE_CODEC: Final = StructCodec(Usage, [("records", UInt()), ("bytes", UInt())], 64)
TOTALS_CODEC: Final = StructCodec(
    Totals,
    [("pending", UInt()), ("pending_bytes", UInt()), ("stored", UInt()), ("stored_bytes", UInt())],
    64,
)
_NO_USAGE: Final = Usage(0, 0)
_NO_TOTALS: Final = Totals(0, 0, 0, 0)
U64_MAX: Final = 2**64 - 1

CompactRange = Callable[[bytes, bytes], None]
"""``compact_range(start, stop)``: compact the keys in ``[start, stop)`` of the vault's
storage (LevelDB keeps deleted values in old files until compaction)."""


def _successor(prefix: bytes) -> bytes:
    """The first key after every key starting with ``prefix`` (``prefix`` is never all
    0xff here: it starts with ``v/``)."""
    stripped = prefix.rstrip(b"\xff")
    return stripped[:-1] + bytes([stripped[-1] + 1])


class Vault:
    """The blobs of one custodian (see the module docstring). Errors: ``VaultError``;
    the storage's own errors (``StorageError``: a full disk, a closed database) pass."""

    def __init__(
        self,
        storage: Storage,
        limits: VaultLimits | None = None,
        *,
        compact_range: CompactRange | None = None,
    ) -> None:
        self.storage = storage
        self.limits = limits if limits is not None else VaultLimits()
        self.compact_range = compact_range
        self.counters = VaultCounters()

    # -- reads ------------------------------------------------------------------------------

    def meta(self, record_id: bytes) -> RecordMeta | None:
        """What the vault keeps of ``record_id`` (pending or stored), or None."""
        raw = self.storage.get(META_PREFIX + record_id)
        return None if raw is None else _decode(META_CODEC, raw, record_id)

    def has(self, record_id: bytes) -> bool:
        """True if ``record_id`` is stored (committed), not just pending."""
        meta = self.meta(record_id)
        return meta is not None and meta.stored

    def owner_of(self, record_id: bytes) -> bytes | None:
        """The owner of a pending or stored record, or None."""
        meta = self.meta(record_id)
        return None if meta is None else meta.owner

    def get(self, record_id: bytes) -> StoredRecord | None:
        """The stored record ``record_id`` with its ciphertext and every wrapped key; None
        when it is not stored (unknown, pending or erased)."""
        meta = self.meta(record_id)
        if meta is None or not meta.stored:
            return None
        ciphertext = self.storage.get(BLOB_PREFIX + record_id)
        if ciphertext is None:
            raise AssertionError(f"vault record {record_id.hex()} without its ciphertext")
        return StoredRecord(
            record_id=meta.record_id,
            owner=meta.owner,
            author=meta.author,
            resource_type=meta.resource_type,
            code=meta.code,
            key_epoch=meta.key_epoch,
            data_time_ms=meta.data_time_ms,
            ciphertext_sha256=meta.ciphertext_sha256,
            ciphertext=ciphertext,
            wrapped_keys=self._wrapped_keys(record_id),
            author_signature=meta.author_signature,
        )

    def wrapped_key(self, record_id: bytes, recipient: bytes) -> bytes | None:
        """The data key of the stored record ``record_id`` wrapped for ``recipient``."""
        if not self.has(record_id):
            return None
        return self.storage.get(KEY_PREFIX + record_id + recipient)

    def pending_records(self, limit: int) -> list[bytes]:
        """Up to ``limit`` pending records, the soonest to expire first."""
        found: list[bytes] = []
        for key, _ in self.storage.iterate_prefix(EXPIRY_PREFIX):
            if len(found) >= limit:
                break
            found.append(key[-ID_BYTES:])
        return found

    def stored_records(self) -> Iterator[bytes]:
        """Every stored record id, by owner (a snapshot iterator: erasing while iterating is
        fine)."""
        for key, _ in self.storage.iterate_prefix(OWNER_PREFIX):
            yield key[-ID_BYTES:]

    def records_of(self, owner: bytes, limit: int) -> list[bytes]:
        """Up to ``limit`` stored records of ``owner``, in record id order."""
        found: list[bytes] = []
        for key, _ in self.storage.iterate_prefix(OWNER_PREFIX + owner):
            if len(found) >= limit:
                break
            found.append(key[-ID_BYTES:])
        return found

    def usage(self, owner: bytes) -> Usage:
        """Records and bytes held for ``owner`` (pending and stored)."""
        raw = self.storage.get(USAGE_PREFIX + owner)
        return _NO_USAGE if raw is None else _decode(USAGE_CODEC, raw, owner)

    def totals(self) -> Totals:
        """Pending and stored counts and bytes."""
        raw = self.storage.get(TOTALS_KEY)
        return _NO_TOTALS if raw is None else _decode(TOTALS_CODEC, raw, TOTALS_KEY)

    def stats(self) -> VaultStats:
        """The totals held and the counters since the vault was opened."""
        totals, counters = self.totals(), self.counters
        return VaultStats(
            pending=totals.pending,
            pending_bytes=totals.pending_bytes,
            stored=totals.stored,
            stored_bytes=totals.stored_bytes,
            accepted=counters.accepted,
            committed=counters.committed,
            mismatched=counters.mismatched,
            expired=counters.expired,
            erased=counters.erased,
            refused=dict(counters.refused),
        )

    # -- writes -----------------------------------------------------------------------------

    def put_pending(self, blob: PendingBlob, now_ms: int) -> None:
        """Keep ``blob`` pending until ``now_ms + pending_ttl_ms`` (a pending blob of the
        same record is replaced: an upload retried). A stored record with the same
        ciphertext is left as it is; with another one: ``mismatch``. Refused: ``malformed``
        fields, ``too_large`` (ciphertext, number of wrapped keys), ``quota`` (the owner's
        records or bytes; with ``retry_later`` the vault's pending bounds)."""
        try:
            self._put_pending(blob, now_ms)
        except VaultError as exc:
            self._refused(exc)
            raise

    def _put_pending(self, blob: PendingBlob, now_ms: int) -> None:
        self.check_blob(blob)
        digest = sha256(blob.ciphertext)
        old = self.meta(blob.record_id)
        if old is not None and old.stored:
            if old.ciphertext_sha256 == digest and old.owner == blob.owner:
                return  # the same record uploaded again after its commitment
            raise VaultError("mismatch", f"record {blob.record_id.hex()} is stored already")
        size = len(blob.ciphertext)
        totals = self.totals()
        if old is not None:
            totals = replace(
                totals,
                pending=totals.pending - 1,
                pending_bytes=totals.pending_bytes - old.size_bytes,
            )
        self._check_pending_room(totals, size)
        ops: list[WriteOp] = []
        usage = self.usage(blob.owner)
        if old is not None:
            ops += self._drop_ops(old, keep_totals=True)
            if old.owner == blob.owner:
                usage = Usage(usage.records - 1, usage.bytes - old.size_bytes)
            else:
                ops.append(self._usage_op(old.owner, -1, -old.size_bytes))
        self._check_quota(usage, size)
        expires_ms = min(U64_MAX, now_ms + self.limits.pending_ttl_ms)
        meta = _meta_of(blob, digest, expires_ms)
        usage = Usage(usage.records + 1, usage.bytes + size)
        totals = replace(
            totals, pending=totals.pending + 1, pending_bytes=totals.pending_bytes + size
        )
        ops += [
            Put(META_PREFIX + blob.record_id, META_CODEC.encode(meta)),
            Put(BLOB_PREFIX + blob.record_id, blob.ciphertext),
            Put(EXPIRY_PREFIX + u64(expires_ms) + blob.record_id, b""),
            Put(USAGE_PREFIX + blob.owner, USAGE_CODEC.encode(usage)),
            Put(TOTALS_KEY, TOTALS_CODEC.encode(totals)),
        ]
        ops += [
            Put(KEY_PREFIX + blob.record_id + r, w) for r, w in sorted(blob.wrapped_keys.items())
        ]
        self.storage.write_batch(_last_wins(ops))
        self.counters.accepted += 1

    def commitment_committed(
        self, record_id: bytes, owner: bytes, ciphertext_sha256: bytes, size_bytes: int
    ) -> bool:
        """The commitment of ``record_id`` was committed: a pending blob that matches it
        (owner, SHA-256, size) becomes stored, durably (True); one that does not is dropped
        at once, as it never can match (False); a stored one is left (True if it matches);
        None held: False."""
        meta = self.meta(record_id)
        if meta is None:
            return False
        matches = (meta.owner, meta.ciphertext_sha256, meta.size_bytes) == (
            owner,
            ciphertext_sha256,
            size_bytes,
        )
        if meta.stored:
            return matches
        if not matches:
            self.storage.write_batch(self._drop_ops(meta))
            self.counters.mismatched += 1
            logger.warning("dropped a blob that does not match its commitment %s", record_id.hex())
            return False
        totals = self.totals()
        moved = Totals(
            pending=totals.pending - 1,
            pending_bytes=totals.pending_bytes - meta.size_bytes,
            stored=totals.stored + 1,
            stored_bytes=totals.stored_bytes + meta.size_bytes,
        )
        stored = replace(meta, stored=True, expires_ms=0)
        ops: list[WriteOp] = [
            Put(META_PREFIX + record_id, META_CODEC.encode(stored)),
            Delete(EXPIRY_PREFIX + u64(meta.expires_ms) + record_id),
            Put(OWNER_PREFIX + meta.owner + record_id, b""),
            Put(TOTALS_KEY, TOTALS_CODEC.encode(moved)),
        ]
        self.storage.write_batch(ops, sync=True)
        self.counters.committed += 1
        return True

    def add_wrapped_keys(self, record_id: bytes, wrapped_keys: Mapping[bytes, bytes]) -> int:
        """Add (or replace) data keys of a pending or stored record wrapped for new readers;
        returns how many wrapped keys the record holds now. ``not_found`` for a record not
        held, ``malformed`` keys, ``too_large`` past ``max_wrapped_keys_per_record``."""
        try:
            return self._add_wrapped_keys(record_id, wrapped_keys)
        except VaultError as exc:
            self._refused(exc)
            raise

    def _add_wrapped_keys(self, record_id: bytes, wrapped_keys: Mapping[bytes, bytes]) -> int:
        meta = self.meta(record_id)
        if meta is None:
            raise VaultError("not_found", f"record {record_id.hex()} is not held here")
        if not wrapped_keys:
            raise VaultError("malformed", "no wrapped keys to add")
        if len(wrapped_keys) > self.limits.max_wrapped_keys_per_record:
            raise VaultError("too_large", self._too_many_keys())
        _check_wrapped_keys(wrapped_keys)
        held = len(self._wrapped_keys(record_id).keys() | wrapped_keys.keys())
        if held > self.limits.max_wrapped_keys_per_record:
            raise VaultError("too_large", self._too_many_keys())
        ops: list[WriteOp] = [
            Put(KEY_PREFIX + record_id + r, w) for r, w in sorted(wrapped_keys.items())
        ]
        self.storage.write_batch(ops, sync=meta.stored)
        return held

    def erase(self, record_id: bytes) -> bool:
        """Delete the blob and every wrapped key of ``record_id`` (pending or stored),
        durably, then compact their key ranges through ``compact_range`` if given. True if
        something was deleted."""
        meta = self.meta(record_id)
        if meta is None:
            return False
        self.storage.write_batch(self._drop_ops(meta), sync=True)
        self.counters.erased += 1
        self._compact(record_id)
        return True

    def expire_pending(self, now_ms: int, limit: int = DEFAULT_EXPIRE_LIMIT) -> int:
        """Drop up to ``limit`` pending blobs whose time ran out by ``now_ms`` (one range
        scan of the expiry index from its start); how many were dropped."""
        dropped = 0
        for key, _ in self.storage.iterate_prefix(EXPIRY_PREFIX):
            if dropped >= limit:
                break
            expires_ms = int.from_bytes(key[len(EXPIRY_PREFIX) : len(EXPIRY_PREFIX) + 8], "big")
            if expires_ms > now_ms:
                break
            meta = self.meta(key[-ID_BYTES:])
            if meta is None or meta.stored or meta.expires_ms != expires_ms:
                self.storage.write_batch([Delete(key)])  # a stale index entry
                continue
            self.storage.write_batch(self._drop_ops(meta))
            dropped += 1
        self.counters.expired += dropped
        return dropped

    # -- helpers ----------------------------------------------------------------------------

    def _wrapped_keys(self, record_id: bytes) -> dict[bytes, bytes]:
        prefix = KEY_PREFIX + record_id
        return {key[len(prefix) :]: value for key, value in self.storage.iterate_prefix(prefix)}

    def _drop_ops(self, meta: RecordMeta, *, keep_totals: bool = False) -> list[WriteOp]:
        """The writes removing ``meta``'s record and its accounting (not the usage of the
        owner when ``keep_totals``: the caller rewrites both)."""
        record_id = meta.record_id
        ops: list[WriteOp] = [Delete(META_PREFIX + record_id), Delete(BLOB_PREFIX + record_id)]
        ops += [Delete(key) for key, _ in self.storage.iterate_prefix(KEY_PREFIX + record_id)]
        if meta.stored:
            ops.append(Delete(OWNER_PREFIX + meta.owner + record_id))
        else:
            ops.append(Delete(EXPIRY_PREFIX + u64(meta.expires_ms) + record_id))
        if keep_totals:
            return ops
        ops.append(self._usage_op(meta.owner, -1, -meta.size_bytes))
        totals = self.totals()
        if meta.stored:
            totals = replace(
                totals, stored=totals.stored - 1, stored_bytes=totals.stored_bytes - meta.size_bytes
            )
        else:
            totals = replace(
                totals,
                pending=totals.pending - 1,
                pending_bytes=totals.pending_bytes - meta.size_bytes,
            )
        ops.append(Put(TOTALS_KEY, TOTALS_CODEC.encode(totals)))
        return ops

    def _usage_op(self, owner: bytes, records: int, size: int) -> WriteOp:
        usage = self.usage(owner)
        updated = Usage(max(0, usage.records + records), max(0, usage.bytes + size))
        if updated == _NO_USAGE:
            return Delete(USAGE_PREFIX + owner)
        return Put(USAGE_PREFIX + owner, USAGE_CODEC.encode(updated))

    def check_blob(self, blob: PendingBlob) -> None:
        """Refuse (``VaultError``) a blob whose fields or sizes do not fit: what
        ``put_pending`` checks before it reads or writes anything."""
        for name in ("record_id", "owner", "author"):
            value = getattr(blob, name)
            if type(value) is not bytes or len(value) != ID_BYTES:
                raise VaultError("malformed", f"{name} is {ID_BYTES} bytes")
        if not isinstance(blob.resource_type, str) or not FHIR_TYPE_PATTERN.fullmatch(
            blob.resource_type
        ):
            raise VaultError("malformed", "resource_type is a FHIR resource type name")
        if not isinstance(blob.code, str) or not CODE_PATTERN.fullmatch(blob.code):
            raise VaultError("malformed", "code is a coded concept (system|code)")
        for name in ("key_epoch", "data_time_ms"):
            value = getattr(blob, name)
            if type(value) is not int or not 0 <= value <= U64_MAX:
                raise VaultError("malformed", f"{name} is an integer in 0..2^64-1")
        if type(blob.author_signature) is not bytes or len(blob.author_signature) != 64:
            raise VaultError("malformed", "author_signature is 64 bytes")
        if type(blob.ciphertext) is not bytes or len(blob.ciphertext) < MIN_CIPHERTEXT_BYTES:
            raise VaultError("malformed", f"a ciphertext is at least {MIN_CIPHERTEXT_BYTES} bytes")
        if len(blob.ciphertext) > self.limits.max_record_bytes:
            raise VaultError(
                "too_large", f"a ciphertext is at most {self.limits.max_record_bytes} bytes"
            )
        if not isinstance(blob.wrapped_keys, dict):
            raise VaultError("malformed", "wrapped_keys maps recipients to wrapped keys")
        if len(blob.wrapped_keys) > self.limits.max_wrapped_keys_per_record:
            raise VaultError("too_large", self._too_many_keys())
        _check_wrapped_keys(blob.wrapped_keys)

    def _check_pending_room(self, totals: Totals, size: int) -> None:
        limits = self.limits
        if totals.pending + 1 > limits.max_pending:
            raise VaultError(
                "quota", f"{limits.max_pending} uploads wait for their commitment", retry_later=True
            )
        if totals.pending_bytes + size > limits.max_pending_bytes:
            raise VaultError(
                "quota",
                f"uploads waiting for their commitment fill {limits.max_pending_bytes} bytes",
                retry_later=True,
            )

    def _check_quota(self, usage: Usage, size: int) -> None:
        limits = self.limits
        if usage.records + 1 > limits.max_records_per_owner:
            raise VaultError(
                "quota", f"the owner holds {limits.max_records_per_owner} records here already"
            )
        if usage.bytes + size > limits.max_bytes_per_owner:
            raise VaultError(
                "quota", f"the owner's records would exceed {limits.max_bytes_per_owner} bytes"
            )

    def _too_many_keys(self) -> str:
        return f"a record holds at most {self.limits.max_wrapped_keys_per_record} wrapped keys"

    def _refused(self, error: VaultError) -> None:
        refused = self.counters.refused
        refused[error.reason] = refused.get(error.reason, 0) + 1

    def _compact(self, record_id: bytes) -> None:
        if self.compact_range is None:
            return
        for prefix in (META_PREFIX, BLOB_PREFIX, KEY_PREFIX):
            start = prefix + record_id
            try:
                self.compact_range(start, _successor(start))
            except Exception:  # the data is deleted already; compaction only reclaims files
                logger.exception("compacting the vault after an erasure failed")


def _meta_of(blob: PendingBlob, digest: bytes, expires_ms: int) -> RecordMeta:
    return RecordMeta(
        record_id=blob.record_id,
        owner=blob.owner,
        author=blob.author,
        resource_type=blob.resource_type,
        code=blob.code,
        key_epoch=blob.key_epoch,
        data_time_ms=blob.data_time_ms,
        ciphertext_sha256=digest,
        size_bytes=len(blob.ciphertext),
        author_signature=blob.author_signature,
        stored=False,
        expires_ms=expires_ms,
    )


def _check_wrapped_keys(wrapped_keys: Mapping[bytes, bytes]) -> None:
    for recipient, wrapped in wrapped_keys.items():
        if type(recipient) is not bytes or len(recipient) != ID_BYTES:
            raise VaultError("malformed", f"a recipient is an identity id of {ID_BYTES} bytes")
        if type(wrapped) is not bytes or len(wrapped) != WRAPPED_KEY_BYTES:
            raise VaultError("malformed", f"a wrapped key is {WRAPPED_KEY_BYTES} bytes")


def _last_wins(ops: list[WriteOp]) -> list[WriteOp]:
    """``ops`` without the writes a later op of the same key overrides (a replaced pending
    blob's deletes followed by the new blob's puts)."""
    last: dict[bytes, int] = {op.key: index for index, op in enumerate(ops)}
    return [op for index, op in enumerate(ops) if last[op.key] == index]


def _decode(codec: StructCodec[T], raw: bytes, what: bytes) -> T:
    try:
        return codec.decode(raw)
    except DecodeError as exc:  # our own writes are canonical: corruption is a bug
        raise AssertionError(f"corrupt vault entry {what.hex()}: {exc}") from exc

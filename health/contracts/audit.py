"""Audit: custodians' entries of every access to a record they keep, served or refused.

State (under ``audit/``): ``p/<patient><u64 accessed_ms><entry>`` -> ``AuditEntry``, so a
patient's entries are in time order (``GET /state/audit?prefix=p/<patient>``); ``entry`` is
``SHA-256(tx hash ‖ u32 index in the batch)[:16]``.

Transaction: ``audit.record`` — a batch of 1..``audit_batch_max`` (governance) entries by an
acting identity that is a custodian of each entry's record, touching at most
``MAX_PATIENTS_PER_BATCH`` patients; one ``audit.recorded`` event per patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from crypto_core.signatures import sha256
from health.contracts.common import (
    DAY_MS,
    ID_BYTES,
    PARAM_LIMITS,
    AccessBasis,
    Identity,
    get_identity,
    identity_of_sender,
    is_acting,
    param,
    u64,
)
from health.contracts.consent import (
    TIME_SEGMENT,
    ScanReader,
    get_emergency_access,
    get_grant,
    key_from_path,
)
from health.contracts.records import RecordCommitment, get_record
from node.app.errors import TxFailed
from node.app.module import (
    CheckContext,
    ExecContext,
    JsonValue,
    KeyReader,
    Module,
    decode_payload,
)
from node.codec import MAX_TX_BYTES, ArrayOf, Bool, Bytes, EnumOf, Nested, StructCodec, UInt
from node.errors import DecodeError
from node.types import ResultCode, Transaction

AUDIT: Final = "audit"
ENTRY_PREFIX: Final = b"audit/p/"
ENTRY_ID_BYTES: Final = 16
MAX_BATCH_ENTRIES: Final = PARAM_LIMITS["audit_batch_max"][1]
"""What the payload codec accepts; the governance parameter ``audit_batch_max`` decides."""
MAX_PATIENTS_PER_BATCH: Final = 16
"""Patients one batch may touch: one event each, well within 32 events a transaction."""
MAX_ACCESS_AGE_MS: Final = 7 * DAY_MS
"""How old an access may be when recorded: custodians report within the week."""
MAX_LIST_ITEMS: Final = 1_000


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One access a custodian served (``served``) or refused: ``reader`` (an identity id)
    asked for ``record`` at ``accessed_ms`` (block time scale) under ``basis`` and
    ``basis_id`` (the grant's or emergency access' id; empty for the owner)."""

    record: bytes
    reader: bytes
    accessed_ms: int
    basis: AccessBasis
    basis_id: bytes
    served: bool


@dataclass(frozen=True, slots=True)
class RecordPayload:
    """``audit.record``: a batch of entries of the sender's custody."""

    entries: tuple[AccessEntry, ...]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An entry as stored (``audit/p/<patient><time><id>``): the access, the custodian
    that recorded it and when."""

    id: bytes
    patient: bytes
    record: bytes
    reader: bytes
    accessed_ms: int
    basis: AccessBasis
    basis_id: bytes
    served: bool
    custodian: bytes
    recorded_ms: int


_ID = Bytes.exactly(ID_BYTES)
ACCESS_ENTRY_CODEC: Final = StructCodec(
    AccessEntry,
    [
        ("record", _ID),
        ("reader", _ID),
        ("accessed_ms", UInt()),
        ("basis", EnumOf(AccessBasis)),
        ("basis_id", Bytes(ID_BYTES)),
        ("served", Bool()),
    ],
    256,
)
RECORD_PAYLOAD_CODEC: Final = StructCodec(
    RecordPayload,
    [("entries", ArrayOf(Nested(ACCESS_ENTRY_CODEC), MAX_BATCH_ENTRIES))],
    MAX_TX_BYTES,
)
AUDIT_ENTRY_CODEC: Final = StructCodec(
    AuditEntry,
    [
        ("id", Bytes.exactly(ENTRY_ID_BYTES)),
        ("patient", _ID),
        ("record", _ID),
        ("reader", _ID),
        ("accessed_ms", UInt()),
        ("basis", EnumOf(AccessBasis)),
        ("basis_id", Bytes(ID_BYTES)),
        ("served", Bool()),
        ("custodian", _ID),
        ("recorded_ms", UInt()),
    ],
    512,
)


# -- keys, reads, client helpers -----------------------------------------------------------


def entry_key(patient: bytes, accessed_ms: int, entry_id: bytes) -> bytes:
    """The state key of an audit entry."""
    return ENTRY_PREFIX + patient + u64(accessed_ms) + entry_id


def entry_id(tx_hash: bytes, index: int) -> bytes:
    """The id of the ``index``-th entry of the batch ``tx_hash``."""
    return sha256(tx_hash + index.to_bytes(4, "big"))[:ENTRY_ID_BYTES]


def list_audit(reader: ScanReader, patient: bytes, limit: int = MAX_LIST_ITEMS) -> list[AuditEntry]:
    """Up to ``limit`` (1..1000) audit entries of ``patient``, the earliest access first."""
    found: list[AuditEntry] = []
    for key, value in reader.iterate(ENTRY_PREFIX + patient, limit):
        found.append(_decode_entry(key, value))
    return found


def record_payload(entries: tuple[AccessEntry, ...]) -> bytes:
    """The payload of an ``audit.record`` transaction (client helper)."""
    return RECORD_PAYLOAD_CODEC.encode(RecordPayload(tuple(entries)))


def _decode_entry(key: bytes, value: bytes) -> AuditEntry:
    try:
        return AUDIT_ENTRY_CODEC.decode(value)
    except DecodeError as exc:  # our own writes are canonical: corruption is a bug
        raise AssertionError(f"corrupt audit entry under {key!r}: {exc}") from exc


# -- rules ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Checked:
    """A batch that passed every rule: the custodian, each entry's record, the patients
    touched in first-seen order with their entry counts."""

    custodian: Identity
    records: tuple[RecordCommitment, ...]
    patients: tuple[tuple[bytes, int], ...]


def require_custodian_sender(reader: KeyReader, sender: bytes) -> Identity:
    """The acting identity of ``sender`` (``TxFailed(UNAUTHORIZED)`` otherwise)."""
    identity = identity_of_sender(reader, sender)
    if identity is None or not is_acting(reader, identity):
        raise TxFailed(ResultCode.UNAUTHORIZED, "only an acting custodian may record accesses")
    return identity


def check_entry_shape(entry: AccessEntry, now_ms: int) -> None:
    """Refuse (INVALID_PAYLOAD) an entry in the future, older than ``MAX_ACCESS_AGE_MS``,
    or whose basis id does not fit its basis (empty for OWNER, 32 bytes otherwise)."""
    if entry.accessed_ms > now_ms:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "an access time lies in the future")
    if entry.accessed_ms < now_ms - MAX_ACCESS_AGE_MS:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, f"an access older than {MAX_ACCESS_AGE_MS} ms")
    expected = 0 if entry.basis is AccessBasis.OWNER else ID_BYTES
    if len(entry.basis_id) != expected:
        raise TxFailed(
            ResultCode.INVALID_PAYLOAD,
            f"a basis id of {entry.basis.name.lower()} access is {expected} bytes",
        )


def check_served_basis(reader: KeyReader, entry: AccessEntry, record: RecordCommitment) -> None:
    """A served access must name a basis that exists and fits the reader: the owner
    itself, a grant of the record's owner to the reader or its institution, an emergency
    access of the reader to the owner (INVALID_PAYLOAD otherwise). Whether it was in force
    is the custodian's decision, which the entry records."""
    if entry.basis is AccessBasis.OWNER:
        fits = entry.reader == record.owner
    elif entry.basis is AccessBasis.GRANT:
        grant = get_grant(reader, record.owner, entry.basis_id)
        fits = grant is not None and grant.grantee in (entry.reader, _parent(reader, entry))
    else:
        access = get_emergency_access(reader, record.owner, entry.basis_id)
        fits = access is not None and access.practitioner == entry.reader
    if not fits:
        raise TxFailed(
            ResultCode.INVALID_PAYLOAD,
            f"the {entry.basis.name.lower()} basis of a served access does not fit its reader",
        )


def _parent(reader: KeyReader, entry: AccessEntry) -> bytes | None:
    identity = get_identity(reader, entry.reader)
    return None if identity is None else identity.parent


def check_batch(reader: KeyReader, sender: bytes, payload: RecordPayload, now_ms: int) -> _Checked:
    """Every rule of ``audit.record`` (both ``check_tx`` and ``deliver_tx``)."""
    custodian = require_custodian_sender(reader, sender)
    if not payload.entries:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "a batch has at least one entry")
    batch_max = param(reader, "audit_batch_max")
    if len(payload.entries) > batch_max:
        raise TxFailed(ResultCode.LIMIT_EXCEEDED, f"a batch has at most {batch_max} entries")
    seen: dict[bytes, RecordCommitment] = {}  # a lookup table only, never iterated
    counts: dict[bytes, int] = {}
    order: list[bytes] = []
    records: list[RecordCommitment] = []
    for entry in payload.entries:
        check_entry_shape(entry, now_ms)
        record = seen.get(entry.record) or get_record(reader, entry.record)
        if record is None:
            raise TxFailed(ResultCode.NOT_FOUND, f"no record {entry.record.hex()}")
        seen[entry.record] = record
        if custodian.id not in record.custodians:
            raise TxFailed(
                ResultCode.UNAUTHORIZED, f"not a custodian of record {entry.record.hex()}"
            )
        if entry.served:
            check_served_basis(reader, entry, record)
        if record.owner not in counts:
            if len(order) == MAX_PATIENTS_PER_BATCH:
                raise TxFailed(
                    ResultCode.LIMIT_EXCEEDED,
                    f"a batch touches at most {MAX_PATIENTS_PER_BATCH} patients",
                )
            order.append(record.owner)
            counts[record.owner] = 0
        counts[record.owner] += 1
        records.append(record)
    patients = tuple((patient, counts[patient]) for patient in order)
    return _Checked(custodian, tuple(records), patients)


# -- the module ----------------------------------------------------------------------------

_PATH_LAYOUTS: Final = {"p": (ID_BYTES, TIME_SEGMENT, ENTRY_ID_BYTES)}


class AuditModule(Module):
    """Custodians' access entries, per patient in time order (see the module docstring)."""

    name = AUDIT
    actions = frozenset({"record"})

    def check_tx(self, ctx: CheckContext, tx: Transaction) -> None:
        payload = decode_payload(RECORD_PAYLOAD_CODEC, tx.payload)
        check_batch(ctx.view, tx.sender, payload, ctx.block.time_ms)

    def deliver_tx(self, ctx: ExecContext, tx: Transaction) -> None:
        payload = decode_payload(RECORD_PAYLOAD_CODEC, tx.payload)
        now_ms = ctx.block.time_ms
        checked = check_batch(ctx.view, ctx.require_sender(), payload, now_ms)
        if ctx.tx_hash is None:
            raise AssertionError("an audit batch is a transaction")
        for index, (entry, record) in enumerate(zip(payload.entries, checked.records, strict=True)):
            stored = AuditEntry(
                id=entry_id(ctx.tx_hash, index),
                patient=record.owner,
                record=entry.record,
                reader=entry.reader,
                accessed_ms=entry.accessed_ms,
                basis=entry.basis,
                basis_id=entry.basis_id,
                served=entry.served,
                custodian=checked.custodian.id,
                recorded_ms=now_ms,
            )
            key = entry_key(stored.patient, stored.accessed_ms, stored.id)
            ctx.view.set(key, AUDIT_ENTRY_CODEC.encode(stored))
        for patient, count in checked.patients:
            ctx.emit("recorded", patient=patient, count=count, custodian=checked.custodian.id)

    def query_key(self, path: str) -> bytes:
        return key_from_path(b"audit/", path, _PATH_LAYOUTS)

    def render(self, key: bytes, value: bytes) -> JsonValue:
        if key.startswith(ENTRY_PREFIX):
            return render_entry(_decode_entry(key, value))
        return super().render(key, value)


def render_entry(entry: AuditEntry) -> dict[str, JsonValue]:
    """An audit entry as JSON (ids as hex, the basis by name)."""
    return {
        "id": entry.id.hex(),
        "patient": entry.patient.hex(),
        "record": entry.record.hex(),
        "reader": entry.reader.hex(),
        "accessed_ms": entry.accessed_ms,
        "basis": entry.basis.name.lower(),
        "basis_id": entry.basis_id.hex() or None,
        "served": entry.served,
        "custodian": entry.custodian.hex(),
        "recorded_ms": entry.recorded_ms,
    }

"""Records: commitments to encrypted health records (the blobs live with custodians).

State (under ``records/``):

- ``r/<record>`` -> ``RecordCommitment``: who owns and wrote it, its FHIR type and code,
  the SHA-256 and size of the ciphertext, the custodians keeping the blob, the key epoch,
  the data's own time; kept after erasure, flagged;
- ``o/<owner><u64 data time><record>`` -> the resource type: the owner's records in the
  data's time order.

Transactions: ``records.commit`` (the owner patient, a device paired to it, or a
practitioner holding a treatment access to such data) and ``records.erase`` (the owner).
A committed glucose reading of the patient or a paired device tells ``care`` (module call
``care.reading_committed``) when the patient has a care plan.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from health.contracts.common import (
    CODE_PATTERN,
    FHIR_TYPE_PATTERN,
    GLUCOSE_READING_CODES,
    GLUCOSE_RESOURCE_TYPE,
    ID_BYTES,
    MAX_CODE_CHARS,
    MAX_FHIR_TYPE_CHARS,
    PARAM_LIMITS,
    READING_NOTICE_CODEC,
    Access,
    AccessBasis,
    HealthRole,
    Identity,
    Purpose,
    ReadingNotice,
    get_identity,
    identity_of_sender,
    is_acting,
    param,
    read_struct,
    require_identity,
    require_sender,
    u64,
)
from health.contracts.consent import TIME_SEGMENT, ScanReader, find_access, key_from_path
from node.app.errors import TxFailed
from node.app.module import (
    CheckContext,
    ExecContext,
    JsonValue,
    KeyReader,
    Module,
    decode_payload,
)
from node.codec import ArrayOf, Bool, Bytes, EnumOf, StructCodec, Text, UInt
from node.errors import DecodeError
from node.types import ResultCode, Transaction

RECORDS: Final = "records"
RECORD_PREFIX: Final = b"records/r/"
OWNER_INDEX_PREFIX: Final = b"records/o/"
CARE_PLAN_PREFIX: Final = b"care/p/"
"""Where ``care`` keeps a patient's plan: records tells care of readings only if one exists."""
MAX_CUSTODIANS: Final = PARAM_LIMITS["max_custodians"][1]
MAX_ERASE_RECORDS: Final = 32
"""Records one ``erase`` flags: one ``records.erased`` event each, within the framework's
32 events per transaction."""
MAX_FUTURE_SKEW_MS: Final = 5 * 60 * 1000
"""How far past the block time a record's own time may lie (a device's clock runs ahead)."""
MAX_LIST_ITEMS: Final = 1_000
SHA256_BYTES: Final = 32


@dataclass(frozen=True, slots=True)
class CommitPayload:
    """``records.commit``: the commitment to the encrypted record ``record`` (a new,
    client-chosen id) of ``owner``. ``custodians``: the identities keeping the blob (acting
    institutions, or the owner itself); ``key_epoch``: the owner's key epoch the record's
    data key was wrapped under; ``data_time_ms``: the data's own time."""

    record: bytes
    owner: bytes
    resource_type: str
    code: str
    ciphertext_sha256: bytes
    size_bytes: int
    custodians: tuple[bytes, ...]
    key_epoch: int
    data_time_ms: int


@dataclass(frozen=True, slots=True)
class ErasePayload:
    """``records.erase``: flag the sender's ``records`` erased (1..``MAX_ERASE_RECORDS``)."""

    records: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class RecordCommitment:
    """A record's commitment as stored (``records/r/<id>``). ``author_basis`` and
    ``author_basis_id``: under what the author wrote it (OWNER for the patient and its
    devices, GRANT or EMERGENCY with the id for a practitioner)."""

    id: bytes
    owner: bytes
    author: bytes
    author_basis: AccessBasis
    author_basis_id: bytes
    resource_type: str
    code: str
    ciphertext_sha256: bytes
    size_bytes: int
    custodians: tuple[bytes, ...]
    key_epoch: int
    data_time_ms: int
    committed_ms: int
    erased: bool
    erased_ms: int


_ID = Bytes.exactly(ID_BYTES)
_TYPE = Text(MAX_FHIR_TYPE_CHARS, FHIR_TYPE_PATTERN)
_CODE = Text(MAX_CODE_CHARS, CODE_PATTERN)
_CUSTODIANS = ArrayOf(_ID, MAX_CUSTODIANS)
COMMIT_PAYLOAD_CODEC: Final = StructCodec(
    CommitPayload,
    [
        ("record", _ID),
        ("owner", _ID),
        ("resource_type", _TYPE),
        ("code", _CODE),
        ("ciphertext_sha256", Bytes.exactly(SHA256_BYTES)),
        ("size_bytes", UInt()),
        ("custodians", _CUSTODIANS),
        ("key_epoch", UInt()),
        ("data_time_ms", UInt()),
    ],
    1024,
)
ERASE_PAYLOAD_CODEC: Final = StructCodec(
    ErasePayload, [("records", ArrayOf(_ID, MAX_ERASE_RECORDS))], 2048
)
RECORD_CODEC: Final = StructCodec(
    RecordCommitment,
    [
        ("id", _ID),
        ("owner", _ID),
        ("author", _ID),
        ("author_basis", EnumOf(AccessBasis)),
        ("author_basis_id", Bytes(ID_BYTES)),
        ("resource_type", _TYPE),
        ("code", _CODE),
        ("ciphertext_sha256", Bytes.exactly(SHA256_BYTES)),
        ("size_bytes", UInt()),
        ("custodians", _CUSTODIANS),
        ("key_epoch", UInt()),
        ("data_time_ms", UInt()),
        ("committed_ms", UInt()),
        ("erased", Bool()),
        ("erased_ms", UInt()),
    ],
    1024,
)


# -- keys, reads, client helpers -----------------------------------------------------------


def record_key(record_id: bytes) -> bytes:
    """The state key of a record's commitment."""
    return RECORD_PREFIX + record_id


def owner_index_key(owner: bytes, data_time_ms: int, record_id: bytes) -> bytes:
    """The owner-index entry of a record."""
    return OWNER_INDEX_PREFIX + owner + u64(data_time_ms) + record_id


def get_record(reader: KeyReader, record_id: bytes) -> RecordCommitment | None:
    """The commitment of ``record_id`` (erased or not), or None."""
    return read_struct(reader, record_key(record_id), RECORD_CODEC)


def list_records(
    reader: ScanReader, owner: bytes, limit: int = MAX_LIST_ITEMS
) -> list[RecordCommitment]:
    """Up to ``limit`` (1..1000) records of ``owner`` in the data's time order (the earliest
    first), erased ones included."""
    found: list[RecordCommitment] = []
    for key, _ in reader.iterate(OWNER_INDEX_PREFIX + owner, limit):
        record = get_record(reader, key[-ID_BYTES:])
        if record is None:
            raise AssertionError(f"owner index entry {key!r} without a record")
        found.append(record)
    return found


def commit_payload(
    record: bytes,
    owner: bytes,
    *,
    resource_type: str,
    code: str,
    ciphertext_sha256: bytes,
    size_bytes: int,
    custodians: tuple[bytes, ...],
    key_epoch: int,
    data_time_ms: int,
) -> bytes:
    """The payload of a ``records.commit`` transaction (client helper)."""
    payload = CommitPayload(
        record=record,
        owner=owner,
        resource_type=resource_type,
        code=code,
        ciphertext_sha256=ciphertext_sha256,
        size_bytes=size_bytes,
        custodians=tuple(custodians),
        key_epoch=key_epoch,
        data_time_ms=data_time_ms,
    )
    return COMMIT_PAYLOAD_CODEC.encode(payload)


def erase_payload(records: tuple[bytes, ...]) -> bytes:
    """The payload of a ``records.erase`` transaction (client helper)."""
    return ERASE_PAYLOAD_CODEC.encode(ErasePayload(tuple(records)))


def is_glucose_reading(resource_type: str, code: str) -> bool:
    """True for the type and codes that count as glucose readings (``care`` listens)."""
    return resource_type == GLUCOSE_RESOURCE_TYPE and code in GLUCOSE_READING_CODES


# -- rules ---------------------------------------------------------------------------------


def check_commit_shape(reader: KeyReader, payload: CommitPayload, now_ms: int) -> None:
    """Refuse (``TxFailed``) a commitment whose own fields do not fit: an empty ciphertext,
    a data time in the future, no or duplicate custodians (INVALID_PAYLOAD), more bytes or
    custodians than governance allows (LIMIT_EXCEEDED)."""
    if payload.size_bytes == 0:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "a record has at least one byte")
    max_bytes = param(reader, "max_record_bytes")
    if payload.size_bytes > max_bytes:
        raise TxFailed(ResultCode.LIMIT_EXCEEDED, f"a record has at most {max_bytes} bytes")
    if payload.data_time_ms > now_ms + MAX_FUTURE_SKEW_MS:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "the data's time lies in the future")
    if not payload.custodians:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "a record needs a custodian")
    max_custodians = param(reader, "max_custodians")
    if len(payload.custodians) > max_custodians:
        raise TxFailed(
            ResultCode.LIMIT_EXCEEDED, f"a record has at most {max_custodians} custodians"
        )
    if len(set(payload.custodians)) != len(payload.custodians):
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "a custodian is listed twice")


def check_custodians(reader: KeyReader, owner: bytes, custodians: tuple[bytes, ...]) -> None:
    """Each custodian must be the owner or an active institution (NOT_FOUND for an unknown
    identity, UNAUTHORIZED for any other)."""
    for custodian in custodians:
        if custodian == owner:
            continue
        identity = get_identity(reader, custodian)
        if identity is None:
            raise TxFailed(ResultCode.NOT_FOUND, f"no custodian {custodian.hex()}")
        if identity.role is not HealthRole.INSTITUTION or not identity.active:
            raise TxFailed(
                ResultCode.UNAUTHORIZED,
                f"custodian {custodian.hex()} is not an active institution nor the owner",
            )


def author_access(
    reader: ScanReader, sender: bytes, payload: CommitPayload, now_ms: int
) -> tuple[Identity, Access]:
    """The author (``sender``'s acting identity) and under what it may write this record:
    OWNER for the owner and a device paired to the owner, the treatment grant or emergency
    access of a practitioner; ``TxFailed(UNAUTHORIZED)`` for anyone else."""
    author = identity_of_sender(reader, sender)
    if author is None or not is_acting(reader, author):
        raise TxFailed(ResultCode.UNAUTHORIZED, "only an acting identity may commit records")
    if author.id == payload.owner:
        return author, Access(AccessBasis.OWNER, b"")
    if author.role is HealthRole.DEVICE:
        if author.parent != payload.owner:
            raise TxFailed(ResultCode.UNAUTHORIZED, "the device is not paired to the owner")
        return author, Access(AccessBasis.OWNER, b"")
    if author.role is HealthRole.PRACTITIONER:
        access = find_access(
            reader,
            patient=payload.owner,
            requester=author.id,
            resource_type=payload.resource_type,
            code=payload.code,
            data_time_ms=payload.data_time_ms,
            now_ms=now_ms,
            purposes=(Purpose.TREATMENT,),
        )
        if access is None:
            raise TxFailed(
                ResultCode.UNAUTHORIZED, "no treatment access to such data of the patient"
            )
        return author, access
    raise TxFailed(
        ResultCode.UNAUTHORIZED,
        "only the owner, a device paired to it or a practitioner with access may commit",
    )


def _check_commit(
    reader: ScanReader, sender: bytes, payload: CommitPayload, now_ms: int
) -> tuple[Identity, Access]:
    """Every rule of a commitment (both ``check_tx`` and ``deliver_tx``)."""
    check_commit_shape(reader, payload, now_ms)
    owner = require_identity(reader, payload.owner, (HealthRole.PATIENT,), "the owner")
    if payload.key_epoch > owner.key_epoch:
        raise TxFailed(
            ResultCode.INVALID_PAYLOAD,
            f"key epoch {payload.key_epoch} is ahead of the owner's ({owner.key_epoch})",
        )
    author, access = author_access(reader, sender, payload, now_ms)
    check_custodians(reader, payload.owner, payload.custodians)
    if reader.get(record_key(payload.record)) is not None:
        raise TxFailed(ResultCode.CONFLICT, f"record {payload.record.hex()} exists")
    return author, access


# -- the module ----------------------------------------------------------------------------

_PATH_LAYOUTS: Final = {"r": (ID_BYTES,), "o": (ID_BYTES, TIME_SEGMENT, ID_BYTES)}


class RecordsModule(Module):
    """Commitments to encrypted records and their erasure (see the module docstring)."""

    name = RECORDS
    actions = frozenset({"commit", "erase"})

    def check_tx(self, ctx: CheckContext, tx: Transaction) -> None:
        if tx.action == "commit":
            payload = decode_payload(COMMIT_PAYLOAD_CODEC, tx.payload)
            _check_commit(ctx.view, tx.sender, payload, ctx.block.time_ms)
        else:
            erase = decode_payload(ERASE_PAYLOAD_CODEC, tx.payload)
            require_sender(ctx.view, tx.sender, (HealthRole.PATIENT,), "erase its records")
            _check_erase_shape(erase)

    def deliver_tx(self, ctx: ExecContext, tx: Transaction) -> None:
        if tx.action == "commit":
            self._commit(ctx, decode_payload(COMMIT_PAYLOAD_CODEC, tx.payload))
        else:
            self._erase(ctx, decode_payload(ERASE_PAYLOAD_CODEC, tx.payload))

    def _commit(self, ctx: ExecContext, payload: CommitPayload) -> None:
        view, now_ms = ctx.view, ctx.block.time_ms
        author, access = _check_commit(view, ctx.require_sender(), payload, now_ms)
        record = RecordCommitment(
            id=payload.record,
            owner=payload.owner,
            author=author.id,
            author_basis=access.basis,
            author_basis_id=access.basis_id,
            resource_type=payload.resource_type,
            code=payload.code,
            ciphertext_sha256=payload.ciphertext_sha256,
            size_bytes=payload.size_bytes,
            custodians=payload.custodians,
            key_epoch=payload.key_epoch,
            data_time_ms=payload.data_time_ms,
            committed_ms=now_ms,
            erased=False,
            erased_ms=0,
        )
        view.set(record_key(record.id), RECORD_CODEC.encode(record))
        index = owner_index_key(record.owner, record.data_time_ms, record.id)
        view.set(index, record.resource_type.encode())
        ctx.emit(
            "committed",
            patient=record.owner,
            record=record.id,
            author=record.author,
            basis=record.author_basis.name.lower(),
            basis_id=record.author_basis_id,
            resource_type=record.resource_type,
            code=record.code,
            size_bytes=record.size_bytes,
            data_time_ms=record.data_time_ms,
        )
        # Readings by the patient or its devices close measurement reminders; care keeps
        # plans under care/p/<patient>, so without a plan (or without care) nothing is told.
        if (
            is_glucose_reading(record.resource_type, record.code)
            and access.basis is AccessBasis.OWNER
            and view.get(CARE_PLAN_PREFIX + record.owner) is not None
        ):
            notice = ReadingNotice(record.owner, record.id, record.data_time_ms)
            ctx.call("care", "reading_committed", READING_NOTICE_CODEC.encode(notice))

    def _erase(self, ctx: ExecContext, payload: ErasePayload) -> None:
        view = ctx.view
        patient = require_sender(
            view, ctx.require_sender(), (HealthRole.PATIENT,), "erase its records"
        )
        _check_erase_shape(payload)
        for record_id in payload.records:
            record = get_record(view, record_id)
            if record is None:
                raise TxFailed(ResultCode.NOT_FOUND, f"no record {record_id.hex()}")
            if record.owner != patient.id:
                raise TxFailed(
                    ResultCode.UNAUTHORIZED, f"only its owner may erase record {record_id.hex()}"
                )
            if record.erased:
                raise TxFailed(ResultCode.CONFLICT, f"record {record_id.hex()} is erased")
            erased = replace(record, erased=True, erased_ms=ctx.block.time_ms)
            view.set(record_key(record_id), RECORD_CODEC.encode(erased))
            # One attribute per custodian: eight ids in hex would not fit one attribute.
            custodians = {f"custodian_{i}": c for i, c in enumerate(record.custodians)}
            ctx.emit(
                "erased",
                patient=record.owner,
                record=record_id,
                custodian_count=len(record.custodians),
                **custodians,
            )

    # -- queries ----------------------------------------------------------------------------

    def query_key(self, path: str) -> bytes:
        return key_from_path(b"records/", path, _PATH_LAYOUTS)

    def render(self, key: bytes, value: bytes) -> JsonValue:
        if key.startswith(RECORD_PREFIX):
            try:
                return render_record(RECORD_CODEC.decode(value))
            except DecodeError as exc:
                raise AssertionError(f"corrupt record under {key!r}: {exc}") from exc
        if key.startswith(OWNER_INDEX_PREFIX):
            rest = key[len(OWNER_INDEX_PREFIX) :]
            return {
                "owner": rest[:ID_BYTES].hex(),
                "data_time_ms": int.from_bytes(rest[ID_BYTES : ID_BYTES + 8], "big"),
                "record": rest[ID_BYTES + 8 :].hex(),
                "resource_type": value.decode(),
            }
        return super().render(key, value)


def _check_erase_shape(payload: ErasePayload) -> None:
    if not payload.records:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "name at least one record to erase")
    if len(set(payload.records)) != len(payload.records):
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "a record is listed twice")


def render_record(record: RecordCommitment) -> dict[str, JsonValue]:
    """A commitment as JSON (ids and hashes as hex, the basis by name)."""
    custodians: list[JsonValue] = [custodian.hex() for custodian in record.custodians]
    return {
        "id": record.id.hex(),
        "owner": record.owner.hex(),
        "author": record.author.hex(),
        "author_basis": record.author_basis.name.lower(),
        "author_basis_id": record.author_basis_id.hex() or None,
        "resource_type": record.resource_type,
        "code": record.code,
        "ciphertext_sha256": record.ciphertext_sha256.hex(),
        "size_bytes": record.size_bytes,
        "custodians": custodians,
        "key_epoch": record.key_epoch,
        "data_time_ms": record.data_time_ms,
        "committed_ms": record.committed_ms,
        "erased": record.erased,
        "erased_ms": record.erased_ms or None,
    }

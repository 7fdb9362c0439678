"""Consent: the patient's grants (FHIR Consent) and emergency ("break-glass") access.

State (under ``consent/``):

- ``g/<patient><grant>`` -> ``Grant`` (kept after it ends, with its status: the history);
- ``x/<grantee><patient><grant>`` -> u64 expiry: the grantee index of *active* grants only
  (removed when a grant is revoked or expires), so ``find_access`` scans a bounded range;
- ``n/<patient>`` -> u64 number of active grants of the patient (at most
  ``MAX_ACTIVE_GRANTS_PER_PATIENT``);
- ``e/<patient><access>`` -> ``EmergencyAccess`` (kept after it closes);
- ``y/<practitioner><patient><access>`` -> u64 expiry: the index of *open* accesses.

Transactions: ``consent.grant`` (the patient), ``consent.revoke`` (the patient),
``consent.break_glass`` (an acting practitioner of an acting institution). Due tasks:
``expire`` (a grant reaches its expiry) and ``close`` (an emergency access ends).

``find_access`` is the one answer to "may this requester read such data of this patient
now, and on what basis": custodians, ``records``, ``care`` and ``referral`` all use it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Final, Protocol, TypeVar

from health.contracts.common import (
    CODE_PATTERN,
    FHIR_TYPE_PATTERN,
    ID_BYTES,
    MAX_CODE_CHARS,
    MAX_FHIR_TYPE_CHARS,
    Access,
    AccessBasis,
    HealthRole,
    Purpose,
    derive_id,
    get_identity,
    is_acting,
    param,
    read_struct,
    require_identity,
    require_sender,
    u64,
)
from node.app.due import DueTask
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

T = TypeVar("T")

CONSENT: Final = "consent"
GRANT_PREFIX: Final = b"consent/g/"
GRANTEE_INDEX_PREFIX: Final = b"consent/x/"
GRANT_COUNT_PREFIX: Final = b"consent/n/"
EMERGENCY_PREFIX: Final = b"consent/e/"
EMERGENCY_INDEX_PREFIX: Final = b"consent/y/"

GRANT_ID_DOMAIN: Final = b"bighealth/consent/grant/v1\x00"
EMERGENCY_ID_DOMAIN: Final = b"bighealth/consent/emergency/v1\x00"

MAX_GRANT_TYPES: Final = 16
MAX_GRANT_CODES: Final = 32
MAX_ACTIVE_GRANTS_PER_PATIENT: Final = 256
MAX_ACTIVE_GRANTS_PER_PAIR: Final = 16
"""Active grants of one patient to one grantee: also the bound of ``find_access``'s scans."""
MAX_LIST_ITEMS: Final = 1_000
OPEN_WINDOW: Final = 0
"""``data_from_ms`` / ``data_to_ms`` value meaning "no bound on that side"."""


class GrantStatus(IntEnum):
    """Where a grant is in its life (FHIR Consent: active, then inactive)."""

    ACTIVE = 1
    REVOKED = 2
    EXPIRED = 3


class ScanReader(KeyReader, Protocol):
    """A reader that also scans key ranges with a bound (``MeteredReader`` and
    ``MeteredView`` are ones): what ``find_access`` and the list helpers need."""

    def iterate(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` entries under ``prefix`` in key order."""
        ...


# -- payloads and records ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GrantPayload:
    """``consent.grant``: the sender (a patient) lets ``grantee`` (an acting practitioner or
    institution) read its data of ``resource_types`` and ``codes`` (empty: all) whose own
    time lies in ``[data_from_ms, data_to_ms]`` (0: open) for ``purpose`` until block time
    ``expires_ms``. ``referral``: the referral the grant answers (32 bytes) or empty."""

    grantee: bytes
    resource_types: tuple[str, ...]
    codes: tuple[str, ...]
    data_from_ms: int
    data_to_ms: int
    purpose: Purpose
    referral: bytes
    expires_ms: int


@dataclass(frozen=True, slots=True)
class RevokePayload:
    """``consent.revoke``: end the active grant ``grant`` of ``patient`` (the sender)."""

    patient: bytes
    grant: bytes


@dataclass(frozen=True, slots=True)
class BreakGlassPayload:
    """``consent.break_glass``: the sender (a practitioner) opens emergency access to
    ``patient``'s data, giving ``reason_code`` (e.g. ``v3-ActReason|ETREAT``)."""

    patient: bytes
    reason_code: str


@dataclass(frozen=True, slots=True)
class Grant:
    """A grant as stored (``consent/g/<patient><id>``). ``ended_ms``: when it was revoked
    or expired (0 while active); ``expiry_task``: the due task that expires it."""

    id: bytes
    patient: bytes
    grantee: bytes
    resource_types: tuple[str, ...]
    codes: tuple[str, ...]
    data_from_ms: int
    data_to_ms: int
    purpose: Purpose
    referral: bytes
    issued_ms: int
    expires_ms: int
    status: GrantStatus
    ended_ms: int
    expiry_task: bytes


@dataclass(frozen=True, slots=True)
class EmergencyAccess:
    """An emergency access as stored (``consent/e/<patient><id>``): open from
    ``opened_ms`` until ``expires_ms`` unless ``closed_ms`` (0 while open) says otherwise."""

    id: bytes
    patient: bytes
    practitioner: bytes
    institution: bytes
    reason_code: str
    opened_ms: int
    expires_ms: int
    open: bool
    closed_ms: int


_ID = Bytes.exactly(ID_BYTES)
_REFERRAL = Bytes(ID_BYTES)
_TYPES = ArrayOf(Text(MAX_FHIR_TYPE_CHARS, FHIR_TYPE_PATTERN), MAX_GRANT_TYPES)
_CODES = ArrayOf(Text(MAX_CODE_CHARS, CODE_PATTERN), MAX_GRANT_CODES)
_TASK = Bytes(64)
GRANT_PAYLOAD_CODEC: Final = StructCodec(
    GrantPayload,
    [
        ("grantee", _ID),
        ("resource_types", _TYPES),
        ("codes", _CODES),
        ("data_from_ms", UInt()),
        ("data_to_ms", UInt()),
        ("purpose", EnumOf(Purpose)),
        ("referral", _REFERRAL),
        ("expires_ms", UInt()),
    ],
    4096,
)
REVOKE_PAYLOAD_CODEC: Final = StructCodec(RevokePayload, [("patient", _ID), ("grant", _ID)], 128)
BREAK_GLASS_PAYLOAD_CODEC: Final = StructCodec(
    BreakGlassPayload,
    [("patient", _ID), ("reason_code", Text(MAX_CODE_CHARS, CODE_PATTERN))],
    256,
)
GRANT_CODEC: Final = StructCodec(
    Grant,
    [
        ("id", _ID),
        ("patient", _ID),
        ("grantee", _ID),
        ("resource_types", _TYPES),
        ("codes", _CODES),
        ("data_from_ms", UInt()),
        ("data_to_ms", UInt()),
        ("purpose", EnumOf(Purpose)),
        ("referral", _REFERRAL),
        ("issued_ms", UInt()),
        ("expires_ms", UInt()),
        ("status", EnumOf(GrantStatus)),
        ("ended_ms", UInt()),
        ("expiry_task", _TASK),
    ],
    4096,
)
EMERGENCY_CODEC: Final = StructCodec(
    EmergencyAccess,
    [
        ("id", _ID),
        ("patient", _ID),
        ("practitioner", _ID),
        ("institution", _ID),
        ("reason_code", Text(MAX_CODE_CHARS, CODE_PATTERN)),
        ("opened_ms", UInt()),
        ("expires_ms", UInt()),
        ("open", Bool()),
        ("closed_ms", UInt()),
    ],
    512,
)


# -- keys and reads ------------------------------------------------------------------------


def grant_key(patient: bytes, grant_id: bytes) -> bytes:
    """The state key of a grant."""
    return GRANT_PREFIX + patient + grant_id


def grantee_index_key(grantee: bytes, patient: bytes, grant_id: bytes) -> bytes:
    """The grantee-index entry of an active grant."""
    return GRANTEE_INDEX_PREFIX + grantee + patient + grant_id


def grant_count_key(patient: bytes) -> bytes:
    """The state key of the number of a patient's active grants."""
    return GRANT_COUNT_PREFIX + patient


def emergency_key(patient: bytes, access_id: bytes) -> bytes:
    """The state key of an emergency access."""
    return EMERGENCY_PREFIX + patient + access_id


def emergency_index_key(practitioner: bytes, patient: bytes, access_id: bytes) -> bytes:
    """The index entry of an open emergency access."""
    return EMERGENCY_INDEX_PREFIX + practitioner + patient + access_id


def get_grant(reader: KeyReader, patient: bytes, grant_id: bytes) -> Grant | None:
    """The grant ``grant_id`` of ``patient`` (whatever its status), or None."""
    return read_struct(reader, grant_key(patient, grant_id), GRANT_CODEC)


def get_emergency_access(
    reader: KeyReader, patient: bytes, access_id: bytes
) -> EmergencyAccess | None:
    """The emergency access ``access_id`` to ``patient`` (open or closed), or None."""
    return read_struct(reader, emergency_key(patient, access_id), EMERGENCY_CODEC)


def active_grant_count(reader: KeyReader, patient: bytes) -> int:
    """How many grants of ``patient`` are active."""
    stored = reader.get(grant_count_key(patient))
    return 0 if stored is None else int.from_bytes(stored, "big")


def list_grants(reader: ScanReader, patient: bytes, limit: int = MAX_LIST_ITEMS) -> list[Grant]:
    """Up to ``limit`` (1..1000) grants of ``patient``, every status, in grant-id order."""
    items = reader.iterate(GRANT_PREFIX + patient, limit)
    return [_decode(GRANT_CODEC, key, value) for key, value in items]


def list_emergency_accesses(
    reader: ScanReader, patient: bytes, limit: int = MAX_LIST_ITEMS
) -> list[EmergencyAccess]:
    """Up to ``limit`` (1..1000) emergency accesses to ``patient``, open or closed."""
    items = reader.iterate(EMERGENCY_PREFIX + patient, limit)
    return [_decode(EMERGENCY_CODEC, key, value) for key, value in items]


def active_grants_to(
    reader: ScanReader, grantee: bytes, patient: bytes, now_ms: int
) -> list[Grant]:
    """The grants of ``patient`` to ``grantee`` in force at ``now_ms`` (at most
    ``MAX_ACTIVE_GRANTS_PER_PAIR``, in grant-id order)."""
    prefix = GRANTEE_INDEX_PREFIX + grantee + patient
    grants: list[Grant] = []
    for key, _ in reader.iterate(prefix, MAX_ACTIVE_GRANTS_PER_PAIR):
        grant = get_grant(reader, patient, key[len(prefix) :])
        if grant is not None and grant_in_force(grant, now_ms):
            grants.append(grant)
    return grants


def _decode(codec: StructCodec[T], key: bytes, value: bytes) -> T:
    try:
        return codec.decode(value)
    except DecodeError as exc:  # our own writes are canonical: corruption is a bug
        raise AssertionError(f"corrupt record under {key!r}: {exc}") from exc


# -- the access decision -------------------------------------------------------------------


def grant_in_force(grant: Grant, now_ms: int) -> bool:
    """True while ``grant`` is active and not past its expiry (the expiry task may not
    have run yet in the block that reaches it, or at all when ``now_ms`` is a client's)."""
    return grant.status is GrantStatus.ACTIVE and now_ms < grant.expires_ms


def grant_covers(
    grant: Grant,
    *,
    resource_type: str,
    code: str,
    data_time_ms: int,
    now_ms: int,
    purposes: Collection[Purpose],
) -> bool:
    """True if ``grant`` is in force at ``now_ms`` and its scope covers data of
    ``resource_type`` and ``code`` whose own time is ``data_time_ms``, for one of
    ``purposes``. Empty type or code lists cover every type or code; a window bound of 0 is
    open; the window is inclusive."""
    if not grant_in_force(grant, now_ms) or grant.purpose not in purposes:
        return False
    if grant.resource_types and resource_type not in grant.resource_types:
        return False
    if grant.codes and code not in grant.codes:
        return False
    if grant.data_from_ms != OPEN_WINDOW and data_time_ms < grant.data_from_ms:
        return False
    return grant.data_to_ms == OPEN_WINDOW or data_time_ms <= grant.data_to_ms


def emergency_open(access: EmergencyAccess, now_ms: int) -> bool:
    """True while ``access`` is open and not past its end."""
    return access.open and now_ms < access.expires_ms


def find_access(
    reader: ScanReader,
    *,
    patient: bytes,
    requester: bytes,
    resource_type: str,
    code: str,
    data_time_ms: int,
    now_ms: int,
    purposes: Collection[Purpose],
) -> Access | None:
    """May ``requester`` (an identity id) read ``patient``'s data of ``resource_type`` and
    ``code`` taken at ``data_time_ms``, at ``now_ms``, for one of ``purposes``?

    - OWNER (empty basis id) when the requester is the patient;
    - GRANT (the grant id) when an active, unexpired grant of the patient to the requester,
      or to the institution of which the requester is an acting practitioner, covers the
      type, code, data time and a purpose (direct grants first, then in grant-id order);
    - EMERGENCY (the access id) when the requester, an acting practitioner, holds an open
      emergency access to the patient and TREATMENT is among ``purposes``;
    - else None.

    A requester that is not an acting identity (deactivated, or a practitioner of a
    suspended institution) gets None. Bounded: at most two index scans of
    ``MAX_ACTIVE_GRANTS_PER_PAIR`` entries and one of one entry.
    """
    if requester == patient:
        return Access(AccessBasis.OWNER, b"")
    identity = get_identity(reader, requester)
    if identity is None or not is_acting(reader, identity):
        return None
    grantees = [requester]
    if identity.role is HealthRole.PRACTITIONER:
        grantees.append(identity.parent)
    for grantee in grantees:
        for grant in active_grants_to(reader, grantee, patient, now_ms):
            if grant_covers(
                grant,
                resource_type=resource_type,
                code=code,
                data_time_ms=data_time_ms,
                now_ms=now_ms,
                purposes=purposes,
            ):
                return Access(AccessBasis.GRANT, grant.id)
    if identity.role is HealthRole.PRACTITIONER and Purpose.TREATMENT in purposes:
        access = open_emergency_access(reader, requester, patient, now_ms)
        if access is not None:
            return Access(AccessBasis.EMERGENCY, access.id)
    return None


def open_emergency_access(
    reader: ScanReader, practitioner: bytes, patient: bytes, now_ms: int
) -> EmergencyAccess | None:
    """The emergency access of ``practitioner`` to ``patient`` open at ``now_ms``, or None
    (a practitioner holds at most one open access per patient)."""
    prefix = EMERGENCY_INDEX_PREFIX + practitioner + patient
    for key, _ in reader.iterate(prefix, 1):
        access = get_emergency_access(reader, patient, key[len(prefix) :])
        if access is not None and emergency_open(access, now_ms):
            return access
    return None


# -- client helpers ------------------------------------------------------------------------


def grant_payload(
    grantee: bytes,
    *,
    expires_ms: int,
    purpose: Purpose = Purpose.TREATMENT,
    resource_types: Sequence[str] = (),
    codes: Sequence[str] = (),
    data_from_ms: int = OPEN_WINDOW,
    data_to_ms: int = OPEN_WINDOW,
    referral: bytes = b"",
) -> bytes:
    """The payload of a ``consent.grant`` transaction (client helper)."""
    payload = GrantPayload(
        grantee=grantee,
        resource_types=tuple(resource_types),
        codes=tuple(codes),
        data_from_ms=data_from_ms,
        data_to_ms=data_to_ms,
        purpose=purpose,
        referral=referral,
        expires_ms=expires_ms,
    )
    return GRANT_PAYLOAD_CODEC.encode(payload)


def revoke_payload(patient: bytes, grant_id: bytes) -> bytes:
    """The payload of a ``consent.revoke`` transaction (client helper)."""
    return REVOKE_PAYLOAD_CODEC.encode(RevokePayload(patient, grant_id))


def break_glass_payload(patient: bytes, reason_code: str) -> bytes:
    """The payload of a ``consent.break_glass`` transaction (client helper)."""
    return BREAK_GLASS_PAYLOAD_CODEC.encode(BreakGlassPayload(patient, reason_code))


# -- query paths ---------------------------------------------------------------------------

TIME_SEGMENT: Final = 0
"""In a path layout: a segment that is a decimal time in ms, stored as u64 big-endian."""
_HEX_PATTERN: Final = re.compile(r"(?:[0-9a-fA-F]{2})+", re.ASCII)
_DECIMAL_PATTERN: Final = re.compile(r"[0-9]{1,20}", re.ASCII)


def key_from_path(namespace: bytes, path: str, layouts: Mapping[str, Sequence[int]]) -> bytes:
    """The state key a readable query path names: ``<letter>[/<segment>...]``, where
    ``layouts[letter]`` gives the byte length of each segment (a hex id) or
    ``TIME_SEGMENT`` (decimal ms). Fewer segments than the layout name a key prefix
    (``g/<hex patient>``). ``ValueError`` for anything else."""
    letter, *segments = path.strip("/").split("/")
    layout = layouts.get(letter)
    if layout is None:
        names = ", ".join(sorted(layouts))
        raise ValueError(f"unknown path {path!r}: it starts with one of {names}")
    if len(segments) > len(layout):
        raise ValueError(f"path {path!r} has more than {len(layout)} segments")
    key = namespace + letter.encode() + b"/"
    for text, size in zip(segments, layout, strict=False):
        key += _segment_bytes(text, size, path)
    return key


def _segment_bytes(text: str, size: int, path: str) -> bytes:
    if size == TIME_SEGMENT:
        if _DECIMAL_PATTERN.fullmatch(text) is None or int(text) >= 1 << 64:
            raise ValueError(f"path {path!r}: {text!r} is not a time in ms")
        return u64(int(text))
    if _HEX_PATTERN.fullmatch(text) is None or len(text) != 2 * size:
        raise ValueError(f"path {path!r}: {text!r} is not the hex of {size} bytes")
    return bytes.fromhex(text)


# -- the module ----------------------------------------------------------------------------

_GRANTEE_ROLES: Final = (HealthRole.PRACTITIONER, HealthRole.INSTITUTION)
_PATIENT: Final = (HealthRole.PATIENT,)
_PRACTITIONER: Final = (HealthRole.PRACTITIONER,)
_PATH_LAYOUTS: Final[Mapping[str, Sequence[int]]] = {
    "g": (ID_BYTES, ID_BYTES),
    "x": (ID_BYTES, ID_BYTES, ID_BYTES),
    "n": (ID_BYTES,),
    "e": (ID_BYTES, ID_BYTES),
    "y": (ID_BYTES, ID_BYTES, ID_BYTES),
}


def check_grant_shape(payload: GrantPayload, now_ms: int, max_grant_ms: int) -> None:
    """Refuse (``TxFailed``) a grant whose own fields do not fit: a type or code listed
    twice, a data window that ends before it starts, a referral id that is not 32 bytes, an
    expiry not after ``now_ms`` (INVALID_PAYLOAD) or more than ``max_grant_ms`` after it
    (LIMIT_EXCEEDED)."""
    if len(set(payload.resource_types)) != len(payload.resource_types):
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "a resource type is listed twice")
    if len(set(payload.codes)) != len(payload.codes):
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "a code is listed twice")
    if payload.data_to_ms != OPEN_WINDOW and payload.data_from_ms > payload.data_to_ms:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "the data window ends before it starts")
    if len(payload.referral) not in (0, ID_BYTES):
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "a referral id is 32 bytes (or empty)")
    if payload.expires_ms <= now_ms:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "the grant would expire before it starts")
    if payload.expires_ms - now_ms > max_grant_ms:
        raise TxFailed(
            ResultCode.LIMIT_EXCEEDED, f"a grant lasts at most {max_grant_ms} ms (max_grant_ms)"
        )


class ConsentModule(Module):
    """Grants, revocations, expiry and emergency access (see the module docstring)."""

    name = CONSENT
    actions = frozenset({"grant", "revoke", "break_glass"})

    def check_tx(self, ctx: CheckContext, tx: Transaction) -> None:
        view = ctx.view
        if tx.action == "grant":
            payload = decode_payload(GRANT_PAYLOAD_CODEC, tx.payload)
            require_sender(view, tx.sender, _PATIENT, "grant access to its data")
            check_grant_shape(payload, ctx.block.time_ms, param(view, "max_grant_ms"))
        elif tx.action == "revoke":
            revoke = decode_payload(REVOKE_PAYLOAD_CODEC, tx.payload)
            patient = require_sender(view, tx.sender, _PATIENT, "revoke a grant")
            _require_own(patient.id, revoke.patient)
        else:
            decode_payload(BREAK_GLASS_PAYLOAD_CODEC, tx.payload)
            require_sender(view, tx.sender, _PRACTITIONER, "open emergency access")
            _require_emergency_enabled(view)

    def deliver_tx(self, ctx: ExecContext, tx: Transaction) -> None:
        if tx.action == "grant":
            self._grant(ctx, decode_payload(GRANT_PAYLOAD_CODEC, tx.payload))
        elif tx.action == "revoke":
            self._revoke(ctx, decode_payload(REVOKE_PAYLOAD_CODEC, tx.payload))
        else:
            self._break_glass(ctx, decode_payload(BREAK_GLASS_PAYLOAD_CODEC, tx.payload))

    def _grant(self, ctx: ExecContext, payload: GrantPayload) -> None:
        view, now_ms = ctx.view, ctx.block.time_ms
        patient = require_sender(view, ctx.require_sender(), _PATIENT, "grant access to its data")
        check_grant_shape(payload, now_ms, param(view, "max_grant_ms"))
        require_identity(view, payload.grantee, _GRANTEE_ROLES, "the grantee")
        count = active_grant_count(view, patient.id)
        if count >= MAX_ACTIVE_GRANTS_PER_PATIENT:
            raise TxFailed(
                ResultCode.LIMIT_EXCEEDED,
                f"a patient holds at most {MAX_ACTIVE_GRANTS_PER_PATIENT} active grants",
            )
        pair = GRANTEE_INDEX_PREFIX + payload.grantee + patient.id
        if len(view.iterate(pair, MAX_ACTIVE_GRANTS_PER_PAIR)) >= MAX_ACTIVE_GRANTS_PER_PAIR:
            raise TxFailed(
                ResultCode.LIMIT_EXCEEDED,
                f"at most {MAX_ACTIVE_GRANTS_PER_PAIR} active grants to one grantee",
            )
        grant_id = derive_id(GRANT_ID_DOMAIN, ctx.tx_hash)
        task = ctx.schedule(payload.expires_ms, "expire", patient.id + grant_id)
        grant = Grant(
            id=grant_id,
            patient=patient.id,
            grantee=payload.grantee,
            resource_types=payload.resource_types,
            codes=payload.codes,
            data_from_ms=payload.data_from_ms,
            data_to_ms=payload.data_to_ms,
            purpose=payload.purpose,
            referral=payload.referral,
            issued_ms=now_ms,
            expires_ms=payload.expires_ms,
            status=GrantStatus.ACTIVE,
            ended_ms=0,
            expiry_task=task,
        )
        view.set(grant_key(patient.id, grant_id), GRANT_CODEC.encode(grant))
        view.set(grantee_index_key(grant.grantee, patient.id, grant_id), u64(grant.expires_ms))
        view.set(grant_count_key(patient.id), u64(count + 1))
        ctx.emit(
            "granted",
            patient=patient.id,
            grantee=grant.grantee,
            grant=grant_id,
            purpose=grant.purpose.name.lower(),
            expires_ms=grant.expires_ms,
            referral=grant.referral,
        )

    def _revoke(self, ctx: ExecContext, payload: RevokePayload) -> None:
        patient = require_sender(ctx.view, ctx.require_sender(), _PATIENT, "revoke a grant")
        _require_own(patient.id, payload.patient)
        grant = get_grant(ctx.view, payload.patient, payload.grant)
        if grant is None:
            raise TxFailed(ResultCode.NOT_FOUND, f"no grant {payload.grant.hex()}")
        if grant.status is not GrantStatus.ACTIVE:
            raise TxFailed(ResultCode.CONFLICT, f"the grant is {grant.status.name.lower()}")
        ctx.cancel(grant.expiry_task)
        _end_grant(ctx, grant, GrantStatus.REVOKED)
        ctx.emit("revoked", patient=grant.patient, grantee=grant.grantee, grant=grant.id)

    def _break_glass(self, ctx: ExecContext, payload: BreakGlassPayload) -> None:
        view, now_ms = ctx.view, ctx.block.time_ms
        practitioner = require_sender(
            view, ctx.require_sender(), _PRACTITIONER, "open emergency access"
        )
        duration_ms = _require_emergency_enabled(view)
        require_identity(view, payload.patient, _PATIENT, "the patient")
        prefix = EMERGENCY_INDEX_PREFIX + practitioner.id + payload.patient
        for key, _ in view.iterate(prefix, 1):
            previous = get_emergency_access(view, payload.patient, key[len(prefix) :])
            if previous is not None and emergency_open(previous, now_ms):
                raise TxFailed(
                    ResultCode.CONFLICT, f"emergency access open until {previous.expires_ms}"
                )
            if previous is not None:  # ended, but its close task has not run yet
                _close_access(ctx, previous)
        access_id = derive_id(EMERGENCY_ID_DOMAIN, ctx.tx_hash)
        access = EmergencyAccess(
            id=access_id,
            patient=payload.patient,
            practitioner=practitioner.id,
            institution=practitioner.parent,
            reason_code=payload.reason_code,
            opened_ms=now_ms,
            expires_ms=now_ms + duration_ms,
            open=True,
            closed_ms=0,
        )
        ctx.schedule(access.expires_ms, "close", access.patient + access_id)
        view.set(emergency_key(access.patient, access_id), EMERGENCY_CODEC.encode(access))
        index = emergency_index_key(access.practitioner, access.patient, access_id)
        view.set(index, u64(access.expires_ms))
        ctx.emit(
            "emergency_opened",
            patient=access.patient,
            practitioner=access.practitioner,
            institution=access.institution,
            access=access_id,
            expires_ms=access.expires_ms,
            reason_code=access.reason_code,
        )

    # -- due work ---------------------------------------------------------------------------

    def on_due(self, ctx: ExecContext, task: DueTask) -> None:
        if task.kind not in ("expire", "close") or len(task.payload) != 2 * ID_BYTES:
            raise TxFailed(ResultCode.UNKNOWN_KIND, f"consent has no task {task.kind!r}")
        patient, object_id = task.payload[:ID_BYTES], task.payload[ID_BYTES:]
        if task.kind == "expire":
            grant = get_grant(ctx.view, patient, object_id)
            # Revoking cancels the task; the guards keep a stray task harmless anyway.
            if grant is None or grant.status is not GrantStatus.ACTIVE:
                return
            if grant.expiry_task != task.task_id:
                return
            _end_grant(ctx, grant, GrantStatus.EXPIRED)
            ctx.emit("expired", patient=grant.patient, grantee=grant.grantee, grant=grant.id)
        else:
            access = get_emergency_access(ctx.view, patient, object_id)
            if access is not None and access.open:
                _close_access(ctx, access)

    # -- queries ----------------------------------------------------------------------------

    def query_key(self, path: str) -> bytes:
        return key_from_path(b"consent/", path, _PATH_LAYOUTS)

    def render(self, key: bytes, value: bytes) -> JsonValue:
        if key.startswith(GRANT_PREFIX):
            return render_consent(_decode(GRANT_CODEC, key, value))
        if key.startswith(EMERGENCY_PREFIX):
            return render_emergency(_decode(EMERGENCY_CODEC, key, value))
        if key.startswith(GRANTEE_INDEX_PREFIX):
            ids = _split_ids(key[len(GRANTEE_INDEX_PREFIX) :], 3)
            names = ("grantee", "patient", "grant")
            return {**dict(zip(names, ids, strict=True)), "expires_ms": _u64_of(value)}
        if key.startswith(EMERGENCY_INDEX_PREFIX):
            ids = _split_ids(key[len(EMERGENCY_INDEX_PREFIX) :], 3)
            names = ("practitioner", "patient", "access")
            return {**dict(zip(names, ids, strict=True)), "expires_ms": _u64_of(value)}
        if key.startswith(GRANT_COUNT_PREFIX):
            patient = key[len(GRANT_COUNT_PREFIX) :].hex()
            return {"patient": patient, "active_grants": _u64_of(value)}
        return super().render(key, value)


def _require_own(sender_id: bytes, patient: bytes) -> None:
    if sender_id != patient:
        raise TxFailed(ResultCode.UNAUTHORIZED, "only the patient may revoke its grants")


def _require_emergency_enabled(reader: KeyReader) -> int:
    duration_ms = param(reader, "emergency_access_ms")
    if duration_ms == 0:
        raise TxFailed(ResultCode.UNAUTHORIZED, "emergency access is disabled by governance")
    return duration_ms


def _end_grant(ctx: ExecContext, grant: Grant, status: GrantStatus) -> None:
    """Mark ``grant`` ended now, drop it from the grantee index and the active count."""
    ended = replace(grant, status=status, ended_ms=ctx.block.time_ms)
    ctx.view.set(grant_key(grant.patient, grant.id), GRANT_CODEC.encode(ended))
    ctx.view.delete(grantee_index_key(grant.grantee, grant.patient, grant.id))
    count = active_grant_count(ctx.view, grant.patient)
    if count <= 1:
        ctx.view.delete(grant_count_key(grant.patient))
    else:
        ctx.view.set(grant_count_key(grant.patient), u64(count - 1))


def _close_access(ctx: ExecContext, access: EmergencyAccess) -> None:
    """Close ``access`` now (it ended) and tell the patient."""
    closed = replace(access, open=False, closed_ms=ctx.block.time_ms)
    ctx.view.set(emergency_key(access.patient, access.id), EMERGENCY_CODEC.encode(closed))
    ctx.view.delete(emergency_index_key(access.practitioner, access.patient, access.id))
    ctx.emit(
        "emergency_closed",
        patient=access.patient,
        practitioner=access.practitioner,
        institution=access.institution,
        access=access.id,
    )


# -- rendering -----------------------------------------------------------------------------


def render_consent(grant: Grant) -> dict[str, JsonValue]:
    """A grant in the shape of a FHIR R4 ``Consent`` (ids as hex, times in ms): ``status``
    is FHIR's (``active``/``inactive``), ``state`` the chain's (``active``, ``revoked``,
    ``expired``)."""
    active = grant.status is GrantStatus.ACTIVE
    classes: list[JsonValue] = list(grant.resource_types)
    codes: list[JsonValue] = list(grant.codes)
    data_period: dict[str, JsonValue] = {
        "start": grant.data_from_ms or None,
        "end": grant.data_to_ms or None,
    }
    provision: dict[str, JsonValue] = {
        "type": "permit",
        "period": {"start": grant.issued_ms, "end": grant.expires_ms},
        "actor": [{"role": "grantee", "reference": grant.grantee.hex()}],
        "purpose": [grant.purpose.name.lower()],
        "class": classes,
        "code": codes,
        "dataPeriod": data_period,
    }
    return {
        "resourceType": "Consent",
        "id": grant.id.hex(),
        "status": "active" if active else "inactive",
        "state": grant.status.name.lower(),
        "patient": grant.patient.hex(),
        "dateTime": grant.issued_ms,
        "provision": provision,
        "referral": grant.referral.hex() or None,
        "ended_ms": grant.ended_ms or None,
    }


def render_emergency(access: EmergencyAccess) -> dict[str, JsonValue]:
    """An emergency access as JSON (ids as hex)."""
    return {
        "id": access.id.hex(),
        "patient": access.patient.hex(),
        "practitioner": access.practitioner.hex(),
        "institution": access.institution.hex(),
        "reason_code": access.reason_code,
        "opened_ms": access.opened_ms,
        "expires_ms": access.expires_ms,
        "open": access.open,
        "closed_ms": access.closed_ms or None,
    }


def _split_ids(data: bytes, count: int) -> list[str]:
    return [data[i * ID_BYTES : (i + 1) * ID_BYTES].hex() for i in range(count)]


def _u64_of(value: bytes) -> int:
    return int.from_bytes(value, "big")

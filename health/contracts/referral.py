"""Referrals: a practitioner refers a patient to a specialist (docs/HEALTH.md, referral).

State (under ``referral/``):

- ``r/<referral>`` -> ``Referral``: who referred whom to whom, why, its status and expiry;
- ``i/<to><referral>``, ``o/<from practitioner><referral>``, ``p/<patient><referral>``:
  empty index entries, so each side and the patient list their referrals.

Transactions:

- ``referral.request``: an acting practitioner with a treatment access to the patient
  (``find_access`` for the patient's ``Patient`` resource, code "": what an all-data grant,
  or one naming ``Patient``, or an emergency access gives) refers it to an acting
  practitioner or institution, with a specialty, a reason code and an expiry (in the
  future, at most ``MAX_REFERRAL_MS`` ahead); the id is ``derive_id`` of the transaction;
- ``referral.accept``: the target practitioner, or an acting practitioner of the target
  institution, once the patient holds an active treatment grant naming the referral to the
  accepting practitioner or its institution;
- ``referral.decline``: the target (the practitioner or institution named, a practitioner of
  the target institution, or the practitioner who accepted it);
- ``referral.answer``: the accepting practitioner names a committed record of the patient
  it authored (a consultation note, a plan change) since the referral was made;
- ``referral.close``: the referring practitioner, once accepted or answered.

Status: REQUESTED -> ACCEPTED | DECLINED | EXPIRED; ACCEPTED -> ANSWERED | DECLINED |
CLOSED | EXPIRED; ANSWERED -> CLOSED. The due task ``expire`` ends a referral still
REQUESTED or ACCEPTED at its expiry (declining, answering and closing cancel it). Events
``referral.<requested|accepted|declined|answered|closed|expired>`` carry ``patient``,
``from``, ``to`` and ``referral``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Final

from health.contracts.common import (
    CODE_PATTERN,
    DAY_MS,
    ID_BYTES,
    MAX_CODE_CHARS,
    NAME_PATTERN,
    AccessBasis,
    HealthRole,
    Identity,
    Purpose,
    derive_id,
    read_struct,
    require_identity,
    require_sender,
)
from health.contracts.consent import (
    ScanReader,
    active_grants_to,
    find_access,
    key_from_path,
)
from health.contracts.records import get_record
from node.app.due import DUE_KEY_BYTES, DueTask
from node.app.errors import TxFailed
from node.app.module import (
    CheckContext,
    ExecContext,
    JsonValue,
    KeyReader,
    Module,
    decode_payload,
)
from node.codec import Bytes, EnumOf, StructCodec, Text, UInt
from node.errors import DecodeError
from node.types import ResultCode, Transaction

REFERRAL: Final = "referral"
REFERRAL_PREFIX: Final = b"referral/r/"
INCOMING_PREFIX: Final = b"referral/i/"
OUTGOING_PREFIX: Final = b"referral/o/"
PATIENT_INDEX_PREFIX: Final = b"referral/p/"
REFERRAL_ID_DOMAIN: Final = b"bighealth/referral/v1\x00"
MAX_REFERRAL_MS: Final = 90 * DAY_MS
"""A referral expires at most 90 days after it is made."""
REFERRER_RESOURCE_TYPE: Final = "Patient"
"""The data a referrer must have a treatment access to: the patient (FHIR ``Patient``)."""
MAX_LIST_ITEMS: Final = 1_000


class ReferralStatus(IntEnum):
    """Where a referral is in its life."""

    REQUESTED = 1
    ACCEPTED = 2
    DECLINED = 3
    ANSWERED = 4
    CLOSED = 5
    EXPIRED = 6


@dataclass(frozen=True, slots=True)
class Referral:
    """A referral as stored (``referral/r/<id>``). ``to``: a practitioner or an
    institution; ``accepted_by``: the practitioner who accepted (empty before);
    ``answer_record``: the record answering it (empty before); ``expiry_task``: the pending
    expiry (empty once the referral can no longer expire); ``updated_ms``: the last change."""

    id: bytes
    patient: bytes
    from_practitioner: bytes
    from_institution: bytes
    to: bytes
    specialty: str
    reason_code: str
    status: ReferralStatus
    created_ms: int
    expires_ms: int
    accepted_by: bytes
    answer_record: bytes
    expiry_task: bytes
    updated_ms: int


@dataclass(frozen=True, slots=True)
class RequestPayload:
    """``referral.request``: refer ``patient`` to ``to`` for ``specialty`` (a chain name,
    e.g. ``endocrinology``) because of ``reason_code`` (e.g. ``http://snomed.info/sct|
    44054006``) until block time ``expires_ms``."""

    patient: bytes
    to: bytes
    specialty: str
    reason_code: str
    expires_ms: int


@dataclass(frozen=True, slots=True)
class ReferralRef:
    """``referral.accept`` and ``referral.close``: the referral acted on."""

    referral: bytes


@dataclass(frozen=True, slots=True)
class DeclinePayload:
    """``referral.decline``: the referral and why ("" or a code)."""

    referral: bytes
    reason_code: str


@dataclass(frozen=True, slots=True)
class AnswerPayload:
    """``referral.answer``: the committed record that answers the referral."""

    referral: bytes
    answer_record: bytes


_ID = Bytes.exactly(ID_BYTES)
_SPECIALTY = Text(32, NAME_PATTERN)
_CODE = Text(MAX_CODE_CHARS, CODE_PATTERN)
_CODE_OR_EMPTY = re.compile(r"|" + CODE_PATTERN.pattern, re.ASCII)
REFERRAL_CODEC: Final = StructCodec(
    Referral,
    [
        ("id", _ID),
        ("patient", _ID),
        ("from_practitioner", _ID),
        ("from_institution", _ID),
        ("to", _ID),
        ("specialty", _SPECIALTY),
        ("reason_code", _CODE),
        ("status", EnumOf(ReferralStatus)),
        ("created_ms", UInt()),
        ("expires_ms", UInt()),
        ("accepted_by", Bytes(ID_BYTES)),
        ("answer_record", Bytes(ID_BYTES)),
        ("expiry_task", Bytes(DUE_KEY_BYTES)),
        ("updated_ms", UInt()),
    ],
    1024,
)
REQUEST_CODEC: Final = StructCodec(
    RequestPayload,
    [
        ("patient", _ID),
        ("to", _ID),
        ("specialty", _SPECIALTY),
        ("reason_code", _CODE),
        ("expires_ms", UInt()),
    ],
    512,
)
REFERRAL_REF_CODEC: Final = StructCodec(ReferralRef, [("referral", _ID)], 64)
DECLINE_CODEC: Final = StructCodec(
    DeclinePayload,
    [("referral", _ID), ("reason_code", Text(MAX_CODE_CHARS, _CODE_OR_EMPTY))],
    256,
)
ANSWER_CODEC: Final = StructCodec(AnswerPayload, [("referral", _ID), ("answer_record", _ID)], 128)


# -- keys, reads, client helpers -----------------------------------------------------------


def referral_key(referral_id: bytes) -> bytes:
    """The state key of a referral."""
    return REFERRAL_PREFIX + referral_id


def index_keys(referral: Referral) -> tuple[bytes, bytes, bytes]:
    """The three index entries of a referral: incoming (target), outgoing (referrer),
    patient."""
    return (
        INCOMING_PREFIX + referral.to + referral.id,
        OUTGOING_PREFIX + referral.from_practitioner + referral.id,
        PATIENT_INDEX_PREFIX + referral.patient + referral.id,
    )


def get_referral(reader: KeyReader, referral_id: bytes) -> Referral | None:
    """The referral ``referral_id`` (whatever its status), or None."""
    return read_struct(reader, referral_key(referral_id), REFERRAL_CODEC)


def _list(reader: ScanReader, prefix: bytes, limit: int) -> list[Referral]:
    found: list[Referral] = []
    for key, _ in reader.iterate(prefix, limit):
        referral = get_referral(reader, key[-ID_BYTES:])
        if referral is None:
            raise AssertionError(f"referral index entry {key!r} without a referral")
        found.append(referral)
    return found


def list_incoming(reader: ScanReader, to: bytes, limit: int = MAX_LIST_ITEMS) -> list[Referral]:
    """Up to ``limit`` (1..1000) referrals to the practitioner or institution ``to``, every
    status, in id order."""
    return _list(reader, INCOMING_PREFIX + to, limit)


def list_outgoing(
    reader: ScanReader, practitioner: bytes, limit: int = MAX_LIST_ITEMS
) -> list[Referral]:
    """Up to ``limit`` (1..1000) referrals made by ``practitioner``, in id order."""
    return _list(reader, OUTGOING_PREFIX + practitioner, limit)


def list_for_patient(
    reader: ScanReader, patient: bytes, limit: int = MAX_LIST_ITEMS
) -> list[Referral]:
    """Up to ``limit`` (1..1000) referrals of ``patient``, in id order."""
    return _list(reader, PATIENT_INDEX_PREFIX + patient, limit)


def request_payload(
    patient: bytes, to: bytes, *, specialty: str, reason_code: str, expires_ms: int
) -> bytes:
    """The payload of ``referral.request`` (client helper)."""
    return REQUEST_CODEC.encode(RequestPayload(patient, to, specialty, reason_code, expires_ms))


def accept_payload(referral_id: bytes) -> bytes:
    """The payload of ``referral.accept`` (client helper)."""
    return REFERRAL_REF_CODEC.encode(ReferralRef(referral_id))


def decline_payload(referral_id: bytes, reason_code: str = "") -> bytes:
    """The payload of ``referral.decline`` (client helper)."""
    return DECLINE_CODEC.encode(DeclinePayload(referral_id, reason_code))


def answer_payload(referral_id: bytes, answer_record: bytes) -> bytes:
    """The payload of ``referral.answer`` (client helper)."""
    return ANSWER_CODEC.encode(AnswerPayload(referral_id, answer_record))


def close_payload(referral_id: bytes) -> bytes:
    """The payload of ``referral.close`` (client helper)."""
    return REFERRAL_REF_CODEC.encode(ReferralRef(referral_id))


# -- rules (shared by check_tx and deliver_tx) ---------------------------------------------

_PRACTITIONER: Final = (HealthRole.PRACTITIONER,)
_TARGET_ROLES: Final = (HealthRole.PRACTITIONER, HealthRole.INSTITUTION)


def check_request(
    reader: ScanReader, sender: bytes, payload: RequestPayload, now_ms: int
) -> Identity:
    """The referring practitioner, if ``payload`` may be requested by ``sender`` now:
    an expiry in the future (INVALID_PAYLOAD) at most ``MAX_REFERRAL_MS`` ahead
    (LIMIT_EXCEEDED), an acting patient and target, not the sender itself, and a treatment
    access of the sender to the patient (UNAUTHORIZED)."""
    if payload.expires_ms <= now_ms:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "the referral would expire before it starts")
    if payload.expires_ms - now_ms > MAX_REFERRAL_MS:
        raise TxFailed(ResultCode.LIMIT_EXCEEDED, f"a referral lasts at most {MAX_REFERRAL_MS} ms")
    referrer = require_sender(reader, sender, _PRACTITIONER, "refer a patient")
    require_identity(reader, payload.patient, (HealthRole.PATIENT,), "the referred patient")
    require_identity(reader, payload.to, _TARGET_ROLES, "the referral's target")
    if payload.to == referrer.id:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "a practitioner cannot refer to itself")
    access = find_access(
        reader,
        patient=payload.patient,
        requester=referrer.id,
        resource_type=REFERRER_RESOURCE_TYPE,
        code="",
        data_time_ms=now_ms,
        now_ms=now_ms,
        purposes=(Purpose.TREATMENT,),
    )
    if access is None or access.basis not in (AccessBasis.GRANT, AccessBasis.EMERGENCY):
        raise TxFailed(ResultCode.UNAUTHORIZED, "no treatment access to this patient")
    return referrer


def require_referral(reader: KeyReader, referral_id: bytes) -> Referral:
    """The referral ``referral_id``, else ``TxFailed(NOT_FOUND)``."""
    referral = get_referral(reader, referral_id)
    if referral is None:
        raise TxFailed(ResultCode.NOT_FOUND, f"no referral {referral_id.hex()}")
    return referral


def _require_status(referral: Referral, *allowed: ReferralStatus) -> None:
    if referral.status not in allowed:
        raise TxFailed(ResultCode.CONFLICT, f"the referral is {referral.status.name.lower()}")


def is_target(identity: Identity, referral: Referral) -> bool:
    """True if ``identity`` is the referral's target or a practitioner of the target
    institution."""
    if identity.id == referral.to:
        return True
    return identity.role is HealthRole.PRACTITIONER and identity.parent == referral.to


def referral_grant(
    reader: ScanReader, accepter: Identity, referral: Referral, now_ms: int
) -> bytes:
    """The id of an active treatment grant of the patient that names ``referral``, to
    ``accepter`` or to its institution; ``TxFailed(UNAUTHORIZED)`` if there is none. Bounded:
    two grantee-index scans of ``consent.MAX_ACTIVE_GRANTS_PER_PAIR`` entries."""
    for grantee in (accepter.id, accepter.parent):
        for grant in active_grants_to(reader, grantee, referral.patient, now_ms):
            if grant.referral == referral.id and grant.purpose is Purpose.TREATMENT:
                return grant.id
    raise TxFailed(
        ResultCode.UNAUTHORIZED, "the patient has granted no treatment access for this referral"
    )


def check_accept(
    reader: ScanReader, sender: bytes, referral_id: bytes, now_ms: int
) -> tuple[Referral, Identity, bytes]:
    """The referral, the accepting practitioner and the patient's grant, if ``sender`` may
    accept it now: REQUESTED and unexpired (CONFLICT), the sender its target (UNAUTHORIZED),
    and the patient's grant naming it."""
    referral = require_referral(reader, referral_id)
    _require_status(referral, ReferralStatus.REQUESTED)
    if now_ms >= referral.expires_ms:
        raise TxFailed(ResultCode.CONFLICT, "the referral has expired")
    accepter = require_sender(reader, sender, _PRACTITIONER, "accept a referral")
    if not is_target(accepter, referral):
        raise TxFailed(ResultCode.UNAUTHORIZED, "only the referral's target may accept it")
    return referral, accepter, referral_grant(reader, accepter, referral, now_ms)


def check_decline(
    reader: KeyReader, sender: bytes, referral_id: bytes
) -> tuple[Referral, Identity]:
    """The referral and the declining identity: the target (or a practitioner of the target
    institution) while REQUESTED, the accepting practitioner once ACCEPTED."""
    referral = require_referral(reader, referral_id)
    _require_status(referral, ReferralStatus.REQUESTED, ReferralStatus.ACCEPTED)
    decliner = require_sender(reader, sender, _TARGET_ROLES, "decline a referral")
    if referral.status is ReferralStatus.ACCEPTED:
        allowed = decliner.id == referral.accepted_by
    else:
        allowed = is_target(decliner, referral)
    if not allowed:
        raise TxFailed(ResultCode.UNAUTHORIZED, "only the referral's target may decline it")
    return referral, decliner


def check_answer(reader: KeyReader, sender: bytes, payload: AnswerPayload) -> Referral:
    """The referral, if ``sender`` (its accepting practitioner) may answer it with
    ``payload.answer_record``: ACCEPTED (CONFLICT); a committed record (NOT_FOUND) of the
    patient (INVALID_PAYLOAD), authored by the sender (UNAUTHORIZED) since the referral was
    made (INVALID_PAYLOAD), not erased (CONFLICT)."""
    referral = require_referral(reader, payload.referral)
    _require_status(referral, ReferralStatus.ACCEPTED)
    answerer = require_sender(reader, sender, _PRACTITIONER, "answer a referral")
    if answerer.id != referral.accepted_by:
        raise TxFailed(ResultCode.UNAUTHORIZED, "only the accepting practitioner may answer")
    record = get_record(reader, payload.answer_record)
    if record is None:
        raise TxFailed(ResultCode.NOT_FOUND, f"no record {payload.answer_record.hex()}")
    if record.owner != referral.patient:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "the record is not the patient's")
    if record.author != answerer.id:
        raise TxFailed(ResultCode.UNAUTHORIZED, "the record was not written by the answerer")
    if record.committed_ms < referral.created_ms:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "the record predates the referral")
    if record.erased:
        raise TxFailed(ResultCode.CONFLICT, "the record is erased")
    return referral


def check_close(reader: KeyReader, sender: bytes, referral_id: bytes) -> Referral:
    """The referral, if ``sender`` is its referring practitioner (UNAUTHORIZED) and it is
    ACCEPTED or ANSWERED (CONFLICT)."""
    referral = require_referral(reader, referral_id)
    closer = require_sender(reader, sender, _PRACTITIONER, "close a referral")
    if closer.id != referral.from_practitioner:
        raise TxFailed(ResultCode.UNAUTHORIZED, "only the referring practitioner may close it")
    _require_status(referral, ReferralStatus.ACCEPTED, ReferralStatus.ANSWERED)
    return referral


# -- the module ----------------------------------------------------------------------------

_PATH_LAYOUTS: Final[Mapping[str, Sequence[int]]] = {
    "r": (ID_BYTES,),
    "i": (ID_BYTES, ID_BYTES),
    "o": (ID_BYTES, ID_BYTES),
    "p": (ID_BYTES, ID_BYTES),
}


class ReferralModule(Module):
    """Referrals between practitioners (see the module docstring)."""

    name = REFERRAL
    actions = frozenset({"request", "accept", "decline", "answer", "close"})

    def check_tx(self, ctx: CheckContext, tx: Transaction) -> None:
        view, now_ms = ctx.view, ctx.block.time_ms
        if tx.action == "request":
            check_request(view, tx.sender, decode_payload(REQUEST_CODEC, tx.payload), now_ms)
        elif tx.action == "accept":
            referral_id = decode_payload(REFERRAL_REF_CODEC, tx.payload).referral
            check_accept(view, tx.sender, referral_id, now_ms)
        elif tx.action == "decline":
            check_decline(view, tx.sender, decode_payload(DECLINE_CODEC, tx.payload).referral)
        elif tx.action == "answer":
            check_answer(view, tx.sender, decode_payload(ANSWER_CODEC, tx.payload))
        else:
            check_close(view, tx.sender, decode_payload(REFERRAL_REF_CODEC, tx.payload).referral)

    def deliver_tx(self, ctx: ExecContext, tx: Transaction) -> None:
        view, now_ms, sender = ctx.view, ctx.block.time_ms, ctx.require_sender()
        if tx.action == "request":
            self._request(ctx, decode_payload(REQUEST_CODEC, tx.payload))
        elif tx.action == "accept":
            referral_id = decode_payload(REFERRAL_REF_CODEC, tx.payload).referral
            referral, accepter, grant = check_accept(view, sender, referral_id, now_ms)
            accepted = replace(
                referral,
                status=ReferralStatus.ACCEPTED,
                accepted_by=accepter.id,
                updated_ms=now_ms,
            )
            _save(ctx, accepted)
            _emit(ctx, "accepted", accepted, by=accepter.id, grant=grant)
        elif tx.action == "decline":
            payload = decode_payload(DECLINE_CODEC, tx.payload)
            referral, decliner = check_decline(view, sender, payload.referral)
            declined = _end(ctx, referral, ReferralStatus.DECLINED)
            _emit(ctx, "declined", declined, by=decliner.id, reason_code=payload.reason_code)
        elif tx.action == "answer":
            answer = decode_payload(ANSWER_CODEC, tx.payload)
            referral = check_answer(view, sender, answer)
            answered = _end(
                ctx, replace(referral, answer_record=answer.answer_record), ReferralStatus.ANSWERED
            )
            _emit(ctx, "answered", answered, record=answer.answer_record)
        else:
            referral_id = decode_payload(REFERRAL_REF_CODEC, tx.payload).referral
            closed = _end(ctx, check_close(view, sender, referral_id), ReferralStatus.CLOSED)
            _emit(ctx, "closed", closed)

    def _request(self, ctx: ExecContext, payload: RequestPayload) -> None:
        now_ms = ctx.block.time_ms
        referrer = check_request(ctx.view, ctx.require_sender(), payload, now_ms)
        referral_id = derive_id(REFERRAL_ID_DOMAIN, ctx.tx_hash)
        if ctx.view.get(referral_key(referral_id)) is not None:
            raise AssertionError("a referral id is derived from its unique transaction")
        task = ctx.schedule(payload.expires_ms, "expire", referral_id)
        referral = Referral(
            id=referral_id,
            patient=payload.patient,
            from_practitioner=referrer.id,
            from_institution=referrer.parent,
            to=payload.to,
            specialty=payload.specialty,
            reason_code=payload.reason_code,
            status=ReferralStatus.REQUESTED,
            created_ms=now_ms,
            expires_ms=payload.expires_ms,
            accepted_by=b"",
            answer_record=b"",
            expiry_task=task,
            updated_ms=now_ms,
        )
        _save(ctx, referral)
        for key in index_keys(referral):
            ctx.view.set(key, b"")
        _emit(
            ctx,
            "requested",
            referral,
            specialty=referral.specialty,
            reason_code=referral.reason_code,
            expires_ms=referral.expires_ms,
        )

    def on_due(self, ctx: ExecContext, task: DueTask) -> None:
        if task.kind != "expire":
            raise TxFailed(ResultCode.UNKNOWN_KIND, f"referral has no task {task.kind!r}")
        referral = get_referral(ctx.view, task.payload)
        if referral is None or referral.expiry_task != task.task_id:
            return  # declining, answering and closing cancel the task; guard it anyway
        if referral.status not in (ReferralStatus.REQUESTED, ReferralStatus.ACCEPTED):
            return
        expired = replace(
            referral,
            status=ReferralStatus.EXPIRED,
            expiry_task=b"",
            updated_ms=ctx.block.time_ms,
        )
        _save(ctx, expired)
        _emit(ctx, "expired", expired)

    # -- queries ----------------------------------------------------------------------------

    def query_key(self, path: str) -> bytes:
        """``r/<referral>``, ``i/<to>[/<referral>]``, ``o/<from>[/<referral>]``,
        ``p/<patient>[/<referral>]`` (hex ids; a shorter path is a prefix)."""
        return key_from_path(b"referral/", path, _PATH_LAYOUTS)

    def render(self, key: bytes, value: bytes) -> JsonValue:
        if key.startswith(REFERRAL_PREFIX):
            try:
                return render_referral(REFERRAL_CODEC.decode(value))
            except DecodeError as exc:  # our own writes are canonical: corruption is a bug
                raise AssertionError(f"corrupt referral under {key!r}: {exc}") from exc
        for prefix, side in (
            (INCOMING_PREFIX, "to"),
            (OUTGOING_PREFIX, "from"),
            (PATIENT_INDEX_PREFIX, "patient"),
        ):
            if key.startswith(prefix):
                return {side: key[len(prefix) : -ID_BYTES].hex(), "referral": key[-ID_BYTES:].hex()}
        return super().render(key, value)


def _save(ctx: ExecContext, referral: Referral) -> None:
    ctx.view.set(referral_key(referral.id), REFERRAL_CODEC.encode(referral))


def _end(ctx: ExecContext, referral: Referral, status: ReferralStatus) -> Referral:
    """``referral`` in ``status``, where it can no longer expire: the expiry is cancelled."""
    if referral.expiry_task:
        ctx.cancel(referral.expiry_task)
    ended = replace(referral, status=status, expiry_task=b"", updated_ms=ctx.block.time_ms)
    _save(ctx, ended)
    return ended


def _emit(ctx: ExecContext, name: str, referral: Referral, **extra: bytes | int | str) -> None:
    attributes: dict[str, bytes | int | str] = {
        "patient": referral.patient,
        "from": referral.from_practitioner,
        "to": referral.to,
        "referral": referral.id,
        "status": referral.status.name.lower(),
        **extra,
    }
    ctx.emit(name, **attributes)


def render_referral(referral: Referral) -> dict[str, JsonValue]:
    """A referral as JSON for clients."""
    return {
        "id": referral.id.hex(),
        "patient": referral.patient.hex(),
        "from_practitioner": referral.from_practitioner.hex(),
        "from_institution": referral.from_institution.hex(),
        "to": referral.to.hex(),
        "specialty": referral.specialty,
        "reason_code": referral.reason_code,
        "status": referral.status.name.lower(),
        "created_ms": referral.created_ms,
        "expires_ms": referral.expires_ms,
        "accepted_by": referral.accepted_by.hex(),
        "answer_record": referral.answer_record.hex(),
        "updated_ms": referral.updated_ms,
    }

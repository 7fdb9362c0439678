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

The shapes live in ``consent_types``, the reads and ``find_access`` in ``consent_access``;
this module holds the transactions and the rendering, and re-exports both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Final

from health.contracts.common import (
    ID_BYTES,
    HealthRole,
    derive_id,
    param,
    require_identity,
    require_sender,
    u64,
)
from health.contracts.consent_access import (
    active_grant_count,
    active_grants_to,
    emergency_open,
    find_access,
    get_emergency_access,
    get_grant,
    grant_covers,
    grant_in_force,
    list_emergency_accesses,
    list_grants,
    open_emergency_access,
)
from health.contracts.consent_types import (
    BREAK_GLASS_PAYLOAD_CODEC,
    CONSENT,
    EMERGENCY_CODEC,
    EMERGENCY_ID_DOMAIN,
    EMERGENCY_INDEX_PREFIX,
    EMERGENCY_PREFIX,
    GRANT_CODEC,
    GRANT_COUNT_PREFIX,
    GRANT_ID_DOMAIN,
    GRANT_PAYLOAD_CODEC,
    GRANT_PREFIX,
    GRANTEE_INDEX_PREFIX,
    MAX_ACTIVE_GRANTS_PER_PAIR,
    MAX_ACTIVE_GRANTS_PER_PATIENT,
    MAX_GRANT_CODES,
    MAX_GRANT_TYPES,
    MAX_LIST_ITEMS,
    OPEN_WINDOW,
    REVOKE_PAYLOAD_CODEC,
    TIME_SEGMENT,
    BreakGlassPayload,
    EmergencyAccess,
    Grant,
    GrantPayload,
    GrantStatus,
    RevokePayload,
    ScanReader,
    break_glass_payload,
    decode_stored,
    emergency_index_key,
    emergency_key,
    grant_count_key,
    grant_key,
    grant_payload,
    grantee_index_key,
    key_from_path,
    revoke_payload,
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
from node.types import ResultCode, Transaction

__all__ = [
    "BREAK_GLASS_PAYLOAD_CODEC",
    "CONSENT",
    "EMERGENCY_CODEC",
    "EMERGENCY_ID_DOMAIN",
    "EMERGENCY_INDEX_PREFIX",
    "EMERGENCY_PREFIX",
    "GRANTEE_INDEX_PREFIX",
    "GRANT_CODEC",
    "GRANT_COUNT_PREFIX",
    "GRANT_ID_DOMAIN",
    "GRANT_PAYLOAD_CODEC",
    "GRANT_PREFIX",
    "MAX_ACTIVE_GRANTS_PER_PAIR",
    "MAX_ACTIVE_GRANTS_PER_PATIENT",
    "MAX_GRANT_CODES",
    "MAX_GRANT_TYPES",
    "MAX_LIST_ITEMS",
    "OPEN_WINDOW",
    "REVOKE_PAYLOAD_CODEC",
    "TIME_SEGMENT",
    "BreakGlassPayload",
    "ConsentModule",
    "EmergencyAccess",
    "Grant",
    "GrantPayload",
    "GrantStatus",
    "RevokePayload",
    "ScanReader",
    "active_grant_count",
    "active_grants_to",
    "break_glass_payload",
    "check_grant_shape",
    "emergency_index_key",
    "emergency_key",
    "emergency_open",
    "find_access",
    "get_emergency_access",
    "get_grant",
    "grant_count_key",
    "grant_covers",
    "grant_in_force",
    "grant_key",
    "grant_payload",
    "grantee_index_key",
    "key_from_path",
    "list_emergency_accesses",
    "list_grants",
    "open_emergency_access",
    "render_consent",
    "render_emergency",
    "revoke_payload",
]

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
            return render_consent(decode_stored(GRANT_CODEC, key, value))
        if key.startswith(EMERGENCY_PREFIX):
            return render_emergency(decode_stored(EMERGENCY_CODEC, key, value))
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

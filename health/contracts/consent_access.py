"""Consent's reads and the access decision: grants and emergency accesses read from the
state, and ``find_access`` — the one answer to "may this requester read such data of this
patient now, and on what basis"."""

from __future__ import annotations

from collections.abc import Collection

from health.contracts.common import (
    Access,
    AccessBasis,
    HealthRole,
    Purpose,
    get_identity,
    is_acting,
    read_struct,
)
from health.contracts.consent_types import (
    EMERGENCY_CODEC,
    EMERGENCY_INDEX_PREFIX,
    EMERGENCY_PREFIX,
    GRANT_CODEC,
    GRANT_PREFIX,
    GRANTEE_INDEX_PREFIX,
    MAX_ACTIVE_GRANTS_PER_PAIR,
    MAX_LIST_ITEMS,
    OPEN_WINDOW,
    EmergencyAccess,
    Grant,
    GrantStatus,
    ScanReader,
    decode_stored,
    emergency_key,
    grant_count_key,
    grant_key,
)
from node.app.module import (
    KeyReader,
)


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
    return [decode_stored(GRANT_CODEC, key, value) for key, value in items]


def list_emergency_accesses(
    reader: ScanReader, patient: bytes, limit: int = MAX_LIST_ITEMS
) -> list[EmergencyAccess]:
    """Up to ``limit`` (1..1000) emergency accesses to ``patient``, open or closed."""
    items = reader.iterate(EMERGENCY_PREFIX + patient, limit)
    return [decode_stored(EMERGENCY_CODEC, key, value) for key, value in items]


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

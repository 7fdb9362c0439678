"""Glucose readings a session may read: found on chain, fetched and decrypted through
``health.client``, summarised by ``health.glucose``.

1. ``reading_records`` (inside one state query) lists the patient's glucose-reading records
   (``records.is_glucose_reading``, not erased) whose data time is in the window, the
   newest first, scanning the owner index one 2^24 ms chunk (about 4.7 hours) at a time,
   at most ``limit`` of them, and marks those the requester may not read now
   (``consent.find_access``: owner, a grant in force covering the record, an open
   emergency access) so they are never asked of a custodian;
2. ``decrypt`` (in a worker thread) reads each allowed record with the session's
   ``HealthClient.read_record`` — a signed fetch through this node, checked against the
   commitment, unwrapped with the session's key — and parses it (``fhir.reading_of``),
   newest first, until a time budget runs out; what it read is cached per keystore
   (records never change; erased or no-longer-readable ones are filtered out before the
   cache is looked at);
3. ``summary`` computes the time in range, the consensus metrics and the alerts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from health import fhir
from health.client import HealthClient, RecordError
from health.contracts.common import DAY_MS, ID_BYTES, HealthRole, Purpose, get_identity
from health.contracts.consent import active_grants_to, find_access, open_emergency_access
from health.contracts.records import OWNER_INDEX_PREFIX, get_record, is_glucose_reading
from health.glucose import GlucoseError, alert_for, statistics
from health.web.models import AlertOut, GlucoseStatsOut, ReadingOut, StatsOut, TargetOut
from node.api.client import ApiError
from node.runtime.extension import StateReader

CHUNK_SHIFT: Final = 24
CHUNK_SCAN_LIMIT: Final = 512
"""Index entries read per chunk (a CGM writes 56 readings in one)."""
MAX_WINDOW_MS: Final = 90 * DAY_MS
MAX_CACHED_READINGS: Final = 20_000
"""Decrypted readings kept per open keystore (the oldest dropped first)."""
TARGET_LOW_MG_DL: Final = 70
TARGET_HIGH_MG_DL: Final = 180
PURPOSES: Final = (Purpose.TREATMENT, Purpose.RESEARCH)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A reading record in the window; ``refusal`` when the requester may not read it."""

    record: bytes
    data_time_ms: int
    code: str
    refusal: str | None


@dataclass(frozen=True, slots=True)
class Reading:
    """A decrypted reading."""

    record: bytes
    time_ms: int
    mg_dl: float
    code: str


@dataclass(frozen=True, slots=True)
class Decrypted:
    """What ``decrypt`` read, the oldest first; why the others were not; whether the time
    budget ran out first."""

    readings: list[Reading]
    unreadable: list[tuple[bytes, str]]
    out_of_time: bool


def may_read_some(reader: StateReader, patient: bytes, requester: bytes, now_ms: int) -> bool:
    """True when ``requester`` is the patient, or holds (itself or through its institution)
    a grant of the patient in force, or an open emergency access to it."""
    if requester == patient:
        return True
    identity = get_identity(reader, requester)
    if identity is None:
        return False
    grantees = [requester]
    if identity.role is HealthRole.PRACTITIONER and identity.parent:
        grantees.append(identity.parent)
    if any(active_grants_to(reader, grantee, patient, now_ms) for grantee in grantees):
        return True
    return open_emergency_access(reader, requester, patient, now_ms) is not None


def reading_records(
    reader: StateReader,
    patient: bytes,
    requester: bytes,
    window: tuple[int, int],
    *,
    limit: int,
    now_ms: int,
) -> tuple[list[Candidate], bool]:
    """The newest ``limit`` reading records of ``patient`` with a data time in ``window``
    (inclusive), the oldest first, and whether the window held more (see the module
    docstring)."""
    from_ms, to_ms = window
    base = OWNER_INDEX_PREFIX + patient
    found: list[Candidate] = []
    truncated = False
    for chunk in range(to_ms >> CHUNK_SHIFT, (from_ms >> CHUNK_SHIFT) - 1, -1):
        prefix = base + chunk.to_bytes(8 - CHUNK_SHIFT // 8, "big")
        entries = reader.iterate(prefix, CHUNK_SCAN_LIMIT)
        truncated = truncated or len(entries) == CHUNK_SCAN_LIMIT
        for key, _ in reversed(entries):
            data_time_ms = int.from_bytes(key[len(base) : len(base) + 8], "big")
            if not from_ms <= data_time_ms <= to_ms:
                continue
            candidate = _candidate(reader, key[-ID_BYTES:], patient, requester, now_ms)
            if candidate is None:
                continue
            if len(found) == limit:
                return found[::-1], True
            found.append(candidate)
    return found[::-1], truncated


def _candidate(
    reader: StateReader, record_id: bytes, patient: bytes, requester: bytes, now_ms: int
) -> Candidate | None:
    record = get_record(reader, record_id)
    if record is None or record.erased:
        return None
    if not is_glucose_reading(record.resource_type, record.code):
        return None
    access = find_access(
        reader,
        patient=patient,
        requester=requester,
        resource_type=record.resource_type,
        code=record.code,
        data_time_ms=record.data_time_ms,
        now_ms=now_ms,
        purposes=PURPOSES,
    )
    refusal = None if access is not None else "forbidden"
    return Candidate(record.id, record.data_time_ms, record.code, refusal)


def decrypt(
    client: HealthClient,
    candidates: list[Candidate],
    cache: dict[bytes, Reading],
    *,
    monotonic: Callable[[], float],
    budget_s: float,
) -> Decrypted:
    """Read the allowed ``candidates`` (newest first) until ``budget_s`` runs out (see the
    module docstring). Runs in a worker thread: blocking calls only."""
    deadline = monotonic() + budget_s
    readings: list[Reading] = []
    unreadable: list[tuple[bytes, str]] = []
    out_of_time = False
    for candidate in reversed(candidates):
        if candidate.refusal is not None:
            unreadable.append((candidate.record, candidate.refusal))
            continue
        cached = cache.get(candidate.record)
        if cached is not None:
            readings.append(cached)
            continue
        if monotonic() >= deadline:
            out_of_time = True
            break
        try:
            reading = _read_one(client, candidate)
        except _Unreadable as exc:
            unreadable.append((candidate.record, exc.reason))
            continue
        _remember(cache, reading)
        readings.append(reading)
    readings.sort(key=lambda item: (item.time_ms, item.record))
    return Decrypted(readings, unreadable, out_of_time)


class _Unreadable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _read_one(client: HealthClient, candidate: Candidate) -> Reading:
    try:
        resource = client.read_record(candidate.record)
        parsed = fhir.reading_of(resource)
    except RecordError as exc:
        raise _Unreadable(exc.reason or "refused") from None
    except fhir.FhirError:
        raise _Unreadable("not_a_reading") from None
    except ApiError:
        raise _Unreadable("unreachable") from None
    return Reading(candidate.record, parsed.time_ms, parsed.mg_dl, parsed.code)


def _remember(cache: dict[bytes, Reading], reading: Reading) -> None:
    if len(cache) >= MAX_CACHED_READINGS:
        cache.pop(next(iter(cache)))
    cache[reading.record] = reading


def reading_out(reading: Reading) -> ReadingOut:
    """A reading as the API shows it."""
    return ReadingOut(
        record=reading.record.hex(),
        time_ms=reading.time_ms,
        mg_dl=reading.mg_dl,
        code=reading.code,
    )


def summary(
    patient: bytes, window: tuple[int, int], decrypted: Decrypted, truncated: bool
) -> GlucoseStatsOut:
    """Time in range, the consensus metrics and the alerts of the readings."""
    values: list[float] = []
    alerts: list[AlertOut] = []
    for reading in decrypted.readings:
        try:
            level = alert_for(reading.mg_dl)
        except GlucoseError:
            continue
        values.append(reading.mg_dl)
        if level is not None:
            alerts.append(
                AlertOut(
                    record=reading.record.hex(),
                    time_ms=reading.time_ms,
                    mg_dl=reading.mg_dl,
                    level=level.name.lower(),  # type: ignore[arg-type]
                )
            )
    stats = statistics(values) if values else None
    return GlucoseStatsOut(
        patient=patient.hex(),
        from_ms=window[0],
        to_ms=window[1],
        readings=len(values),
        target=TargetOut(low_mg_dl=TARGET_LOW_MG_DL, high_mg_dl=TARGET_HIGH_MG_DL),
        stats=None
        if stats is None
        else StatsOut(
            mean_mg_dl=stats.mean_mg_dl,
            gmi_pct=stats.gmi_pct,
            cv_pct=stats.cv_pct,
            very_low_pct=stats.very_low_pct,
            low_pct=stats.low_pct,
            in_range_pct=stats.in_range_pct,
            high_pct=stats.high_pct,
            very_high_pct=stats.very_high_pct,
            below_70_pct=stats.below_70_pct,
            above_180_pct=stats.above_180_pct,
        ),
        goals_met=None if stats is None else stats.goals_met(),
        alerts=alerts,
        unreadable=len(decrypted.unreadable),
        truncated=truncated or decrypted.out_of_time,
    )

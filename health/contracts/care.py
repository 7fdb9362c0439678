"""Diabetes care plans, their reminders, adherence and alerts (docs/HEALTH.md, care).

Nothing here is health content: medication names, doses and glucose targets live in the
encrypted FHIR ``CarePlan`` record the plan points at. On chain: the plan's version, record
id and ciphertext hash, its practitioner, and a schedule of numbered items (a dose of
medication item *n*, or a glucose measurement) at times of day in the patient's time zone.

State (all under ``care/``):

- ``p/<patient>`` -> ``CarePlan``: version (+1 per change), record, practitioner, schedule;
- ``n/<patient><item u8>`` -> ``NextOccurrence``: the one pending occurrence task of an item
  (its due time, plan version and task id), so a plan change cancels it;
- ``r/<patient><due_ms u64><item u8>`` -> ``Reminder``: OPEN, then DONE or MISSED;
- ``a/<patient><item u8>`` -> ``Adherence``: due, done, missed counters;
- ``s/<patient>`` -> ``AlertPolicy``: whether the patient shares alerts.

Transactions: ``care.set_plan`` (a practitioner whose treatment access to the patient's
``CarePlan`` data ``consent.find_access`` allows), ``care.ack`` (the patient; also a paired
device for a measurement), ``care.set_policy`` (the patient), ``care.alert`` (the patient
or a paired device, if the policy shares alerts). Module call served: ``reading_committed``
(from ``records``, a ``common.ReadingNotice``): a glucose reading closes the OPEN
measurement reminder nearest to its time within ``reminder_grace_ms``.

Due work: ``occurrence`` (open a reminder, schedule its escalation and the item's next
occurrence; only the next occurrence of each item is ever scheduled, so the queue stays
bounded; a task of a stale plan version does nothing) and ``escalate`` (an OPEN reminder
``reminder_grace_ms`` after its due time becomes MISSED).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum
from itertools import pairwise
from typing import Final, TypeVar

from health.contracts.common import (
    DAY_MS,
    ID_BYTES,
    READING_NOTICE_CODEC,
    AccessBasis,
    HealthRole,
    Identity,
    Purpose,
    get_identity,
    is_acting,
    param,
    read_struct,
    require_identity,
    require_sender,
    u64,
)
from health.contracts.consent import TIME_SEGMENT, ScanReader, find_access, key_from_path
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
from node.codec import (
    U32_MAX,
    U64_MAX,
    ArrayOf,
    Bool,
    Bytes,
    EnumOf,
    Int,
    Nested,
    StructCodec,
    UInt,
)
from node.errors import DecodeError
from node.types import ResultCode, Transaction

T = TypeVar("T")

CARE: Final = "care"
RECORDS_MODULE: Final = "records"
"""The only module whose ``reading_committed`` calls care accepts."""
PLAN_PREFIX: Final = b"care/p/"
NEXT_PREFIX: Final = b"care/n/"
REMINDER_PREFIX: Final = b"care/r/"
ADHERENCE_PREFIX: Final = b"care/a/"
POLICY_PREFIX: Final = b"care/s/"

CARE_PLAN_RESOURCE_TYPE: Final = "CarePlan"
MAX_ITEMS: Final = 16
MAX_TIMES_PER_ITEM: Final = 12
MAX_ITEM_NUMBER: Final = 255
MINUTE_MS: Final = 60_000
MINUTES_PER_DAY: Final = 1440
MIN_TZ_OFFSET_MINUTES: Final = -12 * 60
MAX_TZ_OFFSET_MINUTES: Final = 14 * 60
CHUNK_SHIFT: Final = 24
"""Reminder keys are scanned in chunks sharing the top 40 bits of the due time (2^24 ms,
about 4.7 hours): the view iterates prefixes only, and a chunk prefix bounds a time window."""
CHUNK_SCAN_LIMIT: Final = 512
"""Most reminders read from one chunk (a plan opens at most 16 x 12 a day)."""
LIST_SPAN_MS: Final = 7 * DAY_MS
"""``list_reminders`` looks this far past ``from_ms`` (clients page week by week)."""
MAX_LIST_LIMIT: Final = 256


class ItemKind(IntEnum):
    """What a schedule item asks the patient to do."""

    DOSE = 1
    MEASUREMENT = 2


class ReminderStatus(IntEnum):
    """A reminder's state: OPEN until acknowledged (DONE) or escalated (MISSED)."""

    OPEN = 1
    DONE = 2
    MISSED = 3


class AlertLevel(IntEnum):
    """The level of a glucose alert (computed off chain, where readings are decrypted)."""

    HYPO_1 = 1
    HYPO_2 = 2
    HYPER_1 = 3
    HYPER_2 = 4


@dataclass(frozen=True, slots=True)
class ScheduleItem:
    """Item ``item`` (its meaning is in the encrypted plan) is due at each of
    ``times_of_day_minutes`` (local minutes after midnight, strictly increasing)."""

    item: int
    kind: ItemKind
    times_of_day_minutes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CarePlan:
    """The care plan of a patient (``care/p/<patient>``).

    ``plan_record``: the id of the encrypted FHIR CarePlan record, ``plan_sha256`` the hash
    of its ciphertext; ``institution``: the practitioner's institution when the plan was
    set; ``tz_offset_minutes``: the patient's time zone (local = UTC + offset)."""

    version: int
    plan_record: bytes
    plan_sha256: bytes
    practitioner: bytes
    institution: bytes
    updated_ms: int
    tz_offset_minutes: int
    items: tuple[ScheduleItem, ...]


@dataclass(frozen=True, slots=True)
class SetPlan:
    """``care.set_plan``: the new plan of ``patient``. ``base_version`` is the version the
    practitioner edited (0 for a first plan): a plan changed meanwhile is a CONFLICT, so
    two practitioners never silently overwrite each other."""

    patient: bytes
    base_version: int
    plan_record: bytes
    plan_sha256: bytes
    tz_offset_minutes: int
    items: tuple[ScheduleItem, ...]


@dataclass(frozen=True, slots=True)
class NextOccurrence:
    """The pending occurrence task of an item (``care/n/<patient><item>``)."""

    due_ms: int
    plan_version: int
    task: bytes


@dataclass(frozen=True, slots=True)
class Reminder:
    """A due occurrence (``care/r/<patient><due_ms><item>``); ``closed_ms`` is 0 while
    OPEN; ``escalation_task`` the pending escalation (empty once closed)."""

    status: ReminderStatus
    kind: ItemKind
    closed_ms: int
    plan_version: int
    escalation_task: bytes


@dataclass(frozen=True, slots=True)
class Adherence:
    """Counters of one item (``care/a/<patient><item>``): reminders opened, closed in
    time, missed."""

    due: int
    done: int
    missed: int


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """Whether the patient lets ``care.alert`` tell the plan's practitioner."""

    share_alerts: bool
    updated_ms: int


@dataclass(frozen=True, slots=True)
class Ack:
    """``care.ack``: the reminder of ``item`` due at ``due_ms`` is done."""

    item: int
    due_ms: int


@dataclass(frozen=True, slots=True)
class SetPolicy:
    """``care.set_policy``."""

    share_alerts: bool


@dataclass(frozen=True, slots=True)
class Alert:
    """``care.alert``: an alert of ``level`` was raised on the reading ``record``."""

    level: AlertLevel
    record: bytes


@dataclass(frozen=True, slots=True)
class OccurrenceJob:
    """Payload of the ``occurrence`` task."""

    patient: bytes
    item: int
    plan_version: int
    due_ms: int


@dataclass(frozen=True, slots=True)
class EscalationJob:
    """Payload of the ``escalate`` task."""

    patient: bytes
    item: int
    due_ms: int


@dataclass(frozen=True, slots=True)
class ReminderEntry:
    """A reminder with the due time and item of its key (``list_reminders``)."""

    due_ms: int
    item: int
    reminder: Reminder


_ID = Bytes.exactly(ID_BYTES)
_ITEM = UInt(MAX_ITEM_NUMBER)
_VERSION = UInt(U32_MAX)
_TZ = Int(MIN_TZ_OFFSET_MINUTES, MAX_TZ_OFFSET_MINUTES)
_TASK = Bytes(DUE_KEY_BYTES)
SCHEDULE_ITEM_CODEC: Final = StructCodec(
    ScheduleItem,
    [
        ("item", _ITEM),
        ("kind", EnumOf(ItemKind)),
        ("times_of_day_minutes", ArrayOf(UInt(MINUTES_PER_DAY - 1), MAX_TIMES_PER_ITEM)),
    ],
    64,
)
_ITEMS = ArrayOf(Nested(SCHEDULE_ITEM_CODEC), MAX_ITEMS)
CARE_PLAN_CODEC: Final = StructCodec(
    CarePlan,
    [
        ("version", _VERSION),
        ("plan_record", _ID),
        ("plan_sha256", _ID),
        ("practitioner", _ID),
        ("institution", _ID),
        ("updated_ms", UInt()),
        ("tz_offset_minutes", _TZ),
        ("items", _ITEMS),
    ],
    1536,
)
SET_PLAN_CODEC: Final = StructCodec(
    SetPlan,
    [
        ("patient", _ID),
        ("base_version", _VERSION),
        ("plan_record", _ID),
        ("plan_sha256", _ID),
        ("tz_offset_minutes", _TZ),
        ("items", _ITEMS),
    ],
    1536,
)
NEXT_OCCURRENCE_CODEC: Final = StructCodec(
    NextOccurrence, [("due_ms", UInt()), ("plan_version", _VERSION), ("task", _TASK)], 96
)
REMINDER_CODEC: Final = StructCodec(
    Reminder,
    [
        ("status", EnumOf(ReminderStatus)),
        ("kind", EnumOf(ItemKind)),
        ("closed_ms", UInt()),
        ("plan_version", _VERSION),
        ("escalation_task", _TASK),
    ],
    96,
)
ADHERENCE_CODEC: Final = StructCodec(
    Adherence, [("due", UInt()), ("done", UInt()), ("missed", UInt())], 64
)
ALERT_POLICY_CODEC: Final = StructCodec(
    AlertPolicy, [("share_alerts", Bool()), ("updated_ms", UInt())], 32
)
ACK_CODEC: Final = StructCodec(Ack, [("item", _ITEM), ("due_ms", UInt())], 32)
SET_POLICY_CODEC: Final = StructCodec(SetPolicy, [("share_alerts", Bool())], 16)
ALERT_CODEC: Final = StructCodec(Alert, [("level", EnumOf(AlertLevel)), ("record", _ID)], 64)
OCCURRENCE_JOB_CODEC: Final = StructCodec(
    OccurrenceJob,
    [("patient", _ID), ("item", _ITEM), ("plan_version", _VERSION), ("due_ms", UInt())],
    96,
)
ESCALATION_JOB_CODEC: Final = StructCodec(
    EscalationJob, [("patient", _ID), ("item", _ITEM), ("due_ms", UInt())], 96
)


# -- keys and reads ----------------------------------------------------------------------------


def plan_key(patient: bytes) -> bytes:
    """The state key of a patient's care plan."""
    return PLAN_PREFIX + patient


def next_key(patient: bytes, item: int) -> bytes:
    """The state key of an item's pending occurrence."""
    return NEXT_PREFIX + patient + bytes([item])


def reminder_key(patient: bytes, due_ms: int, item: int) -> bytes:
    """The state key of a reminder: key order is due-time order."""
    return REMINDER_PREFIX + patient + u64(due_ms) + bytes([item])


def adherence_key(patient: bytes, item: int) -> bytes:
    """The state key of an item's adherence counters."""
    return ADHERENCE_PREFIX + patient + bytes([item])


def policy_key(patient: bytes) -> bytes:
    """The state key of a patient's alert policy."""
    return POLICY_PREFIX + patient


def get_plan(reader: KeyReader, patient: bytes) -> CarePlan | None:
    """The patient's care plan, or None."""
    return read_struct(reader, plan_key(patient), CARE_PLAN_CODEC)


def get_next_occurrence(reader: KeyReader, patient: bytes, item: int) -> NextOccurrence | None:
    """The pending occurrence of a plan item, or None."""
    return read_struct(reader, next_key(patient, item), NEXT_OCCURRENCE_CODEC)


def get_reminder(reader: KeyReader, patient: bytes, due_ms: int, item: int) -> Reminder | None:
    """The reminder of ``item`` due at ``due_ms``, or None."""
    return read_struct(reader, reminder_key(patient, due_ms, item), REMINDER_CODEC)


def get_adherence(reader: KeyReader, patient: bytes, item: int) -> Adherence:
    """The adherence counters of an item (zeros before its first reminder)."""
    found = read_struct(reader, adherence_key(patient, item), ADHERENCE_CODEC)
    return Adherence(0, 0, 0) if found is None else found


def get_policy(reader: KeyReader, patient: bytes) -> AlertPolicy | None:
    """The patient's alert policy, or None (no alerts are shared without one)."""
    return read_struct(reader, policy_key(patient), ALERT_POLICY_CODEC)


def list_reminders(
    reader: ScanReader, patient: bytes, from_ms: int, limit: int
) -> list[ReminderEntry]:
    """The patient's reminders due at or after ``from_ms`` and before ``from_ms +
    LIST_SPAN_MS``, in due order, at most ``limit`` (1..``MAX_LIST_LIMIT``). Page on with
    ``from_ms`` = the last due time + 1 (or + ``LIST_SPAN_MS`` after an empty page)."""
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise ValueError(f"limit must be 1..{MAX_LIST_LIMIT}")
    end_ms = min(from_ms + LIST_SPAN_MS - 1, U64_MAX)
    found: list[ReminderEntry] = []
    for due_ms, item, stored in _scan_window(reader, patient, from_ms, end_ms):
        found.append(ReminderEntry(due_ms, item, _decode(REMINDER_CODEC, stored)))
        if len(found) == limit:
            break
    return found


def _scan_window(
    reader: ScanReader, patient: bytes, start_ms: int, end_ms: int
) -> list[tuple[int, int, bytes]]:
    """``(due_ms, item, stored reminder)`` of the reminders due in ``[start_ms, end_ms]``,
    in key order, read chunk by chunk (each chunk at most ``CHUNK_SCAN_LIMIT`` entries)."""
    base = REMINDER_PREFIX + patient
    found: list[tuple[int, int, bytes]] = []
    for chunk in range(start_ms >> CHUNK_SHIFT, (end_ms >> CHUNK_SHIFT) + 1):
        prefix = base + chunk.to_bytes(8 - CHUNK_SHIFT // 8, "big")
        for key, stored in reader.iterate(prefix, CHUNK_SCAN_LIMIT):
            due_ms = int.from_bytes(key[len(base) : len(base) + 8], "big")
            if start_ms <= due_ms <= end_ms:
                found.append((due_ms, key[-1], stored))
    return found


def nearest_open_measurement(
    reader: ScanReader, patient: bytes, time_ms: int, grace_ms: int
) -> ReminderEntry | None:
    """The OPEN measurement reminder of ``patient`` due nearest to ``time_ms``, within
    ``grace_ms`` either side (the earlier one on a tie), or None."""
    start_ms = max(0, time_ms - grace_ms)
    end_ms = min(time_ms + grace_ms, U64_MAX)
    best: ReminderEntry | None = None
    for due_ms, item, stored in _scan_window(reader, patient, start_ms, end_ms):
        reminder = _decode(REMINDER_CODEC, stored)
        if reminder.status is ReminderStatus.OPEN and reminder.kind is ItemKind.MEASUREMENT:
            distance_ms = abs(due_ms - time_ms)
            if best is None or distance_ms < abs(best.due_ms - time_ms):
                best = ReminderEntry(due_ms, item, reminder)
    return best


def _decode(codec: StructCodec[T], stored: bytes) -> T:
    # Only care writes these values, canonically: a value that does not decode is a bug.
    try:
        return codec.decode(stored)
    except DecodeError as exc:
        raise AssertionError(f"corrupt {codec.name}: {exc}") from exc


# -- client helpers ----------------------------------------------------------------------------


def set_plan_payload(
    patient: bytes,
    *,
    base_version: int,
    plan_record: bytes,
    plan_sha256: bytes,
    tz_offset_minutes: int,
    items: Sequence[ScheduleItem],
) -> bytes:
    """The payload of ``care.set_plan``."""
    plan = SetPlan(patient, base_version, plan_record, plan_sha256, tz_offset_minutes, tuple(items))
    return SET_PLAN_CODEC.encode(plan)


def ack_payload(item: int, due_ms: int) -> bytes:
    """The payload of ``care.ack``."""
    return ACK_CODEC.encode(Ack(item, due_ms))


def set_policy_payload(share_alerts: bool) -> bytes:
    """The payload of ``care.set_policy``."""
    return SET_POLICY_CODEC.encode(SetPolicy(share_alerts))


def alert_payload(level: AlertLevel, record: bytes) -> bytes:
    """The payload of ``care.alert``."""
    return ALERT_CODEC.encode(Alert(level, record))


# -- schedule arithmetic -----------------------------------------------------------------------


def next_occurrence_ms(
    times_of_day_minutes: Sequence[int], tz_offset_minutes: int, after_ms: int
) -> int:
    """The first block time strictly after ``after_ms`` at which the local clock (UTC +
    ``tz_offset_minutes``) reads one of ``times_of_day_minutes`` (non-empty, increasing).
    Integer arithmetic only; the result is at most one day after ``after_ms``."""
    if not times_of_day_minutes:
        raise ValueError("an item has at least one time of day")
    offset_ms = tz_offset_minutes * MINUTE_MS
    local_after_ms = after_ms + offset_ms
    day_start_ms = local_after_ms - local_after_ms % DAY_MS
    for day_ms in (day_start_ms, day_start_ms + DAY_MS):
        for minute in times_of_day_minutes:
            local_due_ms = day_ms + minute * MINUTE_MS
            if local_due_ms > local_after_ms:
                return local_due_ms - offset_ms
    raise AssertionError("unreachable: tomorrow's first time is after today's moment")


def check_items(items: Sequence[ScheduleItem]) -> None:
    """``TxFailed(INVALID_PAYLOAD)`` unless the items are in strictly increasing item order
    and each has 1..12 strictly increasing times of day (the codec bounds the rest)."""
    previous_item = -1
    for entry in items:
        if entry.item <= previous_item:
            raise TxFailed(ResultCode.INVALID_PAYLOAD, "items must be in increasing item order")
        previous_item = entry.item
        times = entry.times_of_day_minutes
        if not times:
            raise TxFailed(ResultCode.INVALID_PAYLOAD, f"item {entry.item} has no time of day")
        if any(later <= earlier for earlier, later in pairwise(times)):
            raise TxFailed(
                ResultCode.INVALID_PAYLOAD, f"item {entry.item}: times must strictly increase"
            )


# -- authority ---------------------------------------------------------------------------------


def authorize_plan(reader: ScanReader, sender: bytes, patient: bytes, now_ms: int) -> Identity:
    """The acting practitioner ``sender`` if a treatment grant or emergency access of the
    active patient ``patient`` covers its ``CarePlan`` data now; else ``TxFailed``."""
    practitioner = require_sender(reader, sender, {HealthRole.PRACTITIONER}, "set a care plan")
    require_identity(reader, patient, {HealthRole.PATIENT}, "care plan patient")
    access = find_access(
        reader,
        patient=patient,
        requester=practitioner.id,
        resource_type=CARE_PLAN_RESOURCE_TYPE,
        code="",
        data_time_ms=now_ms,
        now_ms=now_ms,
        purposes=frozenset({Purpose.TREATMENT}),
    )
    if access is None or access.basis not in (AccessBasis.GRANT, AccessBasis.EMERGENCY):
        raise TxFailed(ResultCode.UNAUTHORIZED, "no treatment access to this patient's care plan")
    return practitioner


def patient_of_sender(reader: KeyReader, sender: bytes, what: str) -> tuple[bytes, Identity]:
    """The patient an acting patient or paired device acts for, and the sender identity."""
    identity = require_sender(reader, sender, {HealthRole.PATIENT, HealthRole.DEVICE}, what)
    patient = identity.id if identity.role is HealthRole.PATIENT else identity.parent
    return patient, identity


# -- the module --------------------------------------------------------------------------------


class CareModule(Module):
    """Care plans, reminders, adherence and alert policy (see the module docstring)."""

    name = CARE
    actions = frozenset({"set_plan", "ack", "set_policy", "alert"})

    def check_tx(self, ctx: CheckContext, tx: Transaction) -> None:
        now_ms = ctx.block.time_ms
        if tx.action == "set_plan":
            payload = decode_payload(SET_PLAN_CODEC, tx.payload)
            check_items(payload.items)
            authorize_plan(ctx.view, tx.sender, payload.patient, now_ms)
        elif tx.action == "ack":
            decode_payload(ACK_CODEC, tx.payload)
            patient_of_sender(ctx.view, tx.sender, "acknowledge a reminder")
        elif tx.action == "set_policy":
            decode_payload(SET_POLICY_CODEC, tx.payload)
            require_sender(ctx.view, tx.sender, {HealthRole.PATIENT}, "set an alert policy")
        else:
            decode_payload(ALERT_CODEC, tx.payload)
            patient_of_sender(ctx.view, tx.sender, "raise an alert")

    def deliver_tx(self, ctx: ExecContext, tx: Transaction) -> None:
        if tx.action == "set_plan":
            self._set_plan(ctx, decode_payload(SET_PLAN_CODEC, tx.payload))
        elif tx.action == "ack":
            self._ack(ctx, decode_payload(ACK_CODEC, tx.payload))
        elif tx.action == "set_policy":
            payload = decode_payload(SET_POLICY_CODEC, tx.payload)
            patient = require_sender(
                ctx.view, ctx.require_sender(), {HealthRole.PATIENT}, "set an alert policy"
            ).id
            policy = AlertPolicy(payload.share_alerts, ctx.block.time_ms)
            ctx.view.set(policy_key(patient), ALERT_POLICY_CODEC.encode(policy))
            ctx.emit("policy_set", patient=patient, share_alerts=int(payload.share_alerts))
        else:
            self._alert(ctx, decode_payload(ALERT_CODEC, tx.payload))

    def on_due(self, ctx: ExecContext, task: DueTask) -> None:
        if task.kind == "occurrence":
            self._occurrence(ctx, decode_payload(OCCURRENCE_JOB_CODEC, task.payload))
        elif task.kind == "escalate":
            self._escalate(ctx, decode_payload(ESCALATION_JOB_CODEC, task.payload))
        else:
            raise TxFailed(ResultCode.UNKNOWN_KIND, f"care has no task {task.kind!r}")

    def on_call(self, ctx: ExecContext, action: str, payload: bytes) -> bytes:
        """``reading_committed`` (``common.READING_NOTICE_CODEC``), from ``records`` only:
        returns the key of the reminder it closed, or b"" if none was open near it."""
        if action != "reading_committed":
            raise TxFailed(ResultCode.UNKNOWN_KIND, f"care serves no call {action!r}")
        if ctx.caller != RECORDS_MODULE:
            raise TxFailed(ResultCode.UNAUTHORIZED, "only records reports readings")
        notice = decode_payload(READING_NOTICE_CODEC, payload)
        grace_ms = param(ctx.view, "reminder_grace_ms")
        found = nearest_open_measurement(ctx.view, notice.patient, notice.data_time_ms, grace_ms)
        if found is None:
            return b""
        _close(ctx, notice.patient, found.due_ms, found.item, found.reminder, record=notice.record)
        return reminder_key(notice.patient, found.due_ms, found.item)

    # -- transactions ----------------------------------------------------------------------

    def _set_plan(self, ctx: ExecContext, payload: SetPlan) -> None:
        check_items(payload.items)
        now_ms = ctx.block.time_ms
        practitioner = authorize_plan(ctx.view, ctx.require_sender(), payload.patient, now_ms)
        current = get_plan(ctx.view, payload.patient)
        current_version = 0 if current is None else current.version
        if payload.base_version != current_version:
            raise TxFailed(
                ResultCode.CONFLICT,
                f"the plan is at version {current_version}, not {payload.base_version}",
            )
        if current_version >= U32_MAX:
            raise TxFailed(ResultCode.LIMIT_EXCEEDED, "the plan version is exhausted")
        plan = CarePlan(
            version=current_version + 1,
            plan_record=payload.plan_record,
            plan_sha256=payload.plan_sha256,
            practitioner=practitioner.id,
            institution=practitioner.parent,
            updated_ms=now_ms,
            tz_offset_minutes=payload.tz_offset_minutes,
            items=payload.items,
        )
        ctx.view.set(plan_key(payload.patient), CARE_PLAN_CODEC.encode(plan))
        _cancel_pending(ctx, payload.patient, current, plan)
        for entry in plan.items:
            _schedule_next(ctx, payload.patient, plan, entry, after_ms=now_ms)
        ctx.emit(
            "plan_set",
            patient=payload.patient,
            practitioner=practitioner.id,
            institution=practitioner.parent,
            version=plan.version,
            record=plan.plan_record,
            items=len(plan.items),
        )

    def _ack(self, ctx: ExecContext, payload: Ack) -> None:
        patient, sender = patient_of_sender(
            ctx.view, ctx.require_sender(), "acknowledge a reminder"
        )
        reminder = get_reminder(ctx.view, patient, payload.due_ms, payload.item)
        if reminder is None:
            raise TxFailed(
                ResultCode.NOT_FOUND, f"no reminder of item {payload.item} at {payload.due_ms}"
            )
        if sender.role is HealthRole.DEVICE and reminder.kind is not ItemKind.MEASUREMENT:
            raise TxFailed(ResultCode.UNAUTHORIZED, "a device acknowledges measurements only")
        if reminder.status is not ReminderStatus.OPEN:
            raise TxFailed(ResultCode.CONFLICT, f"the reminder is {reminder.status.name.lower()}")
        _close(ctx, patient, payload.due_ms, payload.item, reminder, by=sender.id)

    def _alert(self, ctx: ExecContext, payload: Alert) -> None:
        patient, sender = patient_of_sender(ctx.view, ctx.require_sender(), "raise an alert")
        policy = get_policy(ctx.view, patient)
        if policy is None or not policy.share_alerts:
            raise TxFailed(ResultCode.UNAUTHORIZED, "the patient's policy shares no alerts")
        plan = get_plan(ctx.view, patient)
        if plan is None:
            raise TxFailed(ResultCode.NOT_FOUND, "no care plan: no practitioner to alert")
        ctx.emit(
            "alert_raised",
            patient=patient,
            level=payload.level.name.lower(),
            practitioner=plan.practitioner,
            record=payload.record,
            by=sender.id,
        )

    # -- due work --------------------------------------------------------------------------

    def _occurrence(self, ctx: ExecContext, job: OccurrenceJob) -> None:
        plan = get_plan(ctx.view, job.patient)
        if plan is None or plan.version != job.plan_version:
            return  # a plan change made this task stale (and normally cancelled it)
        entry = next((e for e in plan.items if e.item == job.item), None)
        if entry is None:
            return
        if not is_acting(ctx.view, get_identity(ctx.view, job.patient)):
            ctx.view.delete(next_key(job.patient, job.item))
            return  # a deactivated patient gets no more reminders (a new plan restarts them)
        key = reminder_key(job.patient, job.due_ms, job.item)
        if ctx.view.get(key) is None:
            _open_reminder(ctx, job, plan, entry)
        # The next occurrence not yet past: after a halt of the chain, the occurrences it
        # slept through are skipped rather than opened one block after another.
        after_ms = max(job.due_ms, ctx.block.time_ms - 1)
        _schedule_next(ctx, job.patient, plan, entry, after_ms=after_ms)

    def _escalate(self, ctx: ExecContext, job: EscalationJob) -> None:
        reminder = get_reminder(ctx.view, job.patient, job.due_ms, job.item)
        if reminder is None or reminder.status is not ReminderStatus.OPEN:
            return  # closed in time (closing normally cancels this task)
        missed = replace(
            reminder,
            status=ReminderStatus.MISSED,
            closed_ms=ctx.block.time_ms,
            escalation_task=b"",
        )
        ctx.view.set(reminder_key(job.patient, job.due_ms, job.item), REMINDER_CODEC.encode(missed))
        _count(ctx, job.patient, job.item, missed=1)
        plan = get_plan(ctx.view, job.patient)
        ctx.emit(
            "escalated",
            patient=job.patient,
            practitioner=b"" if plan is None else plan.practitioner,
            item=job.item,
            due_ms=job.due_ms,
            kind=reminder.kind.name.lower(),
        )

    # -- queries ---------------------------------------------------------------------------

    def query_key(self, path: str) -> bytes:
        """``p/<patient>``, ``s/<patient>``, ``a/<patient>[/<item>]``,
        ``n/<patient>[/<item>]``, ``r/<patient>[/<due_ms>[/<item>]]``: ids and the item in
        hex (one byte), the due time in decimal ms; a shorter path is a prefix."""
        return key_from_path(b"care/", path, _PATH_LAYOUTS)

    def render(self, key: bytes, value: bytes) -> JsonValue:
        return render_care(key, value)


# -- helpers of the module ---------------------------------------------------------------------


def _schedule_next(
    ctx: ExecContext, patient: bytes, plan: CarePlan, entry: ScheduleItem, *, after_ms: int
) -> None:
    due_ms = next_occurrence_ms(entry.times_of_day_minutes, plan.tz_offset_minutes, after_ms)
    job = OccurrenceJob(patient, entry.item, plan.version, due_ms)
    task = ctx.schedule(due_ms, "occurrence", OCCURRENCE_JOB_CODEC.encode(job))
    pending = NextOccurrence(due_ms, plan.version, task)
    ctx.view.set(next_key(patient, entry.item), NEXT_OCCURRENCE_CODEC.encode(pending))


def _cancel_pending(ctx: ExecContext, patient: bytes, old: CarePlan | None, new: CarePlan) -> None:
    """Cancel the old plan's pending occurrences (stale tasks would do nothing anyway:
    this only keeps the queue short) and forget items the new plan drops."""
    if old is None:
        return
    kept = {entry.item for entry in new.items}
    for entry in old.items:
        pending = get_next_occurrence(ctx.view, patient, entry.item)
        if pending is not None:
            ctx.cancel(pending.task)
        if entry.item not in kept:
            ctx.view.delete(next_key(patient, entry.item))


def _open_reminder(
    ctx: ExecContext, job: OccurrenceJob, plan: CarePlan, entry: ScheduleItem
) -> None:
    grace_ms = param(ctx.view, "reminder_grace_ms")
    escalation = EscalationJob(job.patient, job.item, job.due_ms)
    task = ctx.schedule(job.due_ms + grace_ms, "escalate", ESCALATION_JOB_CODEC.encode(escalation))
    reminder = Reminder(ReminderStatus.OPEN, entry.kind, 0, plan.version, task)
    ctx.view.set(reminder_key(job.patient, job.due_ms, job.item), REMINDER_CODEC.encode(reminder))
    _count(ctx, job.patient, job.item, due=1)
    name = "dose_due" if entry.kind is ItemKind.DOSE else "measurement_due"
    ctx.emit(
        name,
        patient=job.patient,
        item=job.item,
        due_ms=job.due_ms,
        practitioner=plan.practitioner,
        version=plan.version,
    )


def _close(
    ctx: ExecContext,
    patient: bytes,
    due_ms: int,
    item: int,
    reminder: Reminder,
    *,
    by: bytes = b"",
    record: bytes = b"",
) -> None:
    """An OPEN reminder becomes DONE (by an ack of ``by`` or the reading ``record``)."""
    if reminder.escalation_task:
        ctx.cancel(reminder.escalation_task)
    done = replace(
        reminder, status=ReminderStatus.DONE, closed_ms=ctx.block.time_ms, escalation_task=b""
    )
    ctx.view.set(reminder_key(patient, due_ms, item), REMINDER_CODEC.encode(done))
    _count(ctx, patient, item, done=1)
    plan = get_plan(ctx.view, patient)
    ctx.emit(
        "acknowledged",
        patient=patient,
        item=item,
        due_ms=due_ms,
        practitioner=b"" if plan is None else plan.practitioner,
        by=by,
        record=record,
    )


def _count(
    ctx: ExecContext, patient: bytes, item: int, *, due: int = 0, done: int = 0, missed: int = 0
) -> None:
    counts = get_adherence(ctx.view, patient, item)
    updated = Adherence(counts.due + due, counts.done + done, counts.missed + missed)
    ctx.view.set(adherence_key(patient, item), ADHERENCE_CODEC.encode(updated))


# -- query paths and rendering -----------------------------------------------------------------

_PATH_LAYOUTS: Final[Mapping[str, Sequence[int]]] = {
    "p": (ID_BYTES,),
    "s": (ID_BYTES,),
    "a": (ID_BYTES, 1),
    "n": (ID_BYTES, 1),
    "r": (ID_BYTES, TIME_SEGMENT, 1),
}


def render_plan(plan: CarePlan) -> dict[str, JsonValue]:
    """A care plan as JSON."""
    items: list[JsonValue] = [
        {
            "item": entry.item,
            "kind": entry.kind.name.lower(),
            "times_of_day_minutes": list(entry.times_of_day_minutes),
        }
        for entry in plan.items
    ]
    return {
        "version": plan.version,
        "plan_record": plan.plan_record.hex(),
        "plan_sha256": plan.plan_sha256.hex(),
        "practitioner": plan.practitioner.hex(),
        "institution": plan.institution.hex(),
        "updated_ms": plan.updated_ms,
        "tz_offset_minutes": plan.tz_offset_minutes,
        "items": items,
    }


def render_care(key: bytes, value: bytes) -> JsonValue:
    """A stored care value as JSON (with the patient, due time and item of its key)."""
    if key.startswith(PLAN_PREFIX):
        return {
            "patient": key[len(PLAN_PREFIX) :].hex(),
            **render_plan(_decode(CARE_PLAN_CODEC, value)),
        }
    if key.startswith(REMINDER_PREFIX):
        reminder = _decode(REMINDER_CODEC, value)
        start = len(REMINDER_PREFIX)
        return {
            "patient": key[start : start + ID_BYTES].hex(),
            "due_ms": int.from_bytes(key[start + ID_BYTES : start + ID_BYTES + 8], "big"),
            "item": key[-1],
            "status": reminder.status.name.lower(),
            "kind": reminder.kind.name.lower(),
            "closed_ms": reminder.closed_ms,
            "plan_version": reminder.plan_version,
        }
    if key.startswith(ADHERENCE_PREFIX):
        counts = _decode(ADHERENCE_CODEC, value)
        return {
            "patient": key[len(ADHERENCE_PREFIX) : -1].hex(),
            "item": key[-1],
            "due": counts.due,
            "done": counts.done,
            "missed": counts.missed,
        }
    if key.startswith(NEXT_PREFIX):
        pending = _decode(NEXT_OCCURRENCE_CODEC, value)
        return {
            "patient": key[len(NEXT_PREFIX) : -1].hex(),
            "item": key[-1],
            "due_ms": pending.due_ms,
            "plan_version": pending.plan_version,
        }
    if key.startswith(POLICY_PREFIX):
        policy = _decode(ALERT_POLICY_CODEC, value)
        return {
            "patient": key[len(POLICY_PREFIX) :].hex(),
            "share_alerts": policy.share_alerts,
            "updated_ms": policy.updated_ms,
        }
    return {"hex": value.hex()}

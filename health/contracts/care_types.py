"""Care's records, codecs, state keys and reads, and the payloads clients build.

The state layout (``care/p``, ``n``, ``r``, ``a``, ``s``) and what each record means are
described in ``health.contracts.care``; this module holds their data types, their canonical
encodings, the keys they live under and the readers of them, and the payload builders of
``care.set_plan``, ``care.ack``, ``care.set_policy`` and ``care.alert``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, TypeVar

from health.contracts.common import ID_BYTES, read_struct, u64
from node.app.due import DUE_KEY_BYTES
from node.app.module import KeyReader
from node.codec import U32_MAX, ArrayOf, Bool, Bytes, EnumOf, Int, Nested, StructCodec, UInt
from node.errors import DecodeError

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


def decode_stored(codec: StructCodec[T], stored: bytes) -> T:
    """A stored care value decoded (``AssertionError`` if it does not decode)."""
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

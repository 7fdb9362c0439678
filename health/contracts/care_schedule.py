"""Care's schedule: when an item's next occurrence falls (integer arithmetic in the
patient's time zone), the checks of a plan's schedule items, and the scans of a patient's
reminders by due time (a listing window, the open measurement nearest a reading)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Final

from health.contracts.care_types import (
    MINUTE_MS,
    REMINDER_CODEC,
    REMINDER_PREFIX,
    ItemKind,
    ReminderEntry,
    ReminderStatus,
    ScheduleItem,
    decode_stored,
)
from health.contracts.common import DAY_MS
from health.contracts.consent import ScanReader
from node.app.errors import TxFailed
from node.codec import U64_MAX
from node.types import ResultCode

CHUNK_SHIFT: Final = 24
"""Reminder keys are scanned in chunks sharing the top 40 bits of the due time (2^24 ms,
about 4.7 hours): the view iterates prefixes only, and a chunk prefix bounds a time window."""
CHUNK_SCAN_LIMIT: Final = 512
"""Most reminders read from one chunk (a plan opens at most 16 x 12 a day)."""
LIST_SPAN_MS: Final = 7 * DAY_MS
"""``list_reminders`` looks this far past ``from_ms`` (clients page week by week)."""
MAX_LIST_LIMIT: Final = 256


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
        found.append(ReminderEntry(due_ms, item, decode_stored(REMINDER_CODEC, stored)))
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
        reminder = decode_stored(REMINDER_CODEC, stored)
        if reminder.status is ReminderStatus.OPEN and reminder.kind is ItemKind.MEASUREMENT:
            distance_ms = abs(due_ms - time_ms)
            if best is None or distance_ms < abs(best.due_ms - time_ms):
                best = ReminderEntry(due_ms, item, reminder)
    return best


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

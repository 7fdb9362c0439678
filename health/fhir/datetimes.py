"""FHIR ``dateTime`` text to and from epoch milliseconds, by integer calendar arithmetic.

``iso_datetime`` and ``parse_datetime`` convert epoch milliseconds to and from FHIR
``dateTime`` text (days from civil / civil from days, H. Hinnant's algorithms); no
``datetime``, no clock.
"""

from __future__ import annotations

import re
from typing import Final

from health.contracts.common import DAY_MS
from health.fhir.base import FhirError, check_int

SECOND_MS: Final = 1000
MINUTE_MS: Final = 60 * SECOND_MS
HOUR_MS: Final = 60 * MINUTE_MS
MAX_ZONE_OFFSET_MINUTES: Final = 14 * 60
"""FHIR zone offsets run from -14:00 to +14:00."""
_DATETIME_PATTERN: Final = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]{1,9}))?"
    r"(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII,
)


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of the proleptic Gregorian date ``year-month-day`` (negative
    before it). Integer arithmetic (H. Hinnant's algorithm); the date is not checked."""
    shifted_year = year - 1 if month <= 2 else year
    era = shifted_year // 400
    year_of_era = shifted_year - era * 400
    day_of_year = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """The proleptic Gregorian ``(year, month, day)`` ``days`` days after 1970-01-01; the
    inverse of ``days_from_civil``."""
    shifted = days + 719468
    era = shifted // 146097
    day_of_era = shifted - era * 146097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_index = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_index + 2) // 5 + 1
    month = month_index + 3 if month_index < 10 else month_index - 9
    year = year_of_era + era * 400 + (1 if month <= 2 else 0)
    return year, month, day


def days_in_month(year: int, month: int) -> int:
    """The number of days of ``month`` (1..12) of ``year`` (Gregorian leap years)."""
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


MIN_TIME_MS: Final = days_from_civil(1, 1, 1) * DAY_MS
"""0001-01-01T00:00:00Z, the earliest FHIR time."""
MAX_TIME_MS: Final = days_from_civil(10000, 1, 1) * DAY_MS - 1
"""9999-12-31T23:59:59.999Z, the latest FHIR time."""


def iso_datetime(time_ms: int, tz_offset_minutes: int = 0) -> str:
    """FHIR ``dateTime`` (and ``instant``) text of the epoch milliseconds ``time_ms`` on the
    clock of the zone ``tz_offset_minutes`` (local = UTC + offset, -840..840):
    ``YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)``; the fraction only when the milliseconds are not
    zero, ``Z`` for offset 0. ``FhirError`` if either the UTC or the local time is outside
    the years 0001..9999. ``parse_datetime`` reads it back."""
    check_int(time_ms, MIN_TIME_MS, MAX_TIME_MS, "a time in epoch milliseconds")
    check_int(tz_offset_minutes, -MAX_ZONE_OFFSET_MINUTES, MAX_ZONE_OFFSET_MINUTES, "a zone offset")
    local_ms = time_ms + tz_offset_minutes * MINUTE_MS
    check_int(local_ms, MIN_TIME_MS, MAX_TIME_MS, "a local time in epoch milliseconds")
    days, of_day = divmod(local_ms, DAY_MS)
    year, month, day = civil_from_days(days)
    hour, of_hour = divmod(of_day, HOUR_MS)
    minute, of_minute = divmod(of_hour, MINUTE_MS)
    second, milli = divmod(of_minute, SECOND_MS)
    fraction = f".{milli:03d}" if milli else ""
    if tz_offset_minutes == 0:
        zone = "Z"
    else:
        sign = "+" if tz_offset_minutes > 0 else "-"
        zone_hours, zone_minutes = divmod(abs(tz_offset_minutes), 60)
        zone = f"{sign}{zone_hours:02d}:{zone_minutes:02d}"
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{zone}"


def parse_datetime(text: str) -> int:
    """The epoch milliseconds of a FHIR ``dateTime`` with a time of day and a zone:
    ``YYYY-MM-DDThh:mm:ss[.f{1,9}](Z|±hh:mm)`` (fraction digits past the milliseconds are
    dropped). ``FhirError`` for anything else: a partial date (the reading's instant must
    be known), an impossible date or time, a leap second (``:60``, which epoch time cannot
    hold), a zone beyond ±14:00, or a time outside the years 0001..9999 UTC."""
    if not isinstance(text, str):
        raise FhirError(f"a dateTime is a string, got {type(text).__name__}")
    match = _DATETIME_PATTERN.fullmatch(text)
    if match is None:
        raise FhirError(f"not a FHIR dateTime with a time and a zone: {text!r}")
    year, month, day = (int(match[name]) for name in ("year", "month", "day"))
    hour, minute, second = (int(match[name]) for name in ("hour", "minute", "second"))
    if year < 1 or not 1 <= month <= 12 or not 1 <= day <= days_in_month(year, month):
        raise FhirError(f"no such date: {text!r}")
    if hour > 23 or minute > 59 or second > 59:
        raise FhirError(f"no such time of day (leap seconds are not supported): {text!r}")
    offset_minutes = _zone_offset_minutes(match["zone"], text)
    milli = int((match["fraction"] or "0")[:3].ljust(3, "0"))
    local_ms = (
        days_from_civil(year, month, day) * DAY_MS
        + hour * HOUR_MS
        + minute * MINUTE_MS
        + second * SECOND_MS
        + milli
    )
    time_ms = local_ms - offset_minutes * MINUTE_MS
    if not MIN_TIME_MS <= time_ms <= MAX_TIME_MS:
        raise FhirError(f"{text!r} is outside the years 0001..9999 in UTC")
    return time_ms


def _zone_offset_minutes(zone: str, text: str) -> int:
    if zone == "Z":
        return 0
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if minutes > 59 or hours * 60 + minutes > MAX_ZONE_OFFSET_MINUTES:
        raise FhirError(f"a zone offset is -14:00..+14:00: {text!r}")
    magnitude = hours * 60 + minutes
    return -magnitude if zone[0] == "-" else magnitude

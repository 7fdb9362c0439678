"""FHIR R4 resources of the health records: glucose readings, care plans, consents, bundles.

Records are FHIR R4 JSON resources, encrypted end to end (``health.envelopes``); this module
builds and reads them, without any FHIR library (the tests validate every resource built
here against the ``fhir.resources`` R4B models, whose content for these resources is R4's):

- glucose readings: ``glucose_observation`` builds an ``Observation`` (LOINC 41653-7 for a
  meter, 99504-3 for a CGM, UCUM mg/dL), ``reading_of`` reads one back, ``record_code``
  gives the code the chain commits (``common.GLUCOSE_READING_CODES``);
- care plans: ``CarePlanContent`` is the decrypted plan (medications, measurement times,
  targets, time zone) with a canonical JSON form; ``care_plan_resources`` renders it as a
  ``CarePlan``, ``MedicationRequest``s and a ``Goal``; ``schedule_of`` gives the schedule
  the ``care`` contract stores (item numbers and times only: no names, no doses);
- consents: ``consent_resource`` renders a grant as an R4 ``Consent``;
- bundles: ``bundle`` (deterministic ``urn:uuid`` full URLs) and ``resources_of``;
- JSON: ``dumps`` (canonical bytes, what gets encrypted) and ``loads`` (bounded parsing);
- time: ``iso_datetime`` and ``parse_datetime`` convert epoch milliseconds to and from FHIR
  ``dateTime`` text with integer calendar arithmetic (days from civil / civil from days).

Pure functions: no clock, no randomness, no I/O. Every refusal is a ``FhirError`` (also a
``ValueError``) whose message says what is wrong.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Final, NamedTuple

from crypto_core.signatures import sha256
from health.contracts.care import (
    MAX_ITEM_NUMBER,
    MAX_ITEMS,
    MAX_TIMES_PER_ITEM,
    MAX_TZ_OFFSET_MINUTES,
    MIN_TZ_OFFSET_MINUTES,
    MINUTES_PER_DAY,
)
from health.contracts.common import CODE_PATTERN, DAY_MS, FHIR_TYPE_PATTERN
from health.envelopes import MAX_PLAINTEXT_BYTES
from health.glucose import MAX_PLAUSIBLE_MG_DL, MIN_PLAUSIBLE_MG_DL, GlucoseError, check_reading
from node.errors import BigHealthError

Json = dict[str, Any]
"""A JSON object as ``json`` parses it (a FHIR resource, or part of one)."""


class FhirError(BigHealthError, ValueError):
    """A FHIR resource, a value for one, or a JSON text that this module refuses; the
    message says which element is wrong and why."""


# -- code systems and codes ---------------------------------------------------------------------

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
CONSENT_SCOPE: Final = "http://terminology.hl7.org/CodeSystem/consentscope"
PARTICIPATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ACT_REASON: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
RESOURCE_TYPES: Final = "http://hl7.org/fhir/resource-types"

LOINC_CAPILLARY_GLUCOSE_METER: Final = "41653-7"
"""Glucose [Mass/volume] in Capillary blood by Glucometer."""
LOINC_INTERSTITIAL_GLUCOSE_CGM: Final = "99504-3"
"""Glucose [Mass/volume] in Interstitial fluid (continuous glucose monitors)."""
LOINC_PATIENT_CONSENT: Final = "59284-0"
GLUCOSE_DISPLAYS: Final[Mapping[str, str]] = {
    LOINC_CAPILLARY_GLUCOSE_METER: "Glucose [Mass/volume] in Capillary blood by Glucometer",
    LOINC_INTERSTITIAL_GLUCOSE_CGM: "Glucose [Mass/volume] in Interstitial fluid",
}
DEVICE_GLUCOSE_CODES: Final[Mapping[str, str]] = {
    "glucose_meter": LOINC_CAPILLARY_GLUCOSE_METER,
    "cgm": LOINC_INTERSTITIAL_GLUCOSE_CGM,
}
"""The LOINC code of a reading by each kind of device (the identity module's device kinds)."""
MG_DL: Final = "mg/dL"
MMOL_L: Final = "mmol/L"
MG_DL_PER_MMOL_L: Final = 18.0
"""Glucose: 1 mmol/L is 18.0 mg/dL (molar mass 180.16 g/mol, rounded as clinicians do)."""
READABLE_STATUSES: Final = frozenset({"final", "amended", "corrected"})
"""Observation statuses whose value ``reading_of`` accepts as a reading."""

PURPOSE_CODES: Final[Mapping[str, tuple[str, str]]] = {
    "treatment": ("TREAT", "treatment"),
    "research": ("HRESCH", "healthcare research"),
    "emergency": ("ETREAT", "Emergency Treatment"),
}
"""A grant's purpose and its v3-ActReason code and display."""
CONSENT_STATUSES: Final = frozenset({"active", "inactive", "rejected"})

# -- limits ------------------------------------------------------------------------------------

MAX_JSON_BYTES: Final = MAX_PLAINTEXT_BYTES
"""Largest JSON text ``dumps`` writes or ``loads`` reads (a record's largest content)."""
MAX_JSON_DEPTH: Final = 32
"""Deepest nesting of objects and arrays accepted (FHIR resources nest about ten deep)."""
MAX_BUNDLE_ENTRIES: Final = 10_000
MAX_REFERENCE_CHARS: Final = 512
MAX_PLAN_ID_CHARS: Final = 56
"""A plan id leaves room for the ids derived from it (``<plan>-med-255``) within 64."""
MAX_NAME_CHARS: Final = 200
MAX_DOSE_CHARS: Final = 100
MAX_NOTE_CHARS: Final = 4000
MAX_CONSENT_SCOPE_ENTRIES: Final = 64
ID_PATTERN: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}", re.ASCII)
"""A FHIR ``id``."""
REFERENCE_PATTERN: Final = re.compile(
    r"[A-Z][A-Za-z]{0,63}/[A-Za-z0-9\-.]{1,64}"
    r"|urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|https?://[!-~]+",
    re.ASCII,
)
"""References accepted: relative ``Type/id``, ``urn:uuid:...``, or an absolute http(s) URL."""
RXNORM_PATTERN: Final = re.compile(r"[0-9]{1,10}", re.ASCII)

# -- time --------------------------------------------------------------------------------------

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
    _check_int(time_ms, MIN_TIME_MS, MAX_TIME_MS, "a time in epoch milliseconds")
    _check_int(
        tz_offset_minutes, -MAX_ZONE_OFFSET_MINUTES, MAX_ZONE_OFFSET_MINUTES, "a zone offset"
    )
    local_ms = time_ms + tz_offset_minutes * MINUTE_MS
    _check_int(local_ms, MIN_TIME_MS, MAX_TIME_MS, "a local time in epoch milliseconds")
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


def _time_of_day(minutes: int) -> str:
    """FHIR ``time`` text ``hh:mm:ss`` of a minute of the day."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


# -- JSON --------------------------------------------------------------------------------------


def dumps(resource: Mapping[str, Any]) -> bytes:
    """The canonical JSON bytes of ``resource`` (what gets encrypted): UTF-8, keys sorted,
    no whitespace, no NaN or infinities, string keys only, at most ``MAX_JSON_DEPTH`` deep
    and ``MAX_JSON_BYTES`` long. Equal values give equal bytes; ``loads`` reads them
    back. ``FhirError`` if the value cannot be such JSON."""
    if not isinstance(resource, Mapping):
        raise FhirError(f"a resource is a JSON object, got {type(resource).__name__}")
    _check_tree(resource)
    try:
        text = json.dumps(
            resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        data = text.encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise FhirError(f"not representable as JSON: {exc}") from exc
    if len(data) > MAX_JSON_BYTES:
        raise FhirError(f"a resource is at most {MAX_JSON_BYTES} bytes of JSON, got {len(data)}")
    return data


def loads(data: bytes | str) -> Json:
    """The JSON object in ``data`` (UTF-8 bytes, or text). ``FhirError`` if it is larger
    than ``MAX_JSON_BYTES``, not UTF-8, not JSON, not an object, deeper than
    ``MAX_JSON_DEPTH``, or has a duplicate key, a NaN or an infinity."""
    if isinstance(data, str):
        if len(data) > MAX_JSON_BYTES:
            raise FhirError(f"a JSON text is at most {MAX_JSON_BYTES} bytes")
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise FhirError("the text is not valid Unicode") from exc
    if not isinstance(data, bytes | bytearray):
        raise FhirError(f"JSON comes as bytes or text, got {type(data).__name__}")
    if len(data) > MAX_JSON_BYTES:
        raise FhirError(f"a JSON text is at most {MAX_JSON_BYTES} bytes, got {len(data)}")
    try:
        value = json.loads(
            bytes(data).decode("utf-8"),
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_refuse_constant,
        )
    except FhirError:
        raise
    except RecursionError as exc:
        raise FhirError(f"JSON nests deeper than {MAX_JSON_DEPTH}") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, huge integers
        raise FhirError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise FhirError(f"a resource is a JSON object, got {type(value).__name__}")
    _check_tree(value)
    return value


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> Json:
    result: Json = {}
    for key, value in pairs:
        if key in result:
            raise FhirError(f"duplicate key {key!r} in a JSON object")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise FhirError(f"{name} is not a JSON number")


def _check_tree(value: Any) -> None:
    """``FhirError`` if ``value`` nests objects and arrays deeper than ``MAX_JSON_DEPTH``
    or has an object key that is not a string (iterative: no recursion limit)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children: list[Any]
        if isinstance(node, Mapping):
            if not all(isinstance(key, str) for key in node):
                raise FhirError("JSON object keys are strings")
            children = list(node.values())
        elif isinstance(node, list | tuple):
            children = list(node)
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise FhirError(f"JSON nests deeper than {MAX_JSON_DEPTH}")
        stack.extend(
            (child, depth + 1) for child in children if isinstance(child, Mapping | list | tuple)
        )


# -- checks and small builders -----------------------------------------------------------------


def _check_int(value: object, low: int, high: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise FhirError(f"{what} is an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise FhirError(f"{what} is {low}..{high}, got {value}")
    return value


def _check_text(value: object, max_chars: int, what: str, *, empty: bool = False) -> str:
    """``value`` if it is a FHIR string: at most ``max_chars``, no control characters, no
    whitespace but spaces, tabs and line breaks (R4's ``[ \\r\\n\\t\\S]+``), none of it
    leading or trailing; empty only if ``empty``."""
    if not isinstance(value, str):
        raise FhirError(f"{what} is a string, got {type(value).__name__}")
    if not value and not empty:
        raise FhirError(f"{what} is empty")
    if len(value) > max_chars:
        raise FhirError(f"{what} is at most {max_chars} characters, got {len(value)}")
    if value != value.strip():
        raise FhirError(f"{what} has leading or trailing whitespace")
    if any(unicodedata.category(char) == "Cc" and char not in "\t\r\n" for char in value):
        raise FhirError(f"{what} holds control characters")
    if any(char.isspace() and char not in " \t\r\n" for char in value):
        raise FhirError(f"{what} holds whitespace other than spaces, tabs and line breaks")
    return value


def _check_id(value: object, what: str, max_chars: int = 64) -> str:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value) or len(value) > max_chars:
        raise FhirError(
            f"{what} is a FHIR id (letters, digits, '-', '.'; 1..{max_chars}), got {value!r}"
        )
    return value


def _check_reference(value: object, what: str) -> str:
    if (
        not isinstance(value, str)
        or len(value) > MAX_REFERENCE_CHARS
        or not REFERENCE_PATTERN.fullmatch(value)
    ):
        raise FhirError(
            f"{what} is a reference ('Type/id', 'urn:uuid:...' or an http(s) URL), got {value!r}"
        )
    return value


def _coding(system: str, code: str, display: str | None = None) -> Json:
    coding: Json = {"system": system, "code": code}
    if display is not None:
        coding["display"] = display
    return coding


def _concept(system: str, code: str, display: str | None = None, text: str | None = None) -> Json:
    concept: Json = {"coding": [_coding(system, code, display)]}
    if text is not None:
        concept["text"] = text
    return concept


def _reference(reference: str) -> Json:
    return {"reference": reference}


def _mg_dl_quantity(value: float) -> Json:
    return {"value": value, "unit": MG_DL, "system": UCUM, "code": MG_DL}


def _require_type(resource: object, resource_type: str) -> Mapping[str, Any]:
    if not isinstance(resource, Mapping):
        raise FhirError(f"a {resource_type} is a JSON object, got {type(resource).__name__}")
    found = resource.get("resourceType")
    if found != resource_type:
        raise FhirError(f"expected a {resource_type}, got resourceType {found!r}")
    return resource


# -- glucose readings --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GlucoseReading:
    """A glucose reading read from an Observation: the value in mg/dL, the time it was
    taken (epoch milliseconds) and the chain's code of the record (``record_code``)."""

    mg_dl: float
    time_ms: int
    code: str


def record_code(device: str) -> str:
    """The code the chain commits for a reading by ``device`` (``glucose_meter`` or
    ``cgm``): ``http://loinc.org|41653-7`` or ``http://loinc.org|99504-3``, the codes of
    ``common.GLUCOSE_READING_CODES``."""
    return f"{LOINC}|{_device_code(device)}"


def _device_code(device: object) -> str:
    if not isinstance(device, str) or device not in DEVICE_GLUCOSE_CODES:
        raise FhirError(
            f"a glucose device is one of {sorted(DEVICE_GLUCOSE_CODES)}, got {device!r}"
        )
    return DEVICE_GLUCOSE_CODES[device]


def glucose_observation(
    *,
    observation_id: str,
    patient_ref: str,
    mg_dl: float,
    time_ms: int,
    device: str,
    device_ref: str | None = None,
) -> Json:
    """An R4 ``Observation`` of one glucose reading: status ``final``, category
    ``laboratory`` (as the HL7 CGM implementation guide's sensor readings), the LOINC code of
    ``device`` (41653-7 for ``glucose_meter``, 99504-3 for ``cgm``), the patient as subject,
    ``effectiveDateTime`` in UTC, ``valueQuantity`` in UCUM mg/dL and, if given, the device.
    ``FhirError`` for a bad id or reference, an unknown device, a time outside 0001..9999 or
    an implausible value (``glucose.check_reading``: 10..1000 mg/dL)."""
    code = _device_code(device)
    _check_id(observation_id, "an observation id")
    _check_reference(patient_ref, "the patient reference")
    if isinstance(mg_dl, bool) or not isinstance(mg_dl, int | float):
        raise FhirError(f"a glucose value is a number, got {type(mg_dl).__name__}")
    try:
        check_reading(mg_dl)
    except GlucoseError as exc:
        raise FhirError(str(exc)) from exc
    observation: Json = {
        "resourceType": "Observation",
        "id": observation_id,
        "status": "final",
        "category": [_concept(OBSERVATION_CATEGORY, "laboratory", "Laboratory")],
        "code": _concept(LOINC, code, GLUCOSE_DISPLAYS[code]),
        "subject": _reference(patient_ref),
        "effectiveDateTime": iso_datetime(time_ms),
        "valueQuantity": _mg_dl_quantity(mg_dl),
    }
    if device_ref is not None:
        observation["device"] = _reference(_check_reference(device_ref, "the device reference"))
    return observation


def reading_of(observation: Mapping[str, Any]) -> GlucoseReading:
    """The glucose reading of an ``Observation``: its status is ``final``, ``amended`` or
    ``corrected``; its code has a LOINC coding 41653-7 or 99504-3; its time is an
    ``effectiveDateTime`` or ``effectiveInstant`` with a time of day and a zone; its value
    is a ``valueQuantity`` without comparator in UCUM ``mg/dL``, or in ``mmol/L``, which is
    converted to mg/dL by × 18.0 (``MG_DL_PER_MMOL_L``), and plausible (10..1000 mg/dL).
    ``FhirError`` otherwise, saying which element is wrong."""
    _require_type(observation, "Observation")
    status = observation.get("status")
    if not isinstance(status, str) or status not in READABLE_STATUSES:
        raise FhirError(f"a reading's status is one of {sorted(READABLE_STATUSES)}, got {status!r}")
    code = _glucose_code_of(observation.get("code"))
    if "effectiveDateTime" in observation:
        time_ms = parse_datetime(observation["effectiveDateTime"])
    elif "effectiveInstant" in observation:
        time_ms = parse_datetime(observation["effectiveInstant"])
    else:
        raise FhirError("a reading has an effectiveDateTime or an effectiveInstant")
    return GlucoseReading(_mg_dl_of(observation.get("valueQuantity")), time_ms, code)


def _glucose_code_of(concept: object) -> str:
    codings = concept.get("coding") if isinstance(concept, Mapping) else None
    if not isinstance(codings, list):
        raise FhirError("an Observation's code has a list of codings")
    for coding in codings:
        if (
            isinstance(coding, Mapping)
            and coding.get("system") == LOINC
            and isinstance(coding.get("code"), str)
            and coding["code"] in GLUCOSE_DISPLAYS
        ):
            return f"{LOINC}|{coding['code']}"
    raise FhirError(
        f"not a glucose reading: no LOINC coding {' or '.join(sorted(GLUCOSE_DISPLAYS))}"
    )


def _mg_dl_of(quantity: object) -> float:
    if not isinstance(quantity, Mapping):
        raise FhirError("a reading has a valueQuantity")
    if "comparator" in quantity:
        raise FhirError("a value with a comparator (out of the meter's range) is not a reading")
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FhirError(f"a reading's value is a finite number, got {value!r}")
    if quantity.get("system") != UCUM:
        raise FhirError(f"a reading's unit is a UCUM code ({UCUM}), got {quantity.get('system')!r}")
    unit = quantity.get("code")
    if unit == MG_DL:
        mg_dl = float(value)
    elif unit == MMOL_L:
        mg_dl = float(value) * MG_DL_PER_MMOL_L
    else:
        raise FhirError(f"a reading is in {MG_DL} or {MMOL_L}, got {unit!r}")
    try:
        return check_reading(mg_dl)
    except GlucoseError as exc:
        raise FhirError(str(exc)) from exc


# -- care plans --------------------------------------------------------------------------------

PLAN_FORMAT: Final = "bighealth/care-plan/v1"
"""The ``format`` member of a plan's canonical JSON (``CarePlanContent.to_json``)."""
DOSE: Final = "dose"
MEASUREMENT: Final = "measurement"
MEASUREMENT_ITEM: Final = 0
"""The schedule item of glucose measurements; medications are items 1..255."""
_DOSE_PATTERN: Final = re.compile(r"(?P<value>[0-9]{1,7}(?:\.[0-9]{1,4})?) ?(?P<unit>[^\s0-9]+)")
_UCUM_DOSE_UNITS: Final[Mapping[str, str]] = {
    "mg": "mg",
    "g": "g",
    "mcg": "ug",
    "ug": "ug",
    "µg": "ug",
    "ml": "mL",
    "u": "[iU]",
    "iu": "[iU]",
    "unit": "[iU]",
    "units": "[iU]",
}
"""Dose units (lower case) with a UCUM code; insulin units are international units."""


@dataclass(frozen=True, slots=True)
class Medication:
    """Medication item ``item`` of a plan (1..255: its number in the chain's schedule).

    ``name``: free text (1..200 characters); ``dose``: free text per intake, e.g.
    ``"500 mg"`` or ``"10 units"`` (1..100); ``rxnorm``: an RxNorm code (digits) or None;
    ``times_of_day_minutes``: 1..12 strictly increasing minutes after local midnight
    (0..1439). ``FhirError`` at construction if any of this does not hold."""

    item: int
    name: str
    dose: str
    rxnorm: str | None
    times_of_day_minutes: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_int(self.item, 1, MAX_ITEM_NUMBER, "a medication item")
        what = f"medication item {self.item}"
        _check_text(self.name, MAX_NAME_CHARS, f"the name of {what}")
        _check_text(self.dose, MAX_DOSE_CHARS, f"the dose of {what}")
        if self.rxnorm is not None and (
            not isinstance(self.rxnorm, str) or not RXNORM_PATTERN.fullmatch(self.rxnorm)
        ):
            raise FhirError(f"the RxNorm code of {what} is 1..10 digits, got {self.rxnorm!r}")
        _check_times(self.times_of_day_minutes, 1, f"the times of {what}")


@dataclass(frozen=True, slots=True)
class CarePlanContent:
    """The decrypted content of a diabetes care plan.

    ``plan_id``: a FHIR id of at most 56 characters (the plan's resources derive theirs
    from it); ``patient_ref``, ``author_ref`` (the practitioner): references;
    ``medications``: in strictly increasing item order; ``measurement_times_minutes``: 0..12
    strictly increasing local minutes after midnight for glucose self-monitoring (none: no
    measurement item); at most 16 schedule items in all (the care contract's limit). Targets
    and alert thresholds in mg/dL: 10 <= alert_low <= target_low < target_high <= alert_high
    <= 1000. ``tz_offset_minutes``: the patient's zone (local = UTC + offset, -720..840);
    ``note``: free text, up to 4000 characters, or empty. ``FhirError`` at construction if
    any of this does not hold."""

    plan_id: str
    patient_ref: str
    author_ref: str
    medications: tuple[Medication, ...]
    measurement_times_minutes: tuple[int, ...]
    target_low_mg_dl: int = 70
    target_high_mg_dl: int = 180
    alert_low_mg_dl: int = 70
    alert_high_mg_dl: int = 250
    tz_offset_minutes: int = 0
    note: str = ""

    def __post_init__(self) -> None:
        _check_id(self.plan_id, "a plan id", MAX_PLAN_ID_CHARS)
        _check_reference(self.patient_ref, "the patient reference")
        _check_reference(self.author_ref, "the author reference")
        _check_medications(self.medications)
        _check_times(self.measurement_times_minutes, 0, "the measurement times")
        items = len(self.medications) + (1 if self.measurement_times_minutes else 0)
        if items > MAX_ITEMS:
            raise FhirError(f"a plan schedules at most {MAX_ITEMS} items, got {items}")
        _check_targets(self)
        _check_int(
            self.tz_offset_minutes,
            MIN_TZ_OFFSET_MINUTES,
            MAX_TZ_OFFSET_MINUTES,
            "the zone offset in minutes",
        )
        _check_text(self.note, MAX_NOTE_CHARS, "the note", empty=True)

    def to_json(self) -> bytes:
        """The canonical JSON of the plan (``dumps``: sorted keys, compact UTF-8), what is
        encrypted as the plan's record; ``from_json`` reads it back to an equal plan."""
        return dumps(
            {
                "format": PLAN_FORMAT,
                "plan_id": self.plan_id,
                "patient_ref": self.patient_ref,
                "author_ref": self.author_ref,
                "medications": [
                    {
                        "item": medication.item,
                        "name": medication.name,
                        "dose": medication.dose,
                        "rxnorm": medication.rxnorm,
                        "times_of_day_minutes": list(medication.times_of_day_minutes),
                    }
                    for medication in self.medications
                ],
                "measurement_times_minutes": list(self.measurement_times_minutes),
                "target_low_mg_dl": self.target_low_mg_dl,
                "target_high_mg_dl": self.target_high_mg_dl,
                "alert_low_mg_dl": self.alert_low_mg_dl,
                "alert_high_mg_dl": self.alert_high_mg_dl,
                "tz_offset_minutes": self.tz_offset_minutes,
                "note": self.note,
            }
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> CarePlanContent:
        """The plan in ``data`` (``to_json``'s form: every member present, no other, the
        ``format`` ``bighealth/care-plan/v1``). ``FhirError`` for bad JSON, a missing or
        unknown member, a wrong type or a plan that fails validation."""
        value = loads(data)
        _check_members(value, _PLAN_MEMBERS, "a care plan")
        if value["format"] != PLAN_FORMAT:
            raise FhirError(f"a care plan's format is {PLAN_FORMAT!r}, got {value['format']!r}")
        medications = value["medications"]
        if not isinstance(medications, list):
            raise FhirError("a care plan's medications are a list")
        return cls(
            plan_id=value["plan_id"],
            patient_ref=value["patient_ref"],
            author_ref=value["author_ref"],
            medications=tuple(_medication_from(entry) for entry in medications),
            measurement_times_minutes=_int_tuple(
                value["measurement_times_minutes"], "the measurement times"
            ),
            target_low_mg_dl=value["target_low_mg_dl"],
            target_high_mg_dl=value["target_high_mg_dl"],
            alert_low_mg_dl=value["alert_low_mg_dl"],
            alert_high_mg_dl=value["alert_high_mg_dl"],
            tz_offset_minutes=value["tz_offset_minutes"],
            note=value["note"],
        )


_PLAN_MEMBERS: Final = frozenset(
    {
        "format",
        "plan_id",
        "patient_ref",
        "author_ref",
        "medications",
        "measurement_times_minutes",
        "target_low_mg_dl",
        "target_high_mg_dl",
        "alert_low_mg_dl",
        "alert_high_mg_dl",
        "tz_offset_minutes",
        "note",
    }
)
_MEDICATION_MEMBERS: Final = frozenset({"item", "name", "dose", "rxnorm", "times_of_day_minutes"})


def _check_members(value: Mapping[str, Any], members: frozenset[str], what: str) -> None:
    missing, unknown = members - value.keys(), value.keys() - members
    if missing:
        raise FhirError(f"{what} lacks {', '.join(sorted(missing))}")
    if unknown:
        raise FhirError(f"{what} has unknown members {', '.join(sorted(unknown))}")


def _medication_from(entry: object) -> Medication:
    if not isinstance(entry, Mapping):
        raise FhirError("a medication is a JSON object")
    _check_members(entry, _MEDICATION_MEMBERS, "a medication")
    return Medication(
        item=entry["item"],
        name=entry["name"],
        dose=entry["dose"],
        rxnorm=entry["rxnorm"],
        times_of_day_minutes=_int_tuple(entry["times_of_day_minutes"], "a medication's times"),
    )


def _int_tuple(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise FhirError(f"{what} are a list of minutes")
    return tuple(value)


def _check_times(times: object, min_count: int, what: str) -> None:
    if not isinstance(times, tuple):
        raise FhirError(f"{what} are a tuple of minutes, got {type(times).__name__}")
    if not min_count <= len(times) <= MAX_TIMES_PER_ITEM:
        raise FhirError(f"{what} are {min_count}..{MAX_TIMES_PER_ITEM}, got {len(times)}")
    for minute in times:
        _check_int(minute, 0, MINUTES_PER_DAY - 1, f"a minute of the day in {what}")
    if any(later <= earlier for earlier, later in pairwise(times)):
        raise FhirError(f"{what} must strictly increase, got {list(times)}")


def _check_medications(medications: object) -> None:
    if not isinstance(medications, tuple):
        raise FhirError(f"the medications are a tuple, got {type(medications).__name__}")
    previous = 0
    for medication in medications:
        if not isinstance(medication, Medication):
            raise FhirError(f"a medication is a Medication, got {type(medication).__name__}")
        if medication.item <= previous:
            raise FhirError("medications are in strictly increasing item order")
        previous = medication.item


def _check_targets(content: CarePlanContent) -> None:
    names = ("alert_low_mg_dl", "target_low_mg_dl", "target_high_mg_dl", "alert_high_mg_dl")
    values = [getattr(content, name) for name in names]
    for name, value in zip(names, values, strict=True):
        _check_int(value, MIN_PLAUSIBLE_MG_DL, MAX_PLAUSIBLE_MG_DL, name)
    alert_low, target_low, target_high, alert_high = values
    if not alert_low <= target_low < target_high <= alert_high:
        raise FhirError(
            "the thresholds must satisfy alert_low <= target_low < target_high <= alert_high,"
            f" got {alert_low}, {target_low}, {target_high}, {alert_high}"
        )


class ScheduleEntry(NamedTuple):
    """One item of the chain's schedule: ``(item, kind, times_of_day_minutes)``."""

    item: int
    kind: str
    times_of_day_minutes: tuple[int, ...]


def schedule_of(content: CarePlanContent) -> list[ScheduleEntry]:
    """The schedule the ``care`` contract stores for ``content`` (``care.set_plan``'s
    items): the measurement item 0 (kind ``measurement``) if the plan has measurement
    times, then one ``dose`` item per medication (item = ``Medication.item``), in increasing
    item order, with their local times of day. No names, doses or targets."""
    entries: list[ScheduleEntry] = []
    if content.measurement_times_minutes:
        entries.append(
            ScheduleEntry(MEASUREMENT_ITEM, MEASUREMENT, content.measurement_times_minutes)
        )
    entries.extend(
        ScheduleEntry(medication.item, DOSE, medication.times_of_day_minutes)
        for medication in content.medications
    )
    return entries


def medication_request_id(plan_id: str, item: int) -> str:
    """The id of the ``MedicationRequest`` of medication ``item`` of plan ``plan_id``."""
    return f"{plan_id}-med-{item}"


def goal_id(plan_id: str) -> str:
    """The id of the target-range ``Goal`` of plan ``plan_id``."""
    return f"{plan_id}-goal"


def care_plan_resources(content: CarePlanContent) -> list[Json]:
    """The plan as R4 resources: a ``CarePlan`` (status ``active``, intent ``plan``; one
    activity per medication referencing its ``MedicationRequest``, one for glucose
    self-monitoring with its timing if the plan has measurement times; the goal; the note),
    then one ``MedicationRequest`` per medication (status ``active``, intent ``order``,
    ``basedOn`` the plan), then the ``Goal`` of the target range. Times of day are the
    patient's local time (FHIR ``timeOfDay`` is local by definition). References between
    them are relative (``MedicationRequest/<id>``). The alert thresholds and the zone offset
    have no place in these resources: they stay in the plan's JSON (the offset is also in
    the chain's schedule)."""
    plan: Json = {
        "resourceType": "CarePlan",
        "id": content.plan_id,
        "status": "active",
        "intent": "plan",
        "title": "Diabetes care plan",
        "subject": _reference(content.patient_ref),
        "author": _reference(content.author_ref),
        "goal": [_reference(f"Goal/{goal_id(content.plan_id)}")],
    }
    activities: list[Json] = [
        {"reference": _reference(f"MedicationRequest/{request_id}")}
        for request_id in (
            medication_request_id(content.plan_id, medication.item)
            for medication in content.medications
        )
    ]
    if content.measurement_times_minutes:
        activities.append(_monitoring_activity(content))
    if activities:
        plan["activity"] = activities
    if content.note:
        plan["note"] = [{"text": content.note}]
    return [
        plan,
        *(_medication_request(content, medication) for medication in content.medications),
        _goal(content),
    ]


def _monitoring_activity(content: CarePlanContent) -> Json:
    times = content.measurement_times_minutes
    code = LOINC_CAPILLARY_GLUCOSE_METER
    return {
        "detail": {
            "code": _concept(LOINC, code, GLUCOSE_DISPLAYS[code], "Glucose self-monitoring"),
            "status": "scheduled",
            "scheduledTiming": _daily_timing(times),
            "performer": [_reference(content.patient_ref)],
            "description": f"Measure glucose at {_clock_list(times)} (local time)",
        }
    }


def _medication_request(content: CarePlanContent, medication: Medication) -> Json:
    concept: Json = {"text": medication.name}
    if medication.rxnorm is not None:
        concept["coding"] = [_coding(RXNORM, medication.rxnorm)]
    times = medication.times_of_day_minutes
    dosage: Json = {
        "sequence": 1,
        "text": f"{medication.dose} at {_clock_list(times)} (local time)",
        "timing": _daily_timing(times),
    }
    quantity = _dose_quantity(medication.dose)
    if quantity is not None:
        dosage["doseAndRate"] = [{"doseQuantity": quantity}]
    return {
        "resourceType": "MedicationRequest",
        "id": medication_request_id(content.plan_id, medication.item),
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": concept,
        "subject": _reference(content.patient_ref),
        "requester": _reference(content.author_ref),
        "basedOn": [_reference(f"CarePlan/{content.plan_id}")],
        "dosageInstruction": [dosage],
    }


def _goal(content: CarePlanContent) -> Json:
    low, high = content.target_low_mg_dl, content.target_high_mg_dl
    code = LOINC_CAPILLARY_GLUCOSE_METER
    return {
        "resourceType": "Goal",
        "id": goal_id(content.plan_id),
        "lifecycleStatus": "active",
        "description": {"text": f"Glucose between {low} and {high} mg/dL"},
        "subject": _reference(content.patient_ref),
        "expressedBy": _reference(content.author_ref),
        "target": [
            {
                "measure": _concept(LOINC, code, GLUCOSE_DISPLAYS[code]),
                "detailRange": {"low": _mg_dl_quantity(low), "high": _mg_dl_quantity(high)},
            }
        ],
    }


def _daily_timing(times: Sequence[int]) -> Json:
    """Every day at ``times`` (local minutes): ``len(times)`` times a day, at those times."""
    return {
        "repeat": {
            "frequency": len(times),
            "period": 1,
            "periodUnit": "d",
            "timeOfDay": [_time_of_day(minute) for minute in times],
        }
    }


def _clock_list(times: Sequence[int]) -> str:
    return ", ".join(f"{minute // 60:02d}:{minute % 60:02d}" for minute in times)


def _dose_quantity(dose: str) -> Json | None:
    """The Quantity of a free-text dose ``<number> <unit>`` (UCUM-coded when the unit is
    known, e.g. ``500 mg``, ``10 units``), or None when the text is not of that form."""
    match = _DOSE_PATTERN.fullmatch(dose)
    if match is None:
        return None
    text = match["value"]
    value: int | float = float(text) if "." in text else int(text)
    unit = match["unit"]
    quantity: Json = {"value": value, "unit": unit}
    ucum = _UCUM_DOSE_UNITS.get(unit.lower())
    if ucum is not None:
        quantity |= {"system": UCUM, "code": ucum}
    return quantity


# -- consents ----------------------------------------------------------------------------------


def consent_resource(
    *,
    consent_id: str,
    patient_ref: str,
    grantee_ref: str,
    purpose: str,
    resource_types: Sequence[str],
    codes: Sequence[str],
    data_from_ms: int,
    data_to_ms: int,
    issued_ms: int,
    expires_ms: int,
    status: str = "active",
) -> Json:
    """A grant as an R4 ``Consent``: scope ``patient-privacy``, category LOINC 59284-0
    (Patient Consent), the patient (also the performer), ``dateTime`` = issued, the
    ``policyRule`` v3-ActCode ``OPTIN`` (R4's ppc-1 wants a policy or a policyRule), and a
    ``permit`` provision: period issued..expires, the grantee as actor with role v3
    ParticipationType ``IRCP`` (information recipient), the purpose in v3-ActReason
    (``treatment`` TREAT, ``research`` HRESCH, ``emergency`` ETREAT), the resource types as
    ``class`` codings, the codes (``system|code`` or a bare code, as the chain writes them)
    as ``code`` concepts, and the data period (0 leaves that end open; both 0: none).
    Empty ``resource_types`` and ``codes`` mean all data. ``status``: ``active``,
    ``inactive`` or ``rejected``. ``FhirError`` for any other value, an expiry not after the
    issue, or a data period that ends before it starts."""
    _check_id(consent_id, "a consent id")
    _check_reference(patient_ref, "the patient reference")
    _check_reference(grantee_ref, "the grantee reference")
    if not isinstance(purpose, str) or purpose not in PURPOSE_CODES:
        raise FhirError(f"a purpose is one of {sorted(PURPOSE_CODES)}, got {purpose!r}")
    if not isinstance(status, str) or status not in CONSENT_STATUSES:
        raise FhirError(f"a consent status is one of {sorted(CONSENT_STATUSES)}, got {status!r}")
    issued = iso_datetime(issued_ms)
    expires = iso_datetime(expires_ms)
    if expires_ms <= issued_ms:
        raise FhirError(f"a consent expires after it is issued ({issued}), got {expires}")
    provision: Json = {
        "type": "permit",
        "period": {"start": issued, "end": expires},
        "actor": [
            {
                "role": _concept(PARTICIPATION_TYPE, "IRCP", "information recipient"),
                "reference": _reference(grantee_ref),
            }
        ],
        "purpose": [_coding(ACT_REASON, *PURPOSE_CODES[purpose])],
    }
    provision |= _provision_scope(resource_types, codes, data_from_ms, data_to_ms)
    return {
        "resourceType": "Consent",
        "id": consent_id,
        "status": status,
        "scope": _concept(CONSENT_SCOPE, "patient-privacy", "Privacy Consent"),
        "category": [_concept(LOINC, LOINC_PATIENT_CONSENT, "Patient Consent")],
        "patient": _reference(patient_ref),
        "dateTime": issued,
        "performer": [_reference(patient_ref)],
        "policyRule": _concept(ACT_CODE, "OPTIN", "opt-in"),
        "provision": provision,
    }


def _provision_scope(
    resource_types: object, codes: object, data_from_ms: int, data_to_ms: int
) -> Json:
    """The ``class``, ``code`` and ``dataPeriod`` members of a provision (each only if not
    empty)."""
    scope: Json = {}
    classes = [_coding(RESOURCE_TYPES, kind) for kind in _checked_types(resource_types)]
    if classes:
        scope["class"] = classes
    concepts = [{"coding": [_code_coding(code)]} for code in _checked_codes(codes)]
    if concepts:
        scope["code"] = concepts
    data_period = _data_period(data_from_ms, data_to_ms)
    if data_period:
        scope["dataPeriod"] = data_period
    return scope


def _checked_list(values: object, what: str) -> list[str]:
    if not isinstance(values, list | tuple):
        raise FhirError(f"{what} are a list of strings, got {type(values).__name__}")
    if len(values) > MAX_CONSENT_SCOPE_ENTRIES:
        raise FhirError(f"{what} are at most {MAX_CONSENT_SCOPE_ENTRIES}, got {len(values)}")
    if not all(isinstance(value, str) for value in values):
        raise FhirError(f"{what} are strings")
    if len(set(values)) != len(values):
        raise FhirError(f"{what} repeat an entry")
    return list(values)


def _checked_types(resource_types: object) -> list[str]:
    checked = _checked_list(resource_types, "the resource types")
    for kind in checked:
        if not FHIR_TYPE_PATTERN.fullmatch(kind):
            raise FhirError(f"not a FHIR resource type: {kind!r}")
    return checked


def _checked_codes(codes: object) -> list[str]:
    checked = _checked_list(codes, "the codes")
    for code in checked:
        if not CODE_PATTERN.fullmatch(code) or code.endswith("|"):
            raise FhirError(f"a code is 'system|code' or a bare code, got {code!r}")
    return checked


def _code_coding(code: str) -> Json:
    system, separator, value = code.rpartition("|")
    if not separator:
        return {"code": code}
    return _coding(system, value)


def _data_period(data_from_ms: int, data_to_ms: int) -> Json:
    period: Json = {}
    if data_from_ms:
        period["start"] = iso_datetime(data_from_ms)
    if data_to_ms:
        period["end"] = iso_datetime(data_to_ms)
    if data_from_ms and data_to_ms and data_to_ms < data_from_ms:
        raise FhirError("the data period ends before it starts")
    return period


# -- bundles -----------------------------------------------------------------------------------

BUILT_BUNDLE_TYPES: Final = frozenset({"collection", "searchset"})
"""Bundle types ``bundle`` builds (the others need entries with requests or a Composition)."""
READ_BUNDLE_TYPES: Final = frozenset(
    {"collection", "searchset", "document", "transaction", "batch"}
)
"""Bundle types ``resources_of`` reads (the types whose entries carry resources)."""
ENTRY_MEMBERS: Final = frozenset(
    {"id", "extension", "modifierExtension", "link", "fullUrl", "resource", "search", "request"}
)
FULL_URL_DOMAIN: Final = b"bighealth/fhir/full-url/v1\x00"


def resource_urn(resource_type: str, resource_id: str) -> str:
    """The deterministic ``urn:uuid:`` of the resource ``resource_type/resource_id``: the
    first 16 bytes of SHA-256(domain ‖ ``type/id``) formatted as an RFC 9562 version 8
    UUID (lower-case hex). The same resource gets the same URN in every bundle."""
    digest = bytearray(sha256(FULL_URL_DOMAIN + f"{resource_type}/{resource_id}".encode())[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80  # version 8
    digest[8] = (digest[8] & 0x3F) | 0x80  # variant RFC 9562
    text = digest.hex()
    return f"urn:uuid:{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def bundle(
    resources: Sequence[Mapping[str, Any]],
    *,
    bundle_id: str,
    timestamp_ms: int,
    kind: str = "collection",
) -> Json:
    """An R4 ``Bundle`` of type ``kind`` (``collection`` or ``searchset``, which also gets
    ``total``) holding ``resources`` in order, each with ``fullUrl`` = ``resource_urn`` of
    its type and id, and ``timestamp`` = ``timestamp_ms``. Each resource needs a valid
    ``resourceType`` and ``id``, no two the same; at most 10,000. The resources are put in
    as they are (not copied)."""
    _check_id(bundle_id, "a bundle id")
    if not isinstance(kind, str) or kind not in BUILT_BUNDLE_TYPES:
        raise FhirError(f"a bundle built here is one of {sorted(BUILT_BUNDLE_TYPES)}, got {kind!r}")
    if not isinstance(resources, list | tuple):
        raise FhirError(f"the resources are a list, got {type(resources).__name__}")
    if len(resources) > MAX_BUNDLE_ENTRIES:
        raise FhirError(
            f"a bundle holds at most {MAX_BUNDLE_ENTRIES} entries, got {len(resources)}"
        )
    entries: list[Json] = []
    seen: set[str] = set()
    for index, resource in enumerate(resources):
        resource_type = _resource_type_of(resource, f"resource {index}")
        full_url = resource_urn(
            resource_type, _check_id(resource.get("id"), f"the id of resource {index}")
        )
        if full_url in seen:
            raise FhirError(f"resource {index} ({resource_type}/{resource['id']}) is repeated")
        seen.add(full_url)
        entries.append({"fullUrl": full_url, "resource": resource})
    result: Json = {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": kind,
        "timestamp": iso_datetime(timestamp_ms),
    }
    if kind == "searchset":
        result["total"] = len(entries)
    if entries:
        result["entry"] = entries
    return result


def resources_of(bundle_resource: Mapping[str, Any]) -> list[Json]:
    """The resources of a ``Bundle`` (``loads``'s output, say), in entry order, for import.
    ``FhirError`` unless it is a ``Bundle`` of type collection, searchset, document,
    transaction or batch; its ``entry`` (absent: no resources) is a list of at most 10,000
    objects with only R4 entry members, each with a ``resource`` object that has a
    ``resourceType``, and a ``fullUrl`` string, if any, that no other entry has."""
    _require_type(bundle_resource, "Bundle")
    kind = bundle_resource.get("type")
    if not isinstance(kind, str) or kind not in READ_BUNDLE_TYPES:
        raise FhirError(f"a bundle read here is one of {sorted(READ_BUNDLE_TYPES)}, got {kind!r}")
    entries = bundle_resource.get("entry", [])
    if not isinstance(entries, list):
        raise FhirError("a bundle's entry is a list")
    if len(entries) > MAX_BUNDLE_ENTRIES:
        raise FhirError(f"a bundle holds at most {MAX_BUNDLE_ENTRIES} entries, got {len(entries)}")
    resources: list[Json] = []
    full_urls: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise FhirError(f"entry {index} is not a JSON object")
        unknown = entry.keys() - ENTRY_MEMBERS
        if unknown:
            raise FhirError(f"entry {index} has unknown members {', '.join(sorted(unknown))}")
        full_url = entry.get("fullUrl")
        if full_url is not None:
            if not isinstance(full_url, str) or not full_url:
                raise FhirError(f"the fullUrl of entry {index} is not a string")
            if full_url in full_urls:
                raise FhirError(f"entry {index} repeats the fullUrl {full_url}")
            full_urls.add(full_url)
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            raise FhirError(f"entry {index} has no resource object")
        _resource_type_of(resource, f"the resource of entry {index}")
        resources.append(resource)
    return resources


def _resource_type_of(resource: object, what: str) -> str:
    if not isinstance(resource, dict):
        raise FhirError(f"{what} is not a JSON object")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not FHIR_TYPE_PATTERN.fullmatch(resource_type):
        raise FhirError(f"{what} has no valid resourceType, got {resource_type!r}")
    return resource_type

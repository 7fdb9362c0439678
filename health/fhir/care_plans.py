"""The content of a care plan: ``CarePlanContent`` (medications, measurement times,
targets, time zone), its validation and canonical JSON form, and ``schedule_of``, the
schedule the ``care`` contract stores (item numbers and times only: no names, no doses).

Its rendering as FHIR resources is ``health.fhir.care_plan_resources``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Final, NamedTuple

from health.contracts.care import (
    MAX_ITEM_NUMBER,
    MAX_ITEMS,
    MAX_TIMES_PER_ITEM,
    MAX_TZ_OFFSET_MINUTES,
    MIN_TZ_OFFSET_MINUTES,
    MINUTES_PER_DAY,
)
from health.fhir.base import FhirError, check_id, check_int, check_reference, check_text
from health.fhir.canonical_json import dumps, loads
from health.glucose import MAX_PLAUSIBLE_MG_DL, MIN_PLAUSIBLE_MG_DL

RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
MAX_PLAN_ID_CHARS: Final = 56
"""A plan id leaves room for the ids derived from it (``<plan>-med-255``) within 64."""
MAX_NAME_CHARS: Final = 200
MAX_DOSE_CHARS: Final = 100
MAX_NOTE_CHARS: Final = 4000
RXNORM_PATTERN: Final = re.compile(r"[0-9]{1,10}", re.ASCII)
PLAN_FORMAT: Final = "bighealth/care-plan/v1"
"""The ``format`` member of a plan's canonical JSON (``CarePlanContent.to_json``)."""
DOSE: Final = "dose"
MEASUREMENT: Final = "measurement"
MEASUREMENT_ITEM: Final = 0
"""The schedule item of glucose measurements; medications are items 1..255."""


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
        check_int(self.item, 1, MAX_ITEM_NUMBER, "a medication item")
        what = f"medication item {self.item}"
        check_text(self.name, MAX_NAME_CHARS, f"the name of {what}")
        check_text(self.dose, MAX_DOSE_CHARS, f"the dose of {what}")
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
        check_id(self.plan_id, "a plan id", MAX_PLAN_ID_CHARS)
        check_reference(self.patient_ref, "the patient reference")
        check_reference(self.author_ref, "the author reference")
        _check_medications(self.medications)
        _check_times(self.measurement_times_minutes, 0, "the measurement times")
        items = len(self.medications) + (1 if self.measurement_times_minutes else 0)
        if items > MAX_ITEMS:
            raise FhirError(f"a plan schedules at most {MAX_ITEMS} items, got {items}")
        _check_targets(self)
        check_int(
            self.tz_offset_minutes,
            MIN_TZ_OFFSET_MINUTES,
            MAX_TZ_OFFSET_MINUTES,
            "the zone offset in minutes",
        )
        check_text(self.note, MAX_NOTE_CHARS, "the note", empty=True)

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
        check_int(minute, 0, MINUTES_PER_DAY - 1, f"a minute of the day in {what}")
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
        check_int(value, MIN_PLAUSIBLE_MG_DL, MAX_PLAUSIBLE_MG_DL, name)
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

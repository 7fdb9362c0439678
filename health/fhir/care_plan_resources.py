"""A care plan rendered as FHIR R4 resources: a ``CarePlan``, its ``MedicationRequest``s
and its target-range ``Goal`` (``care_plan_resources``), and the ids they derive from the
plan's."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from health.fhir.base import (
    GLUCOSE_DISPLAYS,
    LOINC,
    LOINC_CAPILLARY_GLUCOSE_METER,
    UCUM,
    Json,
    coding,
    concept,
    mg_dl_quantity,
    reference,
)
from health.fhir.care_plans import RXNORM, CarePlanContent, Medication

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
        "subject": reference(content.patient_ref),
        "author": reference(content.author_ref),
        "goal": [reference(f"Goal/{goal_id(content.plan_id)}")],
    }
    activities: list[Json] = [
        {"reference": reference(f"MedicationRequest/{request_id}")}
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
            "code": concept(LOINC, code, GLUCOSE_DISPLAYS[code], "Glucose self-monitoring"),
            "status": "scheduled",
            "scheduledTiming": _daily_timing(times),
            "performer": [reference(content.patient_ref)],
            "description": f"Measure glucose at {_clock_list(times)} (local time)",
        }
    }


def _medication_request(content: CarePlanContent, medication: Medication) -> Json:
    concept: Json = {"text": medication.name}
    if medication.rxnorm is not None:
        concept["coding"] = [coding(RXNORM, medication.rxnorm)]
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
        "subject": reference(content.patient_ref),
        "requester": reference(content.author_ref),
        "basedOn": [reference(f"CarePlan/{content.plan_id}")],
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
        "subject": reference(content.patient_ref),
        "expressedBy": reference(content.author_ref),
        "target": [
            {
                "measure": concept(LOINC, code, GLUCOSE_DISPLAYS[code]),
                "detailRange": {"low": mg_dl_quantity(low), "high": mg_dl_quantity(high)},
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


def _time_of_day(minutes: int) -> str:
    """FHIR ``time`` text ``hh:mm:ss`` of a minute of the day."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"

"""Glucose readings as FHIR R4 ``Observation``s.

``glucose_observation`` builds one (LOINC 41653-7 for a meter, 99504-3 for a CGM, UCUM
mg/dL), ``reading_of`` reads one back, ``record_code`` gives the code the chain commits
(``common.GLUCOSE_READING_CODES``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from health.fhir.base import (
    GLUCOSE_DISPLAYS,
    LOINC,
    LOINC_CAPILLARY_GLUCOSE_METER,
    LOINC_INTERSTITIAL_GLUCOSE_CGM,
    MG_DL,
    UCUM,
    FhirError,
    Json,
    check_id,
    check_reference,
    concept,
    mg_dl_quantity,
    reference,
    require_type,
)
from health.fhir.datetimes import iso_datetime, parse_datetime
from health.glucose import GlucoseError, check_reading

OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"

DEVICE_GLUCOSE_CODES: Final[Mapping[str, str]] = {
    "glucose_meter": LOINC_CAPILLARY_GLUCOSE_METER,
    "cgm": LOINC_INTERSTITIAL_GLUCOSE_CGM,
}
"""The LOINC code of a reading by each kind of device (the identity module's device kinds)."""
MMOL_L: Final = "mmol/L"
MG_DL_PER_MMOL_L: Final = 18.0
"""Glucose: 1 mmol/L is 18.0 mg/dL (molar mass 180.16 g/mol, rounded as clinicians do)."""
READABLE_STATUSES: Final = frozenset({"final", "amended", "corrected"})
"""Observation statuses whose value ``reading_of`` accepts as a reading."""


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
    check_id(observation_id, "an observation id")
    check_reference(patient_ref, "the patient reference")
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
        "category": [concept(OBSERVATION_CATEGORY, "laboratory", "Laboratory")],
        "code": concept(LOINC, code, GLUCOSE_DISPLAYS[code]),
        "subject": reference(patient_ref),
        "effectiveDateTime": iso_datetime(time_ms),
        "valueQuantity": mg_dl_quantity(mg_dl),
    }
    if device_ref is not None:
        observation["device"] = reference(check_reference(device_ref, "the device reference"))
    return observation


def reading_of(observation: Mapping[str, Any]) -> GlucoseReading:
    """The glucose reading of an ``Observation``: its status is ``final``, ``amended`` or
    ``corrected``; its code has a LOINC coding 41653-7 or 99504-3; its time is an
    ``effectiveDateTime`` or ``effectiveInstant`` with a time of day and a zone; its value
    is a ``valueQuantity`` without comparator in UCUM ``mg/dL``, or in ``mmol/L``, which is
    converted to mg/dL by × 18.0 (``MG_DL_PER_MMOL_L``), and plausible (10..1000 mg/dL).
    ``FhirError`` otherwise, saying which element is wrong."""
    require_type(observation, "Observation")
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

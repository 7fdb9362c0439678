"""FHIR R4 resources of health records (health/fhir.py), validated by the fhir.resources models.

``fhir.resources.R4B`` holds the pydantic models of FHIR R4B, whose content for Observation,
CarePlan, MedicationRequest, Goal, Consent and Bundle is R4's; every resource the module
builds is validated against them. The time conversions are checked against ``datetime``.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.goal import Goal
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from hypothesis import given
from hypothesis import strategies as st

from health.contracts.care import ItemKind, ScheduleItem, check_items
from health.contracts.common import GLUCOSE_READING_CODES
from health.fhir import (
    DEVICE_GLUCOSE_CODES,
    LOINC_CAPILLARY_GLUCOSE_METER,
    LOINC_INTERSTITIAL_GLUCOSE_CGM,
    MAX_BUNDLE_ENTRIES,
    MAX_JSON_BYTES,
    MAX_TIME_MS,
    MIN_TIME_MS,
    CarePlanContent,
    FhirError,
    GlucoseReading,
    Json,
    Medication,
    ScheduleEntry,
    bundle,
    care_plan_resources,
    civil_from_days,
    consent_resource,
    days_from_civil,
    dumps,
    glucose_observation,
    goal_id,
    iso_datetime,
    loads,
    medication_request_id,
    parse_datetime,
    reading_of,
    record_code,
    resource_urn,
    resources_of,
    schedule_of,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR_MS = 3_600_000
# The R4 regular expressions of dateTime and instant (datatypes, "dateTime" and "instant").
R4_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]"
    r"|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3])"
    r":[0-5][0-9]|14:00)))?)?)?"
)
R4_INSTANT = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]"
    r"|14:00))"
)
T0 = 1_700_000_000_123  # 2023-11-14T22:13:20.123Z


def reference_iso(time_ms: int, offset_minutes: int) -> str:
    """``iso_datetime`` as ``datetime`` computes it (years padded by hand: strftime does not)."""
    local = EPOCH + timedelta(milliseconds=time_ms + offset_minutes * 60_000)
    text = (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d}"
        f"T{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
    )
    if local.microsecond:
        text += f".{local.microsecond // 1000:03d}"
    if offset_minutes == 0:
        return text + "Z"
    sign = "+" if offset_minutes > 0 else "-"
    return text + f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"


# -- time ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("time_ms", "offset", "text"),
    [
        (0, 0, "1970-01-01T00:00:00Z"),
        (-1, 0, "1969-12-31T23:59:59.999Z"),
        (951_782_400_000, 0, "2000-02-29T00:00:00Z"),
        (T0, 0, "2023-11-14T22:13:20.123Z"),
        (1_709_164_800_000, 0, "2024-02-29T00:00:00Z"),
        (4_107_542_400_000, 0, "2100-03-01T00:00:00Z"),
        (0, 330, "1970-01-01T05:30:00+05:30"),
        (0, -300, "1969-12-31T19:00:00-05:00"),
        (0, 840, "1970-01-01T14:00:00+14:00"),
        (1_704_067_199_999, -1, "2023-12-31T23:58:59.999-00:01"),
        (MIN_TIME_MS, 0, "0001-01-01T00:00:00Z"),
        (MAX_TIME_MS, 0, "9999-12-31T23:59:59.999Z"),
    ],
)
def test_iso_datetime_known_values(time_ms: int, offset: int, text: str) -> None:
    assert iso_datetime(time_ms, offset) == text
    assert parse_datetime(text) == time_ms


@pytest.mark.parametrize(
    ("text", "time_ms"),
    [
        ("2024-03-10T08:15:00+05:30", 1_710_038_700_000),  # 02:45 UTC
        ("2024-03-10T02:45:00-00:00", 1_710_038_700_000),
        ("2024-03-10T02:45:00+00:00", 1_710_038_700_000),
        ("2024-03-09T21:45:00-05:00", 1_710_038_700_000),
        ("2023-11-14T22:13:20.1Z", 1_700_000_000_100),
        ("2023-11-14T22:13:20.12Z", 1_700_000_000_120),
        ("2023-11-14T22:13:20.123456789Z", T0),  # digits past the millisecond are dropped
        ("2024-01-01T00:00:00+14:00", 1_704_016_800_000),
        ("2024-01-01T00:00:00-14:00", 1_704_117_600_000),
    ],
)
def test_parse_datetime_known_values(text: str, time_ms: int) -> None:
    assert parse_datetime(text) == time_ms


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-01T00:00:00Z",
        "2024-01-00T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T23:60:00Z",
        "2024-12-31T23:59:60Z",  # a leap second
        "2024-01-01",
        "2024-01",
        "2024",
        "2024-01-01T00:00:00",
        "2024-01-01T00:00Z",
        "2024-01-01T00:00:00+14:30",
        "2024-01-01T00:00:00+15:00",
        "2024-01-01T00:00:00+05:60",
        "2024-01-01T00:00:00+0530",
        "2024-01-01T00:00:00z",
        "2024-01-01 00:00:00Z",
        " 2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00Z ",
        "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00.1234567890Z",
        "2024-1-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",  # before the year 1 in UTC
        "9999-12-31T23:00:00-01:00",  # after 9999 in UTC
        "２０２４-01-01T00:00:00Z",
        "",
    ],
)
def test_parse_datetime_refusals(text: str) -> None:
    with pytest.raises(FhirError):
        parse_datetime(text)


def test_parse_datetime_refuses_a_non_string() -> None:
    with pytest.raises(FhirError, match="string"):
        parse_datetime(1_700_000_000)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("time_ms", "offset"),
    [
        (MIN_TIME_MS - 1, 0),
        (MAX_TIME_MS + 1, 0),
        (MIN_TIME_MS, -1),  # the local time would be in the year 0
        (MAX_TIME_MS, 1),
        (0, 841),
        (0, -841),
        (True, 0),
        (1.5, 0),
    ],
)
def test_iso_datetime_refusals(time_ms: Any, offset: int) -> None:
    with pytest.raises(FhirError):
        iso_datetime(time_ms, offset)


@given(
    time_ms=st.integers(MIN_TIME_MS + 14 * HOUR_MS, MAX_TIME_MS - 14 * HOUR_MS),
    offset=st.integers(-840, 840),
)
def test_iso_round_trip_and_reference(time_ms: int, offset: int) -> None:
    text = iso_datetime(time_ms, offset)
    assert text == reference_iso(time_ms, offset)
    assert R4_DATETIME.fullmatch(text) and R4_INSTANT.fullmatch(text)
    assert parse_datetime(text) == time_ms


@given(
    time_ms=st.integers(0, 2**42),
    hours=st.integers(-13, 13),
    minutes=st.sampled_from([0, 30, 45]),
    digits=st.integers(1, 9),
)
def test_parse_datetime_matches_datetime(
    time_ms: int, hours: int, minutes: int, digits: int
) -> None:
    offset = hours * 60 + (minutes if hours >= 0 else -minutes)
    local = EPOCH + timedelta(milliseconds=time_ms + offset * 60_000)
    fraction = f"{local.microsecond:06d}000"[:digits]
    sign = "-" if offset < 0 else "+"
    text = (
        local.strftime("%Y-%m-%dT%H:%M:%S")
        + f".{fraction}{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    )
    expected = int(datetime.fromisoformat(text[:19] + text[-6:]).timestamp()) * 1000 + int(
        fraction[:3].ljust(3, "0")
    )
    assert parse_datetime(text) == expected
    assert abs(parse_datetime(text) - time_ms) < 1000


@given(st.dates())
def test_days_from_civil_against_the_ordinal(day: date) -> None:
    days = day.toordinal() - date(1970, 1, 1).toordinal()
    assert days_from_civil(day.year, day.month, day.day) == days
    assert civil_from_days(days) == (day.year, day.month, day.day)


@given(st.integers(-(10**8), 10**8))
def test_civil_from_days_inverts_days_from_civil(days: int) -> None:
    assert days_from_civil(*civil_from_days(days)) == days


# -- JSON -----------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def test_dumps_is_canonical() -> None:
    value = {"b": 1, "a": [1, 2.5, None, True], "é": "ü", "c": {"z": 0, "y": "x y"}}
    assert dumps(value) == '{"a":[1,2.5,null,true],"b":1,"c":{"y":"x y","z":0},"é":"ü"}'.encode()
    assert dumps(dict(reversed(list(value.items())))) == dumps(value)


@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5))
def test_json_round_trip(value: Json) -> None:
    data = dumps(value)
    assert loads(data) == value
    assert loads(data.decode()) == value
    assert dumps(loads(data)) == data


def nested(depth: int) -> Json:
    value: Json = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "value",
    [
        {"x": math.nan},
        {"x": math.inf},
        {1: "int key"},
        {"x": {1, 2}},
        {"x": b"bytes"},
        {"x": "\ud800"},  # a lone surrogate is not UTF-8
        {"x": "a" * MAX_JSON_BYTES},
        nested(33),
        ["not", "an", "object"],
    ],
)
def test_dumps_refusals(value: Any) -> None:
    with pytest.raises(FhirError):
        dumps(value)


def test_depth_limit_is_exact() -> None:
    assert loads(dumps(nested(32))) == nested(32)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b"[]",
        b'"text"',
        b"42",
        b"null",
        b'{"a":1,"a":2}',
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b'{"a":-Infinity}',
        b'{"a":"\xff"}',
        b'\xef\xbb\xbf{"a":1}',  # a byte order mark
        b'{"a":' + b"1" * 5000 + b"}",  # beyond Python's integer digit limit
        b'{"a":"' + b"x" * MAX_JSON_BYTES + b'"}',
        dumps(nested(32)).replace(b"{}", b'{"a":{}}'),
        b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "{" * 10 + "\ud800",
        42,
        None,
    ],
)
def test_loads_refusals(data: Any) -> None:
    with pytest.raises(FhirError):
        loads(data)


def test_loads_names_the_duplicate_key() -> None:
    with pytest.raises(FhirError, match="duplicate key 'a'"):
        loads(b'{"b":{"a":1,"a":1}}')


# -- glucose readings ---------------------------------------------------------------------------


def observation(**changes: Any) -> Json:
    arguments: dict[str, Any] = {
        "observation_id": "obs-1",
        "patient_ref": "Patient/p-1",
        "mg_dl": 123.5,
        "time_ms": T0,
        "device": "cgm",
        "device_ref": "Device/cgm-1",
    }
    return glucose_observation(**(arguments | changes))


def test_codes_are_the_chains() -> None:
    assert LOINC_CAPILLARY_GLUCOSE_METER == "41653-7"
    assert LOINC_INTERSTITIAL_GLUCOSE_CGM == "99504-3"
    assert record_code("glucose_meter") == "http://loinc.org|41653-7"
    assert record_code("cgm") == "http://loinc.org|99504-3"
    assert {record_code(device) for device in DEVICE_GLUCOSE_CODES} == GLUCOSE_READING_CODES
    with pytest.raises(FhirError, match="device"):
        record_code("insulin_pump")


@pytest.mark.parametrize(
    ("device", "code", "display"),
    [
        ("glucose_meter", "41653-7", "Glucose [Mass/volume] in Capillary blood by Glucometer"),
        ("cgm", "99504-3", "Glucose [Mass/volume] in Interstitial fluid"),
    ],
)
def test_glucose_observation_is_valid_r4(device: str, code: str, display: str) -> None:
    resource = observation(device=device)
    Observation.model_validate(resource)
    assert resource["status"] == "final"
    assert resource["category"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
        "code": "laboratory",
        "display": "Laboratory",
    }
    assert resource["code"]["coding"] == [
        {"system": "http://loinc.org", "code": code, "display": display}
    ]
    assert resource["subject"] == {"reference": "Patient/p-1"}
    assert resource["effectiveDateTime"] == "2023-11-14T22:13:20.123Z"
    assert resource["valueQuantity"] == {
        "value": 123.5,
        "unit": "mg/dL",
        "system": "http://unitsofmeasure.org",
        "code": "mg/dL",
    }
    assert resource["device"] == {"reference": "Device/cgm-1"}


def test_glucose_observation_without_a_device_reference() -> None:
    resource = observation(device_ref=None, mg_dl=95)
    Observation.model_validate(resource)
    assert "device" not in resource
    assert reading_of(resource) == GlucoseReading(95.0, T0, "http://loinc.org|99504-3")


@given(
    mg_dl=st.floats(10, 1000) | st.integers(10, 1000),
    time_ms=st.integers(0, 2**42),
    device=st.sampled_from(sorted(DEVICE_GLUCOSE_CODES)),
)
def test_reading_round_trip(mg_dl: float, time_ms: int, device: str) -> None:
    resource = observation(mg_dl=mg_dl, time_ms=time_ms, device=device)
    reading = reading_of(loads(dumps(resource)))
    assert reading == GlucoseReading(mg_dl, time_ms, record_code(device))


def test_reading_in_mmol_per_litre_is_converted() -> None:
    resource = observation()
    resource["valueQuantity"] = {
        "value": 5.5,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    }
    Observation.model_validate(resource)
    assert reading_of(resource).mg_dl == pytest.approx(99.0)


def test_reading_accepts_an_instant_and_a_local_time() -> None:
    resource = observation()
    del resource["effectiveDateTime"]
    resource["effectiveInstant"] = "2023-11-15T03:43:20.123+05:30"
    Observation.model_validate(resource)
    assert reading_of(resource).time_ms == T0


DELETE = object()


def mutated(path: tuple[str | int, ...], value: Any) -> Json:
    resource = observation()
    target: Any = resource
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return resource


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("resourceType",), "Condition", "Observation"),
        (("status",), "preliminary", "status"),
        (("status",), "entered-in-error", "status"),
        (("status",), ["final"], "status"),
        (("code",), DELETE, "coding"),
        (("code", "coding"), {"code": "41653-7"}, "coding"),
        (("code", "coding", 0, "code"), "2339-0", "not a glucose reading"),
        (("code", "coding", 0, "code"), ["99504-3"], "not a glucose reading"),
        (("code", "coding", 0, "system"), "http://snomed.info/sct", "not a glucose reading"),
        (("effectiveDateTime",), DELETE, "effective"),
        (("effectiveDateTime",), "2023-11-14", "dateTime"),
        (("effectiveDateTime",), "2023-11-14T22:13:20", "dateTime"),
        (("valueQuantity",), DELETE, "valueQuantity"),
        (("valueQuantity", "value"), DELETE, "finite number"),
        (("valueQuantity", "value"), "120", "finite number"),
        (("valueQuantity", "value"), True, "finite number"),
        (("valueQuantity", "value"), math.nan, "finite number"),
        (("valueQuantity", "value"), 5, "10..1000"),
        (("valueQuantity", "value"), 1200, "10..1000"),
        (("valueQuantity", "system"), DELETE, "UCUM"),
        (("valueQuantity", "code"), "g/L", "mg/dL or mmol/L"),
        (("valueQuantity", "comparator"), "<", "comparator"),
    ],
)
def test_reading_refusals(path: tuple[str | int, ...], value: Any, message: str) -> None:
    with pytest.raises(FhirError, match=re.escape(message)):
        reading_of(mutated(path, value))


def test_reading_refuses_a_non_object() -> None:
    with pytest.raises(FhirError):
        reading_of(["Observation"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"device": "insulin_pump"},
        {"observation_id": "obs 1"},
        {"observation_id": "x" * 65},
        {"patient_ref": "p-1"},
        {"patient_ref": "Patient/p 1"},
        {"device_ref": ""},
        {"mg_dl": 5},
        {"mg_dl": 1000.5},
        {"mg_dl": math.nan},
        {"mg_dl": True},
        {"mg_dl": "120"},
        {"time_ms": MAX_TIME_MS + 1},
    ],
)
def test_glucose_observation_refusals(changes: dict[str, Any]) -> None:
    with pytest.raises(FhirError):
        observation(**changes)


# -- care plans -----------------------------------------------------------------------------------

METFORMIN = Medication(1, "Metformin", "500 mg", "6809", (480, 1200))
GLARGINE = Medication(3, "Insulin glargine", "10 units", None, (1320,))


def plan(**changes: Any) -> CarePlanContent:
    arguments: dict[str, Any] = {
        "plan_id": "plan-1",
        "patient_ref": "Patient/p-1",
        "author_ref": "Practitioner/dr-1",
        "medications": (METFORMIN, GLARGINE),
        "measurement_times_minutes": (420, 720, 1140),
        "tz_offset_minutes": 330,
        "note": "Call the clinic below 70 mg/dL.\nEat first.",
    }
    return CarePlanContent(**(arguments | changes))


def test_care_plan_resources_are_valid_r4() -> None:
    content = plan()
    care_plan, metformin, glargine, goal = care_plan_resources(content)
    CarePlan.model_validate(care_plan)
    MedicationRequest.model_validate(metformin)
    MedicationRequest.model_validate(glargine)
    Goal.model_validate(goal)
    assert (care_plan["status"], care_plan["intent"]) == ("active", "plan")
    assert care_plan["subject"] == {"reference": "Patient/p-1"}
    assert care_plan["author"] == {"reference": "Practitioner/dr-1"}
    assert care_plan["goal"] == [{"reference": f"Goal/{goal['id']}"}]
    activities = care_plan["activity"]
    assert [activity.get("reference") for activity in activities[:2]] == [
        {"reference": f"MedicationRequest/{metformin['id']}"},
        {"reference": f"MedicationRequest/{glargine['id']}"},
    ]
    monitoring = activities[2]["detail"]
    assert monitoring["status"] == "scheduled"
    assert monitoring["code"]["coding"][0]["code"] == "41653-7"
    assert monitoring["scheduledTiming"]["repeat"]["timeOfDay"] == [
        "07:00:00",
        "12:00:00",
        "19:00:00",
    ]
    assert care_plan["note"] == [{"text": content.note}]
    assert metformin["id"] == medication_request_id("plan-1", 1) == "plan-1-med-1"
    assert glargine["id"] == "plan-1-med-3"
    assert goal["id"] == goal_id("plan-1") == "plan-1-goal"


def test_medication_requests() -> None:
    _, metformin, glargine, _ = care_plan_resources(plan())
    assert (metformin["status"], metformin["intent"]) == ("active", "order")
    assert metformin["medicationCodeableConcept"] == {
        "text": "Metformin",
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6809"}],
    }
    assert glargine["medicationCodeableConcept"] == {"text": "Insulin glargine"}
    assert metformin["subject"] == {"reference": "Patient/p-1"}
    assert metformin["requester"] == {"reference": "Practitioner/dr-1"}
    assert metformin["basedOn"] == [{"reference": "CarePlan/plan-1"}]
    (dosage,) = metformin["dosageInstruction"]
    assert dosage["text"] == "500 mg at 08:00, 20:00 (local time)"
    assert dosage["timing"]["repeat"] == {
        "frequency": 2,
        "period": 1,
        "periodUnit": "d",
        "timeOfDay": ["08:00:00", "20:00:00"],  # the patient's local time, not UTC
    }
    assert dosage["doseAndRate"] == [
        {
            "doseQuantity": {
                "value": 500,
                "unit": "mg",
                "system": "http://unitsofmeasure.org",
                "code": "mg",
            }
        }
    ]
    assert glargine["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["code"] == "[iU]"


@pytest.mark.parametrize(
    ("dose", "quantity"),
    [
        ("500 mg", {"value": 500, "unit": "mg", "code": "mg"}),
        ("1.5mg", {"value": 1.5, "unit": "mg", "code": "mg"}),
        ("250 mcg", {"value": 250, "unit": "mcg", "code": "ug"}),
        ("8 U", {"value": 8, "unit": "U", "code": "[iU]"}),
        ("1 g", {"value": 1, "unit": "g", "code": "g"}),
        ("5 mL", {"value": 5, "unit": "mL", "code": "mL"}),
        ("1 tablet", {"value": 1, "unit": "tablet"}),
        ("one tablet with breakfast", None),
        ("2 tablets with food", None),
    ],
)
def test_dose_quantities(dose: str, quantity: dict[str, Any] | None) -> None:
    content = plan(medications=(Medication(1, "Drug", dose, None, (480,)),))
    request = care_plan_resources(content)[1]
    MedicationRequest.model_validate(request)
    (dosage,) = request["dosageInstruction"]
    assert dosage["text"].startswith(dose)
    if quantity is None:
        assert "doseAndRate" not in dosage
        return
    found = dosage["doseAndRate"][0]["doseQuantity"]
    if "code" in quantity:
        assert found.pop("system") == "http://unitsofmeasure.org"
    assert found == quantity


def test_goal_is_the_target_range() -> None:
    goal = care_plan_resources(plan(target_low_mg_dl=80, target_high_mg_dl=160))[-1]
    Goal.model_validate(goal)
    assert goal["lifecycleStatus"] == "active"
    assert goal["description"] == {"text": "Glucose between 80 and 160 mg/dL"}
    assert goal["subject"] == {"reference": "Patient/p-1"}
    (target,) = goal["target"]
    assert target["measure"]["coding"][0]["code"] == "41653-7"
    unit = {"unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}
    assert target["detailRange"] == {"low": {"value": 80, **unit}, "high": {"value": 160, **unit}}


def test_a_plan_without_items() -> None:
    content = plan(medications=(), measurement_times_minutes=(), note="")
    care_plan, goal = care_plan_resources(content)
    CarePlan.model_validate(care_plan)
    Goal.model_validate(goal)
    assert "activity" not in care_plan and "note" not in care_plan
    assert schedule_of(content) == []


def test_schedule_of() -> None:
    schedule = schedule_of(plan())
    assert schedule == [
        ScheduleEntry(0, "measurement", (420, 720, 1140)),
        ScheduleEntry(1, "dose", (480, 1200)),
        ScheduleEntry(3, "dose", (1320,)),
    ]
    assert schedule[1] == (1, "dose", (480, 1200))  # a plain tuple too
    # the care contract accepts it as it is
    check_items(
        [ScheduleItem(e.item, ItemKind[e.kind.upper()], e.times_of_day_minutes) for e in schedule]
    )
    no_measurements = schedule_of(plan(measurement_times_minutes=()))
    assert [entry.item for entry in no_measurements] == [1, 3]


def test_schedule_holds_no_names_or_doses() -> None:
    text = repr(schedule_of(plan()))
    assert "Metformin" not in text and "mg" not in text and "Insulin" not in text


def test_plan_json_is_canonical_and_round_trips() -> None:
    content = plan()
    data = content.to_json()
    parsed = json.loads(data)
    assert data == json.dumps(
        parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert parsed["format"] == "bighealth/care-plan/v1"
    assert parsed["medications"][1] == {
        "item": 3,
        "name": "Insulin glargine",
        "dose": "10 units",
        "rxnorm": None,
        "times_of_day_minutes": [1320],
    }
    assert CarePlanContent.from_json(data) == content
    assert CarePlanContent.from_json(data.decode()) == content
    defaults = CarePlanContent("p", "Patient/x", "Practitioner/y", (), ())
    assert CarePlanContent.from_json(defaults.to_json()) == defaults
    assert (defaults.target_low_mg_dl, defaults.target_high_mg_dl) == (70, 180)
    assert (defaults.alert_low_mg_dl, defaults.alert_high_mg_dl) == (70, 250)


FHIR_TEXT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")) | st.sampled_from(" \n"),
    max_size=30,
).map(str.strip)


def sorted_minutes(min_size: int) -> st.SearchStrategy[tuple[int, ...]]:
    return st.sets(st.integers(0, 1439), min_size=min_size, max_size=12).map(
        lambda minutes: tuple(sorted(minutes))
    )


MEDICATIONS = st.sets(st.integers(1, 255), max_size=15).flatmap(
    lambda items: st.tuples(
        *(
            st.builds(
                Medication,
                item=st.just(item),
                name=FHIR_TEXT.filter(bool),
                dose=st.sampled_from(["500 mg", "10 units", "1 tablet", "as directed"]),
                rxnorm=st.none() | st.from_regex(r"[0-9]{1,10}", fullmatch=True),
                times_of_day_minutes=sorted_minutes(1),
            )
            for item in sorted(items)
        )
    )
)


@st.composite
def plans(draw: st.DrawFn) -> CarePlanContent:
    target_low = draw(st.integers(10, 998))
    target_high = draw(st.integers(target_low + 1, 999))
    return CarePlanContent(
        plan_id=draw(st.from_regex(r"[A-Za-z0-9\-.]{1,56}", fullmatch=True)),
        patient_ref="Patient/" + draw(st.from_regex(r"[a-f0-9]{64}", fullmatch=True)),
        author_ref="Practitioner/dr-1",
        medications=draw(MEDICATIONS),
        measurement_times_minutes=draw(sorted_minutes(0)),
        target_low_mg_dl=target_low,
        target_high_mg_dl=target_high,
        alert_low_mg_dl=draw(st.integers(10, target_low)),
        alert_high_mg_dl=draw(st.integers(target_high, 1000)),
        tz_offset_minutes=draw(st.integers(-720, 840)),
        note=draw(FHIR_TEXT),
    )


@given(plans())
def test_plan_round_trip_and_resources(content: CarePlanContent) -> None:
    assert CarePlanContent.from_json(content.to_json()) == content
    resources = care_plan_resources(content)
    models = [CarePlan] + [MedicationRequest] * len(content.medications) + [Goal]
    for model, resource in zip(models, resources, strict=True):
        model.model_validate(resource)
    schedule = schedule_of(content)
    assert len(schedule) <= 16
    assert [entry.item for entry in schedule] == sorted(entry.item for entry in schedule)


def medication(**changes: Any) -> Medication:
    arguments: dict[str, Any] = {
        "item": 1,
        "name": "Metformin",
        "dose": "500 mg",
        "rxnorm": None,
        "times_of_day_minutes": (480,),
    }
    return Medication(**(arguments | changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"item": 0}, "1..255"),
        ({"item": 256}, "1..255"),
        ({"item": True}, "integer"),
        ({"name": ""}, "empty"),
        ({"name": " Metformin"}, "whitespace"),
        ({"name": "Met\x00formin"}, "control"),
        ({"name": "Met\x7fformin"}, "control"),
        ({"name": "Met\x9bformin"}, "control"),
        ({"name": "Met\xa0formin"}, "whitespace other than"),
        ({"name": "Met\u2028formin"}, "whitespace other than"),
        ({"name": "x" * 201}, "at most 200"),
        ({"name": None}, "string"),
        ({"dose": ""}, "empty"),
        ({"dose": "5" * 101}, "at most 100"),
        ({"rxnorm": "abc"}, "RxNorm"),
        ({"rxnorm": ""}, "RxNorm"),
        ({"rxnorm": 6809}, "RxNorm"),
        ({"times_of_day_minutes": ()}, "1..12"),
        ({"times_of_day_minutes": tuple(range(13))}, "1..12"),
        ({"times_of_day_minutes": (600, 480)}, "strictly increase"),
        ({"times_of_day_minutes": (480, 480)}, "strictly increase"),
        ({"times_of_day_minutes": (1440,)}, "0..1439"),
        ({"times_of_day_minutes": (-1,)}, "0..1439"),
        ({"times_of_day_minutes": (480.0,)}, "integer"),
        ({"times_of_day_minutes": [480]}, "tuple"),
    ],
)
def test_medication_validation(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(FhirError, match=re.escape(message)):
        medication(**changes)


def thirteen_times() -> tuple[int, ...]:
    return tuple(range(0, 1300, 100))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"plan_id": ""}, "plan id"),
        ({"plan_id": "x" * 57}, "plan id"),
        ({"plan_id": "plan/1"}, "plan id"),
        ({"patient_ref": "Patient"}, "patient reference"),
        ({"author_ref": "dr 1"}, "author reference"),
        ({"medications": (GLARGINE, METFORMIN)}, "increasing item order"),
        ({"medications": (METFORMIN, METFORMIN)}, "increasing item order"),
        ({"medications": [METFORMIN]}, "tuple"),
        ({"medications": ("Metformin",)}, "Medication"),
        ({"measurement_times_minutes": thirteen_times()}, "0..12"),
        ({"measurement_times_minutes": (720, 420)}, "strictly increase"),
        ({"target_low_mg_dl": 180}, "target_low < target_high"),
        ({"alert_low_mg_dl": 75}, "alert_low <= target_low"),
        ({"alert_high_mg_dl": 170}, "target_high <= alert_high"),
        ({"alert_low_mg_dl": 5, "target_low_mg_dl": 6}, "10..1000"),
        ({"alert_high_mg_dl": 1001}, "10..1000"),
        ({"target_low_mg_dl": 70.0}, "integer"),
        ({"tz_offset_minutes": 841}, "zone offset"),
        ({"tz_offset_minutes": -721}, "zone offset"),
        ({"note": "x" * 4001}, "at most 4000"),
        ({"note": "bell\x07"}, "control"),
        ({"note": "trailing\n"}, "whitespace"),
    ],
)
def test_plan_validation(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(FhirError, match=re.escape(message)):
        plan(**changes)


def test_a_plan_holds_at_most_16_schedule_items() -> None:
    sixteen = tuple(medication(item=item) for item in range(1, 17))
    assert len(schedule_of(plan(medications=sixteen, measurement_times_minutes=()))) == 16
    with pytest.raises(FhirError, match="at most 16 items"):
        plan(medications=sixteen)
    assert len(schedule_of(plan(medications=sixteen[:15]))) == 16


def test_validation_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match=r"1\.\.255"):
        medication(item=0)
    assert issubclass(FhirError, ValueError)


def plan_json(**changes: Any) -> bytes:
    value = json.loads(plan().to_json()) | changes
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "JSON object"),
        (plan_json(format="bighealth/care-plan/v2"), "format"),
        (plan_json(extra=1), "unknown members extra"),
        (plan_json(medications={"item": 1}), "list"),
        (plan_json(measurement_times_minutes="420"), "list of minutes"),
        (plan_json(measurement_times_minutes=[420.0]), "integer"),
        (plan_json(medications=[1]), "JSON object"),
        (plan_json(medications=[{"item": 1}]), "lacks dose, name, rxnorm"),
        (plan_json(target_low_mg_dl="70"), "integer"),
        (plan_json(tz_offset_minutes=None), "integer"),
        (plan_json(note=7), "string"),
    ],
)
def test_plan_from_json_refusals(data: bytes, message: str) -> None:
    with pytest.raises(FhirError, match=re.escape(message)):
        CarePlanContent.from_json(data)


def test_plan_from_json_refuses_a_missing_member() -> None:
    value = json.loads(plan().to_json())
    del value["note"]
    with pytest.raises(FhirError, match="lacks note"):
        CarePlanContent.from_json(json.dumps(value))


# -- consents -------------------------------------------------------------------------------------


def consent(**changes: Any) -> Json:
    arguments: dict[str, Any] = {
        "consent_id": "grant-1",
        "patient_ref": "Patient/p-1",
        "grantee_ref": "Practitioner/dr-1",
        "purpose": "treatment",
        "resource_types": ["Observation", "CarePlan"],
        "codes": ["http://loinc.org|41653-7", "plain-code"],
        "data_from_ms": 1_600_000_000_000,
        "data_to_ms": T0,
        "issued_ms": 1_700_000_000_000,
        "expires_ms": 1_730_000_000_000,
        "status": "active",
    }
    return consent_resource(**(arguments | changes))


def test_consent_is_valid_r4() -> None:
    resource = consent()
    Consent.model_validate(resource)
    # ppc-1: Either a Policy or PolicyRule
    assert "policy" in resource or "policyRule" in resource
    assert resource["policyRule"]["coding"] == [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "OPTIN",
            "display": "opt-in",
        }
    ]
    assert resource["scope"]["coding"][0]["code"] == "patient-privacy"
    assert resource["category"][0]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "59284-0",
        "display": "Patient Consent",
    }
    assert resource["patient"] == {"reference": "Patient/p-1"}
    assert resource["dateTime"] == "2023-11-14T22:13:20Z"
    provision = resource["provision"]
    assert provision["type"] == "permit"
    assert provision["period"] == {"start": "2023-11-14T22:13:20Z", "end": "2024-10-27T03:33:20Z"}
    (actor,) = provision["actor"]
    assert actor["reference"] == {"reference": "Practitioner/dr-1"}
    assert actor["role"]["coding"][0]["code"] == "IRCP"
    assert actor["role"]["coding"][0]["system"] == (
        "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
    )
    assert [entry["code"] for entry in provision["class"]] == ["Observation", "CarePlan"]
    assert {entry["system"] for entry in provision["class"]} == {
        "http://hl7.org/fhir/resource-types"
    }
    assert provision["code"] == [
        {"coding": [{"system": "http://loinc.org", "code": "41653-7"}]},
        {"coding": [{"code": "plain-code"}]},
    ]
    assert provision["dataPeriod"] == {
        "start": "2020-09-13T12:26:40Z",
        "end": "2023-11-14T22:13:20.123Z",
    }


@pytest.mark.parametrize(
    ("purpose", "code"),
    [("treatment", "TREAT"), ("research", "HRESCH"), ("emergency", "ETREAT")],
)
@pytest.mark.parametrize("status", ["active", "inactive", "rejected"])
def test_consent_purposes_and_statuses(purpose: str, code: str, status: str) -> None:
    resource = consent(purpose=purpose, status=status)
    Consent.model_validate(resource)
    assert resource["status"] == status
    (coding,) = resource["provision"]["purpose"]
    assert coding["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActReason"
    assert coding["code"] == code


def test_consent_to_all_data_with_open_periods() -> None:
    resource = consent(resource_types=[], codes=(), data_from_ms=0, data_to_ms=0)
    Consent.model_validate(resource)
    provision = resource["provision"]
    assert "class" not in provision and "code" not in provision and "dataPeriod" not in provision
    from_only = consent(data_to_ms=0)["provision"]["dataPeriod"]
    assert from_only == {"start": "2020-09-13T12:26:40Z"}
    to_only = consent(data_from_ms=0)["provision"]["dataPeriod"]
    assert to_only == {"end": "2023-11-14T22:13:20.123Z"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"purpose": "marketing"}, "purpose"),
        ({"purpose": ["treatment"]}, "purpose"),
        ({"status": "draft"}, "status"),
        ({"status": "proposed"}, "status"),
        ({"expires_ms": 1_700_000_000_000}, "expires after"),
        ({"expires_ms": 1_600_000_000_000}, "expires after"),
        ({"data_to_ms": 1_500_000_000_000}, "ends before"),
        ({"resource_types": ["observation"]}, "resource type"),
        ({"resource_types": ["Observation", "Observation"]}, "repeat"),
        ({"resource_types": "Observation"}, "list"),
        ({"resource_types": [1]}, "strings"),
        ({"resource_types": ["Observation"] * 65}, "at most 64"),
        ({"codes": ["has space"]}, "code"),
        ({"codes": ["http://loinc.org|"]}, "code"),
        ({"codes": [""]}, "code"),
        ({"consent_id": "grant 1"}, "consent id"),
        ({"patient_ref": "nobody"}, "patient reference"),
        ({"grantee_ref": "Practitioner/"}, "grantee reference"),
        ({"issued_ms": MAX_TIME_MS + 1}, "epoch milliseconds"),
    ],
)
def test_consent_refusals(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(FhirError, match=re.escape(message)):
        consent(**changes)


# -- bundles --------------------------------------------------------------------------------------


def all_resources() -> list[Json]:
    return [observation(), *care_plan_resources(plan()), consent()]


UUID_URN = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_bundle_is_valid_r4_and_round_trips() -> None:
    resources = all_resources()
    result = bundle(resources, bundle_id="export-1", timestamp_ms=T0)
    Bundle.model_validate(result)
    assert (result["resourceType"], result["type"]) == ("Bundle", "collection")
    assert result["timestamp"] == "2023-11-14T22:13:20.123Z"
    assert "total" not in result
    urls = [entry["fullUrl"] for entry in result["entry"]]
    assert all(UUID_URN.fullmatch(url) for url in urls)
    assert len(set(urls)) == len(urls)
    assert urls[0] == resource_urn("Observation", "obs-1")
    assert {uuid.UUID(url.removeprefix("urn:uuid:")).version for url in urls} == {8}
    assert {uuid.UUID(url.removeprefix("urn:uuid:")).variant for url in urls} == {uuid.RFC_4122}
    assert resources_of(loads(dumps(result))) == resources
    assert bundle(all_resources(), bundle_id="export-1", timestamp_ms=T0) == result


def test_full_urls_are_deterministic_per_resource() -> None:
    urn = resource_urn("Observation", "obs-1")
    assert urn == resource_urn("Observation", "obs-1")
    assert urn != resource_urn("Observation", "obs-2")
    assert urn != resource_urn("Condition", "obs-1")
    first = bundle([observation()], bundle_id="a", timestamp_ms=0)
    second = bundle([consent(), observation()], bundle_id="b", timestamp_ms=1)
    assert first["entry"][0]["fullUrl"] == second["entry"][1]["fullUrl"]


def test_searchset_and_empty_bundles() -> None:
    searchset = bundle(all_resources(), bundle_id="s", timestamp_ms=T0, kind="searchset")
    Bundle.model_validate(searchset)
    assert searchset["total"] == 6
    empty = bundle([], bundle_id="e", timestamp_ms=0)
    Bundle.model_validate(empty)
    assert "entry" not in empty
    assert resources_of(empty) == []


@pytest.mark.parametrize(
    ("resources", "changes", "message"),
    [
        ([{"resourceType": "Observation"}], {}, "id of resource 0"),
        ([{"resourceType": "Observation", "id": "a b"}], {}, "id of resource 0"),
        ([{"id": "x"}], {}, "resourceType"),
        ([{"resourceType": "observation", "id": "x"}], {}, "resourceType"),
        (["Observation/x"], {}, "not a JSON object"),
        ([{"resourceType": "Basic", "id": "x"}] * 2, {}, "repeated"),
        ([], {"kind": "transaction"}, "collection"),
        ([], {"kind": "history"}, "collection"),
        ([], {"bundle_id": ""}, "bundle id"),
        ([], {"timestamp_ms": MAX_TIME_MS + 1}, "epoch milliseconds"),
    ],
)
def test_bundle_refusals(resources: list[Any], changes: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"bundle_id": "b", "timestamp_ms": 0} | changes
    with pytest.raises(FhirError, match=re.escape(message)):
        bundle(resources, **arguments)


def test_bundle_size_limit() -> None:
    resources = [{"resourceType": "Basic", "id": f"b{n}"} for n in range(MAX_BUNDLE_ENTRIES + 1)]
    assert len(bundle(resources[:-1], bundle_id="b", timestamp_ms=0)["entry"]) == 10_000
    with pytest.raises(FhirError, match="at most 10000"):
        bundle(resources, bundle_id="b", timestamp_ms=0)
    with pytest.raises(FhirError, match="list"):
        bundle(iter(resources), bundle_id="b", timestamp_ms=0)  # type: ignore[arg-type]


def good_bundle() -> Json:
    return bundle(all_resources()[:2], bundle_id="b", timestamp_ms=0)


def bad_bundle(key: str, value: Any) -> Json:
    result = good_bundle()
    if key.startswith("entry0."):
        result["entry"][0][key.removeprefix("entry0.")] = value
    else:
        result[key] = value
    return result


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["Bundle"], "JSON object"),
        ({"resourceType": "Observation"}, "expected a Bundle"),
        (bad_bundle("type", "history"), "collection"),
        (bad_bundle("type", ["collection"]), "collection"),
        (bad_bundle("entry", {}), "entry is a list"),
        (bad_bundle("entry", [[]]), "entry 0 is not a JSON object"),
        (bad_bundle("entry", [{"fullUrl": "urn:x"}]), "entry 0 has no resource"),
        (bad_bundle("entry0.response", {}), "unknown members response"),
        (bad_bundle("entry0.resource", {"id": "x"}), "resourceType"),
        (bad_bundle("entry0.resource", "Observation/x"), "no resource"),
        (bad_bundle("entry0.fullUrl", 7), "fullUrl"),
        (bad_bundle("entry0.fullUrl", ""), "fullUrl"),
        (
            bad_bundle("entry", [{"fullUrl": "urn:a", "resource": observation()}] * 2),
            "repeats the fullUrl",
        ),
        (
            bad_bundle("entry", [{"resource": observation()}] * (MAX_BUNDLE_ENTRIES + 1)),
            "at most 10000",
        ),
    ],
)
def test_resources_of_refusals(value: Any, message: str) -> None:
    with pytest.raises(FhirError, match=re.escape(message)):
        resources_of(value)


def test_resources_of_reads_other_bundle_types() -> None:
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b8e2f1c-4a47-4c1e-9b5e-6b2f0d1f2a3b",
                "resource": observation(),
                "request": {"method": "POST", "url": "Observation"},
            },
            {"resource": consent(), "request": {"method": "POST", "url": "Consent"}},
        ],
    }
    Bundle.model_validate(transaction)
    assert resources_of(transaction) == [observation(), consent()]


def test_resources_survive_the_bytes_that_get_encrypted() -> None:
    for resource in all_resources():
        assert loads(dumps(resource)) == resource

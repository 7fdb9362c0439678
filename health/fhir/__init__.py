"""FHIR R4 resources of the health records: glucose readings, care plans, consents, bundles.

Records are FHIR R4 JSON resources, encrypted end to end (``health.envelopes``); this package
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

This package re-exports the public names of its modules, one job each: ``base`` (the error,
shared codes, element checks), ``datetimes``, ``canonical_json``, ``observations``,
``care_plans`` and ``care_plan_resources``, ``consents``, ``bundles``.

Pure functions: no clock, no randomness, no I/O. Every refusal is a ``FhirError`` (also a
``ValueError``) whose message says what is wrong.
"""

from __future__ import annotations

from health.fhir.base import (
    GLUCOSE_DISPLAYS,
    ID_PATTERN,
    LOINC,
    LOINC_CAPILLARY_GLUCOSE_METER,
    LOINC_INTERSTITIAL_GLUCOSE_CGM,
    MAX_REFERENCE_CHARS,
    MG_DL,
    REFERENCE_PATTERN,
    UCUM,
    FhirError,
    Json,
)
from health.fhir.bundles import (
    BUILT_BUNDLE_TYPES,
    ENTRY_MEMBERS,
    FULL_URL_DOMAIN,
    MAX_BUNDLE_ENTRIES,
    READ_BUNDLE_TYPES,
    bundle,
    resource_urn,
    resources_of,
)
from health.fhir.canonical_json import (
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    dumps,
    loads,
)
from health.fhir.care_plan_resources import (
    care_plan_resources,
    goal_id,
    medication_request_id,
)
from health.fhir.care_plans import (
    DOSE,
    MAX_DOSE_CHARS,
    MAX_NAME_CHARS,
    MAX_NOTE_CHARS,
    MAX_PLAN_ID_CHARS,
    MEASUREMENT,
    MEASUREMENT_ITEM,
    PLAN_FORMAT,
    RXNORM,
    RXNORM_PATTERN,
    CarePlanContent,
    Medication,
    ScheduleEntry,
    schedule_of,
)
from health.fhir.consents import (
    ACT_CODE,
    ACT_REASON,
    CONSENT_SCOPE,
    CONSENT_STATUSES,
    LOINC_PATIENT_CONSENT,
    MAX_CONSENT_SCOPE_ENTRIES,
    PARTICIPATION_TYPE,
    PURPOSE_CODES,
    RESOURCE_TYPES,
    consent_resource,
)
from health.fhir.datetimes import (
    HOUR_MS,
    MAX_TIME_MS,
    MAX_ZONE_OFFSET_MINUTES,
    MIN_TIME_MS,
    MINUTE_MS,
    SECOND_MS,
    civil_from_days,
    days_from_civil,
    days_in_month,
    iso_datetime,
    parse_datetime,
)
from health.fhir.observations import (
    DEVICE_GLUCOSE_CODES,
    MG_DL_PER_MMOL_L,
    MMOL_L,
    OBSERVATION_CATEGORY,
    READABLE_STATUSES,
    GlucoseReading,
    glucose_observation,
    reading_of,
    record_code,
)

__all__ = [
    "ACT_CODE",
    "ACT_REASON",
    "BUILT_BUNDLE_TYPES",
    "CONSENT_SCOPE",
    "CONSENT_STATUSES",
    "DEVICE_GLUCOSE_CODES",
    "DOSE",
    "ENTRY_MEMBERS",
    "FULL_URL_DOMAIN",
    "GLUCOSE_DISPLAYS",
    "HOUR_MS",
    "ID_PATTERN",
    "LOINC",
    "LOINC_CAPILLARY_GLUCOSE_METER",
    "LOINC_INTERSTITIAL_GLUCOSE_CGM",
    "LOINC_PATIENT_CONSENT",
    "MAX_BUNDLE_ENTRIES",
    "MAX_CONSENT_SCOPE_ENTRIES",
    "MAX_DOSE_CHARS",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_NAME_CHARS",
    "MAX_NOTE_CHARS",
    "MAX_PLAN_ID_CHARS",
    "MAX_REFERENCE_CHARS",
    "MAX_TIME_MS",
    "MAX_ZONE_OFFSET_MINUTES",
    "MEASUREMENT",
    "MEASUREMENT_ITEM",
    "MG_DL",
    "MG_DL_PER_MMOL_L",
    "MINUTE_MS",
    "MIN_TIME_MS",
    "MMOL_L",
    "OBSERVATION_CATEGORY",
    "PARTICIPATION_TYPE",
    "PLAN_FORMAT",
    "PURPOSE_CODES",
    "READABLE_STATUSES",
    "READ_BUNDLE_TYPES",
    "REFERENCE_PATTERN",
    "RESOURCE_TYPES",
    "RXNORM",
    "RXNORM_PATTERN",
    "SECOND_MS",
    "UCUM",
    "CarePlanContent",
    "FhirError",
    "GlucoseReading",
    "Json",
    "Medication",
    "ScheduleEntry",
    "bundle",
    "care_plan_resources",
    "civil_from_days",
    "consent_resource",
    "days_from_civil",
    "days_in_month",
    "dumps",
    "glucose_observation",
    "goal_id",
    "iso_datetime",
    "loads",
    "medication_request_id",
    "parse_datetime",
    "reading_of",
    "record_code",
    "resource_urn",
    "resources_of",
    "schedule_of",
]

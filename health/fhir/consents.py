"""Grants as FHIR R4 ``Consent``s: ``consent_resource``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from health.contracts.common import CODE_PATTERN, FHIR_TYPE_PATTERN
from health.fhir.base import (
    LOINC,
    FhirError,
    Json,
    check_id,
    check_reference,
    coding,
    concept,
    reference,
)
from health.fhir.datetimes import iso_datetime

CONSENT_SCOPE: Final = "http://terminology.hl7.org/CodeSystem/consentscope"
PARTICIPATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ACT_REASON: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
RESOURCE_TYPES: Final = "http://hl7.org/fhir/resource-types"

LOINC_PATIENT_CONSENT: Final = "59284-0"
PURPOSE_CODES: Final[Mapping[str, tuple[str, str]]] = {
    "treatment": ("TREAT", "treatment"),
    "research": ("HRESCH", "healthcare research"),
    "emergency": ("ETREAT", "Emergency Treatment"),
}
"""A grant's purpose and its v3-ActReason code and display."""
CONSENT_STATUSES: Final = frozenset({"active", "inactive", "rejected"})
MAX_CONSENT_SCOPE_ENTRIES: Final = 64


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
    check_id(consent_id, "a consent id")
    check_reference(patient_ref, "the patient reference")
    check_reference(grantee_ref, "the grantee reference")
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
                "role": concept(PARTICIPATION_TYPE, "IRCP", "information recipient"),
                "reference": reference(grantee_ref),
            }
        ],
        "purpose": [coding(ACT_REASON, *PURPOSE_CODES[purpose])],
    }
    provision |= _provision_scope(resource_types, codes, data_from_ms, data_to_ms)
    return {
        "resourceType": "Consent",
        "id": consent_id,
        "status": status,
        "scope": concept(CONSENT_SCOPE, "patient-privacy", "Privacy Consent"),
        "category": [concept(LOINC, LOINC_PATIENT_CONSENT, "Patient Consent")],
        "patient": reference(patient_ref),
        "dateTime": issued,
        "performer": [reference(patient_ref)],
        "policyRule": concept(ACT_CODE, "OPTIN", "opt-in"),
        "provision": provision,
    }


def _provision_scope(
    resource_types: object, codes: object, data_from_ms: int, data_to_ms: int
) -> Json:
    """The ``class``, ``code`` and ``dataPeriod`` members of a provision (each only if not
    empty)."""
    scope: Json = {}
    classes = [coding(RESOURCE_TYPES, kind) for kind in _checked_types(resource_types)]
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
    return coding(system, value)


def _data_period(data_from_ms: int, data_to_ms: int) -> Json:
    period: Json = {}
    if data_from_ms:
        period["start"] = iso_datetime(data_from_ms)
    if data_to_ms:
        period["end"] = iso_datetime(data_to_ms)
    if data_from_ms and data_to_ms and data_to_ms < data_from_ms:
        raise FhirError("the data period ends before it starts")
    return period

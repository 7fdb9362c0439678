"""What the FHIR resource modules share: the error, the shared codes, and the checks and
small builders of elements (ids, references, strings, codings, concepts, quantities).

Pure functions: no clock, no randomness, no I/O. Every refusal is a ``FhirError``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Final

from node.errors import BigHealthError

Json = dict[str, Any]
"""A JSON object as ``json`` parses it (a FHIR resource, or part of one)."""


class FhirError(BigHealthError, ValueError):
    """A FHIR resource, a value for one, or a JSON text that ``health.fhir`` refuses; the
    message says which element is wrong and why."""


# -- code systems and codes shared by the resources --------------------------------------------

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"

LOINC_CAPILLARY_GLUCOSE_METER: Final = "41653-7"
"""Glucose [Mass/volume] in Capillary blood by Glucometer."""
LOINC_INTERSTITIAL_GLUCOSE_CGM: Final = "99504-3"
"""Glucose [Mass/volume] in Interstitial fluid (continuous glucose monitors)."""
GLUCOSE_DISPLAYS: Final[Mapping[str, str]] = {
    LOINC_CAPILLARY_GLUCOSE_METER: "Glucose [Mass/volume] in Capillary blood by Glucometer",
    LOINC_INTERSTITIAL_GLUCOSE_CGM: "Glucose [Mass/volume] in Interstitial fluid",
}
MG_DL: Final = "mg/dL"

# -- the elements of every resource -------------------------------------------------------------

MAX_REFERENCE_CHARS: Final = 512
ID_PATTERN: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}", re.ASCII)
"""A FHIR ``id``."""
REFERENCE_PATTERN: Final = re.compile(
    r"[A-Z][A-Za-z]{0,63}/[A-Za-z0-9\-.]{1,64}"
    r"|urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|https?://[!-~]+",
    re.ASCII,
)
"""References accepted: relative ``Type/id``, ``urn:uuid:...``, or an absolute http(s) URL."""


# -- checks and small builders -----------------------------------------------------------------


def check_int(value: object, low: int, high: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise FhirError(f"{what} is an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise FhirError(f"{what} is {low}..{high}, got {value}")
    return value


def check_text(value: object, max_chars: int, what: str, *, empty: bool = False) -> str:
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


def check_id(value: object, what: str, max_chars: int = 64) -> str:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value) or len(value) > max_chars:
        raise FhirError(
            f"{what} is a FHIR id (letters, digits, '-', '.'; 1..{max_chars}), got {value!r}"
        )
    return value


def check_reference(value: object, what: str) -> str:
    if (
        not isinstance(value, str)
        or len(value) > MAX_REFERENCE_CHARS
        or not REFERENCE_PATTERN.fullmatch(value)
    ):
        raise FhirError(
            f"{what} is a reference ('Type/id', 'urn:uuid:...' or an http(s) URL), got {value!r}"
        )
    return value


def coding(system: str, code: str, display: str | None = None) -> Json:
    coding: Json = {"system": system, "code": code}
    if display is not None:
        coding["display"] = display
    return coding


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> Json:
    concept: Json = {"coding": [coding(system, code, display)]}
    if text is not None:
        concept["text"] = text
    return concept


def reference(reference: str) -> Json:
    return {"reference": reference}


def mg_dl_quantity(value: float) -> Json:
    return {"value": value, "unit": MG_DL, "system": UCUM, "code": MG_DL}


def require_type(resource: object, resource_type: str) -> Mapping[str, Any]:
    if not isinstance(resource, Mapping):
        raise FhirError(f"a {resource_type} is a JSON object, got {type(resource).__name__}")
    found = resource.get("resourceType")
    if found != resource_type:
        raise FhirError(f"expected a {resource_type}, got resourceType {found!r}")
    return resource
